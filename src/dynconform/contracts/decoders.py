"""Named decoders that turn a wire view (bytes shown as ``{"__bytes_b64__": ...}``) into the
structured view a contract's schema describes. A schema names its decoder in
``x-dynconform.decoder``; a decoder raises :class:`DecodeError` for input it cannot decode.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["DECODERS", "DecodeError", "Decoder"]

Decoder = Callable[[Any], Any]


class DecodeError(ValueError):
    """The instance cannot be decoded; reported as a violation of rule ``decode``."""


DECODERS: dict[str, Decoder] = {}
