"""The real ai-dynamo 1.6.1 TCP request-plane and direct-ZMQ captures (tests/fixtures/
ai-dynamo-1.6.1-live), and helpers to replay them against the reference."""

from __future__ import annotations

import base64
import json
import uuid
from pathlib import Path
from typing import Any

from dynconform.contracts.tcp_wire import split_frames
from dynconform.contracts.two_part import decode_frame, encode_frame
from dynconform.mocker.request_plane import decode_tcp_request, encode_tcp_request

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "ai-dynamo-1.6.1-live"


def rows() -> dict[str, dict[str, Any]]:
    """The rows of request_plane_tcp.jsonl by name."""
    out = {}
    for line in (LIVE / "request_plane_tcp.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out[row["name"]] = row
    return out


def raw(name: str) -> bytes:
    """The captured bytes of one row."""
    return base64.b64decode(rows()[name]["__bytes_b64__"])


def zmq_messages() -> list[tuple[str, list[bytes]]]:
    """``(topic, frames)`` of every captured ZMQ message."""
    out = []
    for line in (LIVE / "zmq_events.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        out.append((row["topic"], [base64.b64decode(f["__bytes_b64__"]) for f in row["frames"]]))
    return out


def subject_of(stream: bytes) -> str:
    """The subject named by a response stream's handshake."""
    return str(json.loads(decode_frame(split_frames(stream)[0]).header_bytes)["subject"])


def with_subject(stream: bytes, subject: str) -> bytes:
    """A response stream with its handshake naming ``subject`` (same length, a UUID)."""
    old = subject_of(stream).encode()
    new = subject.encode()
    assert len(old) == len(new) == 36
    return stream.replace(old, new, 1)


def readdress(message: bytes, path: str, address: str) -> tuple[bytes, str]:
    """A captured request message sent to ``path`` with its response address ``address``.

    The frame's header gets the new address and a fresh subject, the headers the new
    ``x-endpoint-path``; the body and everything else stay as captured. Returns the message
    and the subject.
    """
    _, headers, payload = decode_tcp_request(message)
    frame = decode_frame(payload)
    header = json.loads(frame.header_bytes)
    info = json.loads(header["connection_info"]["info"])
    info["address"] = address
    info["subject"] = str(uuid.uuid4())
    header["connection_info"]["info"] = json.dumps(info, separators=(",", ":"))
    headers = {**headers, "x-endpoint-path": path}
    return encode_tcp_request(path, headers, encode_frame(header, frame.body)), info["subject"]
