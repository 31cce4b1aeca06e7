"""Named decoders that turn a wire view (bytes shown as ``{"__bytes_b64__": ...}``) into the
structured view a contract's schema describes. A schema names its decoder in
``x-dynconform.decoder``; a decoder raises :class:`DecodeError` for input it cannot decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dynconform.contracts.two_part import FrameError, frame_view

__all__ = ["DECODERS", "DecodeError", "Decoder"]

Decoder = Callable[[Any], Any]


class DecodeError(ValueError):
    """The instance cannot be decoded; reported as a violation of rule ``decode``."""


def _two_part_codec(instance: Any) -> Any:
    try:
        return frame_view(instance)
    except FrameError as exc:
        raise DecodeError(str(exc)) from None


DECODERS: dict[str, Decoder] = {
    "two-part-codec": _two_part_codec,
}
