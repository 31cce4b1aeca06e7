"""Semantic rules of the request-plane contracts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from dynconform.contracts._rules import Issue, Rule, record_rule
from dynconform.contracts.two_part import PREFIX_SIZE

FRAME = "request-plane.frame"
_TCP_INFO_FIELDS = ("address", "subject", "context")


@record_rule(
    "request-plane.frame-lengths",
    contract=FRAME,
    summary="The prefix's header_len and body_len account for every byte of the message.",
)
def frame_lengths(frame: Any) -> Iterator[Issue]:
    prefix = frame["prefix"]
    declared = PREFIX_SIZE + prefix["header_len"] + prefix["body_len"]
    actual = frame["observed"]["frame_len"]
    if declared != actual:
        yield (
            "/prefix",
            f"prefix declares {declared} bytes (24 + header_len {prefix['header_len']} + "
            f"body_len {prefix['body_len']}) but the message has {actual}",
        )


@record_rule(
    "request-plane.checksum",
    contract=FRAME,
    summary="The checksum is 0 (release build) or XXH3-64 of header and body (debug build).",
)
def checksum(frame: Any) -> Iterator[Issue]:
    value = frame["prefix"]["checksum"]
    expected = frame["observed"]["xxh3_64"]
    if value not in (0, expected):
        yield (
            "/prefix/checksum",
            f"checksum {value:#018x} is neither 0 nor XXH3-64 of header and body "
            f"({expected:#018x}); a debug build of Dynamo rejects the frame",
        )


@record_rule(
    "request-plane.connection-info",
    contract=FRAME,
    summary="connection_info.info is a JSON object; for tcp_server it names host:port, a subject, "
    "stream_type 'response' and the request's own id as context.",
)
def connection_info(frame: Any) -> Iterator[Issue]:
    header = frame["header"]
    conn = header["connection_info"]
    pointer = "/header/connection_info/info"
    try:
        info = json.loads(conn["info"])
    except ValueError as exc:
        yield pointer, f"info is not JSON ({exc})"
        return
    if not isinstance(info, dict):
        yield pointer, f"info must hold a JSON object, not {type(info).__name__}"
        return
    if conn["transport"] != "tcp_server":
        return
    for field in _TCP_INFO_FIELDS:
        if not isinstance(info.get(field), str) or not info[field]:
            yield pointer, f"tcp_server info needs a non-empty string {field!r}"
    if info.get("stream_type") != "response":
        yield (
            pointer,
            f"stream_type is {info.get('stream_type')!r}; the worker only calls home on a "
            "'response' stream",
        )
    address = info.get("address")
    if isinstance(address, str) and address:
        host, sep, port = address.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            yield pointer, f"address {address!r} is not host:port"
    if isinstance(info.get("context"), str) and info["context"] != header["id"]:
        yield (
            pointer,
            f"context {info['context']!r} differs from the request id {header['id']!r}; the "
            "worker refuses to open the response stream",
        )


RULES: tuple[Rule, ...] = (frame_lengths, checksum, connection_info)
