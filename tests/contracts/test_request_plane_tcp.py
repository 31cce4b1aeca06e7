"""TCP request-plane contracts: request messages, response streams and KV state queries,
held to the live ai-dynamo 1.6.1 captures (tests/fixtures/ai-dynamo-1.6.1-live)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import msgpack
import pytest

from dynconform.contracts import Validator
from dynconform.contracts.tcp_wire import (
    response_frame_view,
    response_stream_view,
    split_frames,
    split_tcp_messages,
    tcp_message_view,
)
from dynconform.contracts.two_part import FrameError, decode_frame, encode_frame

VALIDATOR = Validator()
LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "ai-dynamo-1.6.1-live"
ROWS = [
    json.loads(line)
    for line in (LIVE / "request_plane_tcp.jsonl").read_text(encoding="utf-8").splitlines()
]
BY_NAME = {row["name"]: row for row in ROWS}


def _raw(name: str) -> bytes:
    return base64.b64decode(BY_NAME[name]["__bytes_b64__"])


def _rules(report: Any) -> set[str]:
    return {v.rule for v in report.violations}


def _message(path: str, headers: dict[str, str], payload: bytes) -> bytes:
    p, h = path.encode(), json.dumps(headers).encode()
    return (
        struct.pack(">H", len(p))
        + p
        + struct.pack(">H", len(h))
        + h
        + struct.pack(">I", len(payload))
        + payload
    )


def _contract(row: dict[str, Any]) -> str | None:
    if row["kind"] == "tcp-request":
        return "request-plane.tcp-message"
    if row["kind"] == "response-stream":
        worker = row["direction"] == "worker->frontend"
        return "request-plane.response-stream" if worker else "request-plane.response-frame"
    return None


@pytest.mark.parametrize("row", [r for r in ROWS if _contract(r)], ids=lambda r: r["name"])
def test_every_live_capture_validates(row: dict[str, Any]) -> None:
    contract = _contract(row)
    assert contract is not None
    report = VALIDATOR.validate(contract, {"__bytes_b64__": row["__bytes_b64__"]})
    assert report.ok, [str(v) for v in report.violations]


def test_messages_dispatch_by_endpoint_kind() -> None:
    kv = VALIDATOR.validate("request-plane.tcp-message", _raw("kv-query.request"))
    assert kv.checked["request-plane.kv-query-request"] == 1
    engine = VALIDATOR.validate("request-plane.tcp-message", _raw("generate.chat.request"))
    assert engine.checked["request-plane.preprocessed-request"] == 1
    view = tcp_message_view(_raw("kv-query.request"))
    assert view["endpoint_kind"] == "kv_query_source"
    assert view["headers"]["x-endpoint-path"] == view["endpoint_path"]


def test_split_messages_and_frames() -> None:
    one, two = _raw("generate.chat.request"), _raw("kv-query.request")
    assert split_tcp_messages(one + two) == [one, two]
    frames = split_frames(_raw("generate.chat.response"))
    assert len(frames) == 10
    assert b"".join(frames) == _raw("generate.chat.response")
    with pytest.raises(FrameError, match="truncated"):
        split_tcp_messages(one[:-1])
    with pytest.raises(FrameError, match="truncated"):
        split_frames(frames[0][:-1])


def test_tcp_message_schema_and_decoding() -> None:
    message = _raw("generate.chat.request")
    assert _rules(VALIDATOR.validate("request-plane.tcp-message", message + b"\x00")) == {"decode"}
    assert _rules(VALIDATOR.validate("request-plane.tcp-message", message[:10])) == {"decode"}
    view = tcp_message_view(message)
    payload = base64.b64decode(view["payload"]["__bytes_b64__"])
    bad_path = VALIDATOR.validate("request-plane.tcp-message", _message("generate", {}, payload))
    assert _rules(bad_path) == {"schema.pattern"}
    bad_time = {"x-frontend-send-ts-ns": "soon"}
    report = VALIDATOR.validate(
        "request-plane.tcp-message", _message(view["endpoint_path"], bad_time, payload)
    )
    assert _rules(report) == {"schema.pattern"}
    # a message without headers is still a valid message
    plain = _message(view["endpoint_path"], {}, payload)
    assert VALIDATOR.validate("request-plane.tcp-message", plain).ok
    # the payload is judged as a request frame
    broken = _message(view["endpoint_path"], {}, payload + b"\x00")
    report = VALIDATOR.validate("request-plane.tcp-message", broken)
    assert _rules(report) == {"request-plane.frame-lengths"}


def _old_reference_stream() -> bytes:
    """How the reference framed a response stream before it matched 1.6.1: prologue and data
    in data-only JSON frames, a data-bearing final frame and a capitalized sentinel."""
    frames = split_frames(_raw("generate.chat.response"))
    items = [msgpack.unpackb(decode_frame(f).body) for f in frames[2:-2]]
    body = [encode_frame(b"", json.dumps(item).encode()) for item in items]
    return b"".join(
        [
            frames[0],
            encode_frame(b"", b'{"error":null}'),
            *body,
            encode_frame(b"", b'{"data":null,"complete_final":true}'),
            encode_frame(b'"Sentinel"', b""),
        ]
    )


def test_the_old_reference_framing_is_caught() -> None:
    report = VALIDATOR.validate("request-plane.response-stream", _old_reference_stream())
    pointers = {v.pointer for v in report.violations}
    # HDDDDDDDFX: a data frame where the prologue belongs, a sentinel that is not one
    assert pointers == {"/frames/1/header", "/frames/9/header", "/order"}
    messages = " ".join(v.message for v in report.violations)
    assert "Sentinel" in messages


def _order(parts: list[bytes]) -> str:
    return str(response_stream_view(b"".join(parts))["order"])


def test_response_stream_order() -> None:
    frames = split_frames(_raw("generate.chat.response"))
    kill = _raw("generate.cancelled.kill")

    def problems(parts: list[bytes]) -> set[str]:
        report = VALIDATOR.validate("request-plane.response-stream", b"".join(parts))
        return {v.pointer for v in report.violations}

    assert _order(frames) == "HP" + "D" * 6 + "FS"
    assert problems(frames) == set()
    # a cancelled stream ends without complete_final and sentinel: fine
    assert problems(split_frames(_raw("generate.cancelled.response-head"))) == set()
    assert problems(frames[:2]) == set()  # an error prologue ends the stream
    for broken in (
        frames[:-1],  # no sentinel
        [frames[0], *frames[2:]],  # no prologue
        [frames[1], frames[0], *frames[2:]],  # prologue first
        [*frames[:3], kill, *frames[3:]],  # the worker sends kill
        [*frames[:-2], frames[-1]],  # sentinel without complete_final
        [*frames, frames[2]],  # data after the sentinel
        [*frames[:-2], frames[-2], frames[2], frames[-1]],  # data after complete_final
    ):
        assert problems(broken) == {"/order"}, _order(broken)
    with pytest.raises(FrameError):
        response_stream_view(frames[0][:-1])


def test_response_frame_view() -> None:
    frames = split_frames(_raw("kv-query.response.tree-dump-one-event"))
    views = [response_frame_view(f) for f in frames]
    assert views[0]["header"]["stream_type"] == "response"
    assert views[1]["header"] == {"error": None}
    assert views[1]["body"] is None
    assert "TreeDump" in views[2]["body"]["__msgpack__"]["data"]
    assert views[-1]["header"] == "sentinel"
    json_views = [
        response_frame_view(f) for f in split_frames(_raw("json-codec.kv-query.response"))
    ]
    assert "TreeDump" in json_views[2]["body"]["__json__"]["data"]
    assert _rules(VALIDATOR.validate("request-plane.response-frame", frames[2] + b"x")) == {
        "decode"
    }
    both = encode_frame(b'"sentinel"', b"\x80")
    rules = _rules(VALIDATOR.validate("request-plane.response-frame", both))
    assert rules
    assert all(rule.startswith("schema.") for rule in rules)
    stop = encode_frame(b'"Stop"', b"")  # 1.6.1 control messages are snake_case
    report = VALIDATOR.validate("request-plane.response-frame", stop)
    assert [(v.pointer, v.rule) for v in report.violations] == [("/header", "schema.type")]


def _kv_request() -> dict[str, Any]:
    payload = tcp_message_view(_raw("kv-query.request"))["payload"]["__bytes_b64__"]
    frame = decode_frame(base64.b64decode(payload))
    return dict(msgpack.unpackb(frame.body))


def _kv_answer(name: str) -> dict[str, Any]:
    (item,) = [
        msgpack.unpackb(decode_frame(f).body)
        for f in split_frames(_raw(name))
        if decode_frame(f).body and b"TreeDump" in decode_frame(f).body
    ]
    return dict(item["data"])


def test_kv_query_request_contract() -> None:
    request = _kv_request()
    assert request == {
        "worker_id": request["worker_id"],
        "dp_rank": 0,
        "start_event_id": None,
        "end_event_id": None,
        "supports_tree_dump_failed": True,
        "kind": "recovery",
    }
    assert VALIDATOR.validate("request-plane.kv-query-request", request).ok
    for change, rule in (({"dp_rank": -1}, "schema.minimum"), ({"kind": "x"}, "schema.enum")):
        report = VALIDATOR.validate("request-plane.kv-query-request", request | change)
        assert _rules(report) == {rule}, change
    legacy = {k: request[k] for k in ("worker_id", "dp_rank", "start_event_id", "end_event_id")}
    assert VALIDATOR.validate("request-plane.kv-query-request", legacy).ok


def test_kv_query_response_contract() -> None:
    dump = _kv_answer("kv-query.response.tree-dump")
    assert len(dump["TreeDump"]["events"]) == 10
    assert VALIDATOR.validate("request-plane.kv-query-response", dump).ok
    events = dump["TreeDump"]["events"]
    two = {"Error": "x", "TooNew": {}}
    assert "schema.maxProperties" in _rules(
        VALIDATOR.validate("request-plane.kv-query-response", two)
    )
    for ok in (
        {"Events": {"events": events[:2], "last_event_id": 10}},
        {"TooNew": {"requested_start": 11, "requested_end": 10, "newest_available": 10}},
        {"InvalidRange": {"start_id": 4, "end_id": 2}},
        {"Error": "this source serves another worker"},
    ):
        assert VALIDATOR.validate("request-plane.kv-query-response", ok).ok, ok
