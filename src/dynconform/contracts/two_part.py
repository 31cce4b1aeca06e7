"""Dynamo's TwoPartCodec: the frame that carries every request-plane message.

A frame is a 24-byte prefix (``header_len`` u64 BE, ``body_len`` u64 BE, ``checksum`` u64 BE)
followed by the header bytes and the body bytes. On the request plane the header is a JSON
control message (``id``, ``request_type``, ``response_type``, ``payload_codec``,
``connection_info``) and the body is the request encoded with ``payload_codec``.

The checksum is XXH3-64 (seed 0) over header and body in debug builds of Dynamo; release
builds, such as the published ai-dynamo 1.6.1 wheels, write 0, and a reader accepts both.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgpack
import xxhash

from dynconform.contracts._io import json_view

__all__ = [
    "PREFIX_SIZE",
    "FrameError",
    "TwoPartFrame",
    "checksum_of",
    "decode_frame",
    "encode_frame",
    "encode_header",
    "frame_view",
]

#: Bytes before the header: header length, body length and checksum, each a u64 big-endian.
PREFIX_SIZE = 24

_PREFIX = struct.Struct(">QQQ")


class FrameError(ValueError):
    """Bytes that are not a complete TwoPartCodec frame."""


@dataclass(frozen=True, slots=True)
class TwoPartFrame:
    """One decoded frame: the prefix fields and the raw header and body bytes."""

    header_len: int
    body_len: int
    checksum: int
    header_bytes: bytes
    body: bytes
    #: bytes found after the frame's declared end (empty for a well-formed message)
    trailing: bytes = b""

    @property
    def header(self) -> Any:
        """The header parsed as JSON (``None`` for an empty header)."""
        if not self.header_bytes:
            return None
        try:
            return json.loads(self.header_bytes.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise FrameError(f"header is not UTF-8 JSON ({exc})") from None

    @property
    def checksum_ok(self) -> bool:
        """Whether the checksum is 0 (release build) or XXH3-64 of header and body."""
        return self.checksum in (0, checksum_of(self.header_bytes, self.body))


def checksum_of(header: bytes, body: bytes) -> int:
    """XXH3-64 (seed 0) of header followed by body, as Dynamo's debug builds write it."""
    return xxhash.xxh3_64_intdigest(header + body)


def encode_header(header: Mapping[str, Any]) -> bytes:
    """Serialize a control header as Dynamo (serde_json) does: compact, UTF-8, key order kept."""
    return json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def encode_frame(
    header: Mapping[str, Any] | bytes, body: bytes, *, with_checksum: bool = False
) -> bytes:
    """Build a frame from a header (a mapping, serialized as compact JSON, or raw bytes) and body.

    ``with_checksum`` writes XXH3-64 as a debug build of Dynamo does; by default the checksum
    is 0, as release builds write it.
    """
    header_bytes = bytes(header) if isinstance(header, bytes | bytearray) else encode_header(header)
    body = bytes(body)
    checksum = checksum_of(header_bytes, body) if with_checksum else 0
    return _PREFIX.pack(len(header_bytes), len(body), checksum) + header_bytes + body


def decode_frame(data: bytes, *, allow_trailing: bool = False) -> TwoPartFrame:
    """Split ``data`` into prefix, header and body.

    Raises :class:`FrameError` for input shorter than its prefix declares, and for bytes after
    the declared end unless ``allow_trailing`` (then they are kept in ``trailing``).
    """
    data = bytes(data)
    if len(data) < PREFIX_SIZE:
        raise FrameError(
            f"truncated frame: {len(data)} bytes, the prefix alone needs {PREFIX_SIZE}"
        )
    header_len, body_len, checksum = _PREFIX.unpack_from(data)
    end = PREFIX_SIZE + header_len + body_len
    if end > len(data):
        raise FrameError(
            f"truncated frame: prefix declares header_len={header_len} and body_len={body_len} "
            f"({end} bytes in all) but only {len(data)} bytes are present"
        )
    if end < len(data) and not allow_trailing:
        raise FrameError(
            f"{len(data) - end} bytes after the frame's declared end (header_len={header_len}, "
            f"body_len={body_len}, {end} bytes in all)"
        )
    header_end = PREFIX_SIZE + header_len
    return TwoPartFrame(
        header_len=header_len,
        body_len=body_len,
        checksum=checksum,
        header_bytes=data[PREFIX_SIZE:header_end],
        body=data[header_end:end],
        trailing=data[end:],
    )


def _wire_bytes(instance: Any) -> bytes:
    if isinstance(instance, bytes | bytearray | memoryview):
        return bytes(instance)
    if isinstance(instance, Mapping) and set(instance) == {"__bytes_b64__"}:
        encoded = instance["__bytes_b64__"]
        if not isinstance(encoded, str):
            raise FrameError("__bytes_b64__ must be a base64 string")
        try:
            return base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise FrameError("__bytes_b64__ is not valid base64") from None
    raise FrameError(
        "expected the frame's bytes, or {'__bytes_b64__': <base64>}; got " + type(instance).__name__
    )


def _body_view(body: bytes, codec: Any) -> dict[str, Any]:
    if codec == "msgpack":
        try:
            return {
                "__msgpack__": json_view(msgpack.unpackb(body, raw=False, strict_map_key=False))
            }
        except Exception:
            return {"__bytes_b64__": base64.b64encode(body).decode("ascii")}
    if codec in (None, "json") and body:
        try:
            return {"__json__": json.loads(body.decode("utf-8"))}
        except (UnicodeDecodeError, ValueError):
            pass
    return {"__bytes_b64__": base64.b64encode(body).decode("ascii")}


def frame_view(instance: Any) -> dict[str, Any]:
    """The structured view of a frame that the ``request-plane.frame`` contract describes.

    ``instance`` is the frame's bytes or ``{"__bytes_b64__": ...}``. The body is shown as
    ``{"__msgpack__": ...}`` or ``{"__json__": ...}`` following the header's ``payload_codec``
    (JSON when absent, as Dynamo reads it), or as ``{"__bytes_b64__": ...}`` when it does not
    decode. ``observed`` holds what the prefix is checked against: the frame's actual size and
    the XXH3-64 of header and body.
    """
    data = _wire_bytes(instance)
    frame = decode_frame(data, allow_trailing=True)
    header = frame.header
    codec = header.get("payload_codec") if isinstance(header, dict) else None
    return {
        "prefix": {
            "header_len": frame.header_len,
            "body_len": frame.body_len,
            "checksum": frame.checksum,
        },
        "header": header,
        "body": _body_view(frame.body, codec),
        "observed": {
            "frame_len": len(data),
            "xxh3_64": checksum_of(frame.header_bytes, frame.body),
        },
    }
