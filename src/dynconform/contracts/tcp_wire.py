"""Dynamo's TCP request plane on the wire: request messages and response-connection frames.

A frontend sends each request to a worker's TCP server as one message: ``u16 BE`` endpoint
path length, the path (``{instance_id:x}/{namespace}/{component}/{endpoint}``), ``u16 BE``
headers length, the headers (a JSON object of strings), ``u32 BE`` payload length and the
payload, a TwoPartCodec request frame. The worker acknowledges each message with ``u32 BE``
length and data (empty when accepted, else the error text).

The worker streams the responses back on a connection it opens to the address named in the
frame's ``connection_info``. Every message on that connection is a TwoPartCodec frame:
header-only control messages (the ``{"subject", "stream_type"}`` handshake, the
``{"error": ...}`` prologue, ``"sentinel"``, and from the frontend ``"stop"`` / ``"kill"``)
and body-only data frames ``{"data": ..., "complete_final": bool}`` encoded with the request's
``payload_codec``.

The views built here are what the ``request-plane.tcp-message``,
``request-plane.response-frame`` and ``request-plane.response-stream`` contracts describe.
"""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

from dynconform.contracts._io import json_view
from dynconform.contracts.two_part import (
    _PREFIX,
    PREFIX_SIZE,
    FrameError,
    _wire_bytes,
    decode_frame,
)

__all__ = [
    "KV_QUERY_ENDPOINT_PREFIX",
    "response_frame_view",
    "response_stream_view",
    "split_frames",
    "split_tcp_messages",
    "tcp_message_view",
]

#: Endpoint names of the workers' KV state query sources start with this.
KV_QUERY_ENDPOINT_PREFIX = "worker_kv_query_source_"

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")


def _b64(data: bytes) -> dict[str, str]:
    return {"__bytes_b64__": base64.b64encode(data).decode("ascii")}


def _message_end(data: bytes, start: int) -> tuple[int, int, int, int]:
    """``(path_end, headers_end, payload_start, end)`` offsets of the message at ``start``."""
    try:
        (path_len,) = _U16.unpack_from(data, start)
        path_end = start + 2 + path_len
        (headers_len,) = _U16.unpack_from(data, path_end)
        headers_end = path_end + 2 + headers_len
        (payload_len,) = _U32.unpack_from(data, headers_end)
    except struct.error:
        raise FrameError(f"truncated request message: {len(data) - start} bytes") from None
    end = headers_end + 4 + payload_len
    if end > len(data):
        raise FrameError(
            f"truncated request message: it declares {end - start} bytes but only "
            f"{len(data) - start} are present"
        )
    return path_end, headers_end, headers_end + 4, end


def split_tcp_messages(data: bytes) -> list[bytes]:
    """The request messages in the bytes a frontend wrote to one worker connection."""
    out, offset = [], 0
    while offset < len(data):
        end = _message_end(data, offset)[3]
        out.append(bytes(data[offset:end]))
        offset = end
    return out


def split_frames(data: bytes) -> list[bytes]:
    """The TwoPartCodec frames in the bytes one side wrote to a response connection."""
    out, offset = [], 0
    while offset < len(data):
        if len(data) - offset < PREFIX_SIZE:
            raise FrameError(f"truncated frame: {len(data) - offset} bytes")
        header_len, body_len, _ = _PREFIX.unpack_from(data, offset)
        end = offset + PREFIX_SIZE + header_len + body_len
        if end > len(data):
            raise FrameError(f"truncated frame: it declares {end - offset} bytes")
        out.append(bytes(data[offset:end]))
        offset = end
    return out


def tcp_message_view(instance: Any) -> dict[str, Any]:
    """The view of one request message that ``request-plane.tcp-message`` describes.

    ``instance`` is the message's bytes or ``{"__bytes_b64__": ...}``. ``endpoint_kind`` is
    ``kv_query_source`` for a worker's KV state query endpoint, else ``engine``. Raises
    :class:`FrameError` when the bytes are not exactly one message (the worker would read
    extra bytes as the start of the next one) or the path or headers do not decode.
    """
    data = _wire_bytes(instance)
    path_end, headers_end, payload_start, end = _message_end(data, 0)
    if end != len(data):
        raise FrameError(
            f"{len(data) - end} bytes after the message's declared end ({end} bytes in all)"
        )
    try:
        path = data[2:path_end].decode("utf-8")
        headers = json.loads(data[path_end + 2 : headers_end].decode("utf-8") or "{}")
    except (UnicodeDecodeError, ValueError) as exc:
        raise FrameError(f"path or headers do not decode: {exc}") from None
    endpoint = path.rsplit("/", 1)[-1]
    kind = "kv_query_source" if endpoint.startswith(KV_QUERY_ENDPOINT_PREFIX) else "engine"
    return {
        "endpoint_path": path,
        "endpoint_kind": kind,
        "headers": headers,
        "payload": _b64(data[payload_start:end]),
    }


def _decoded_body(body: bytes) -> dict[str, Any] | None:
    if not body:
        return None
    view: dict[str, Any] = json_view(body)  # {"__msgpack__": ...}, else {"__bytes_b64__": ...}
    if "__bytes_b64__" in view:
        try:
            return {"__json__": json.loads(body.decode("utf-8"))}
        except (UnicodeDecodeError, ValueError):
            pass
    return view


def response_frame_view(instance: Any) -> dict[str, Any]:
    """The view of one response-connection frame that ``request-plane.response-frame``
    describes: the prefix, the header as JSON (``None`` when empty) and the body as
    ``{"__msgpack__"}`` or ``{"__json__"}`` (``None`` when empty, ``{"__bytes_b64__"}`` when it
    decodes as neither). Raises :class:`FrameError` unless the bytes are exactly one frame.
    """
    frame = decode_frame(_wire_bytes(instance))
    return {
        "prefix": {
            "header_len": frame.header_len,
            "body_len": frame.body_len,
            "checksum": frame.checksum,
        },
        "header": frame.header,
        "body": _decoded_body(frame.body),
    }


def _order_letter(frame: dict[str, Any]) -> str:
    header, body = frame["header"], frame["body"]
    if isinstance(header, dict) and body is None:
        return "H" if "subject" in header else "P" if "error" in header else "X"
    if header == "sentinel" and body is None:
        return "S"
    if header in ("stop", "kill") and body is None:
        return "C"
    if header is None and body is not None:
        decoded = next(iter(body.values()))
        final = isinstance(decoded, dict) and decoded.get("complete_final") is True
        return "F" if final else "D"
    return "X"


def response_stream_view(instance: Any) -> dict[str, Any]:
    """The view of the bytes a worker wrote on one response connection that
    ``request-plane.response-stream`` describes: the frame views and ``order``, one letter per
    frame: ``H`` handshake, ``P`` prologue, ``D`` data, ``F`` the ``complete_final`` data
    frame, ``S`` sentinel, ``C`` stop or kill, ``X`` anything else. Raises
    :class:`FrameError` when the bytes end inside a frame.
    """
    frames = [response_frame_view(frame) for frame in split_frames(_wire_bytes(instance))]
    return {"frames": frames, "order": "".join(_order_letter(frame) for frame in frames)}
