"""Named decoders that turn a wire view (bytes shown as ``{"__bytes_b64__": ...}``) into the
structured view a contract's schema describes. A schema names its decoder in
``x-dynconform.decoder``; a decoder raises :class:`DecodeError` for input it cannot decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dynconform.contracts.tcp_wire import (
    response_frame_view,
    response_stream_view,
    tcp_message_view,
)
from dynconform.contracts.two_part import FrameError, frame_view

__all__ = ["DECODERS", "DecodeError", "Decoder"]

Decoder = Callable[[Any], Any]


class DecodeError(ValueError):
    """The instance cannot be decoded; reported as a violation of rule ``decode``."""


def _decoder(view: Callable[[Any], Any]) -> Decoder:
    """``view`` with its :class:`FrameError` reported as :class:`DecodeError`."""

    def decode(instance: Any) -> Any:
        try:
            return view(instance)
        except FrameError as exc:
            raise DecodeError(str(exc)) from None

    return decode


DECODERS: dict[str, Decoder] = {
    "two-part-codec": _decoder(frame_view),
    "tcp-request-message": _decoder(tcp_message_view),
    "response-frame": _decoder(response_frame_view),
    "response-stream": _decoder(response_stream_view),
}
