"""Request-plane contracts: TwoPartCodec frames, control headers and preprocessed requests."""

from __future__ import annotations

import base64
import copy
import json
import struct
from importlib import resources
from typing import Any

import msgpack
import pytest
import xxhash
from hypothesis import given
from hypothesis import strategies as st

from conftest import CAPTURES
from dynconform.contracts import Validator
from dynconform.contracts.decoders import DECODERS, DecodeError
from dynconform.contracts.two_part import (
    PREFIX_SIZE,
    FrameError,
    decode_frame,
    encode_frame,
    encode_header,
    frame_view,
)

VALIDATOR = Validator()
FRAME = "request-plane.frame"
PRE = "request-plane.preprocessed-request"
U32_MAX = 2**32 - 1


def _captured_frames() -> list[bytes]:
    path = CAPTURES / "etcd_nats" / "nats_messages.jsonl"
    frames = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["plane"] == "request_plane":
            frames.append(base64.b64decode(row["decoded"]["__bytes_b64__"]))
    return frames


FRAMES = _captured_frames()
REAL = min(FRAMES, key=len)


def _b64(data: bytes) -> dict[str, str]:
    return {"__bytes_b64__": base64.b64encode(data).decode("ascii")}


def _parts(data: bytes = REAL) -> tuple[dict[str, Any], dict[str, Any]]:
    frame = decode_frame(data)
    return frame.header, msgpack.unpackb(frame.body, raw=False)


def _frame(header: dict[str, Any], body: dict[str, Any], **kwargs: Any) -> dict[str, str]:
    return _b64(encode_frame(header, msgpack.packb(body), **kwargs))


def _rules(instance: Any) -> set[str]:
    return VALIDATOR.validate(FRAME, instance).rules()


# -- real captures ---------------------------------------------------------------------------


def test_captures_hold_request_frames() -> None:
    assert len(FRAMES) == 120


def test_every_captured_frame_validates() -> None:
    report = VALIDATOR.validate_stream(FRAME, [_b64(f) for f in FRAMES])
    assert report.ok, [str(v) for v in report.violations[:5]]
    assert report.checked[FRAME] == 120
    assert report.checked[PRE] == 120  # every body went through the dispatch


def test_every_captured_frame_round_trips_byte_exactly() -> None:
    for data in FRAMES:
        frame = decode_frame(data)
        assert encode_frame(frame.header, frame.body) == data
        assert encode_frame(frame.header_bytes, frame.body) == data
        assert encode_header(frame.header) == frame.header_bytes


def test_captured_frames_are_release_builds_with_zero_checksum() -> None:
    frame = decode_frame(REAL)
    assert frame.checksum == 0
    assert frame.checksum_ok
    assert frame.header_len + frame.body_len + PREFIX_SIZE == len(REAL)


def test_view_of_a_real_frame() -> None:
    view = frame_view(_b64(REAL))
    header_len, body_len, checksum = struct.unpack(">QQQ", REAL[:PREFIX_SIZE])
    assert view["prefix"] == {"header_len": header_len, "body_len": body_len, "checksum": checksum}
    assert view["header"]["payload_codec"] == "msgpack"
    assert view["header"]["connection_info"]["transport"] == "tcp_server"
    body = view["body"]["__msgpack__"]
    assert body["model"] == "tiny"
    assert all(0 <= t <= U32_MAX for t in body["token_ids"])
    assert view["observed"]["frame_len"] == len(REAL)
    tail = REAL[PREFIX_SIZE:]
    assert view["observed"]["xxh3_64"] == xxhash.xxh3_64_intdigest(tail)


def test_decoder_is_registered_and_accepts_raw_bytes() -> None:
    assert DECODERS["two-part-codec"](REAL) == frame_view(_b64(REAL))
    assert VALIDATOR.validate(FRAME, REAL).ok


def test_bundled_sample_frames_validate() -> None:
    root = resources.files("dynconform.contracts") / "samples" / "ai-dynamo-1.6.1"
    lines = (root / "request-plane-frames.jsonl").read_text(encoding="utf-8").splitlines()
    instances = [json.loads(line) for line in lines if line.strip()]
    assert len(instances) >= 3
    assert all(set(i) == {"__bytes_b64__"} for i in instances)
    assert VALIDATOR.validate_stream(FRAME, instances).ok


def test_standalone_header_and_body_contracts_accept_real_parts() -> None:
    header, body = _parts()
    assert VALIDATOR.validate("request-plane.header", header).ok
    assert VALIDATOR.validate(PRE, body).ok


# -- property tests --------------------------------------------------------------------------

_u32 = st.integers(min_value=0, max_value=U32_MAX)
_text = st.text(st.characters(codec="utf-8"), max_size=12)


@st.composite
def _headers(draw: st.DrawFn) -> dict[str, Any]:
    request_id = str(draw(st.uuids()))
    info = {
        "address": f"127.0.0.1:{draw(st.integers(1, 65535))}",
        "subject": str(draw(st.uuids())),
        "context": request_id,
        "stream_type": "response",
    }
    return {
        "id": request_id,
        "request_type": draw(st.sampled_from(["single_in", "many_in"])),
        "response_type": draw(st.sampled_from(["single_out", "many_out"])),
        "payload_codec": "msgpack",
        "connection_info": {"transport": "tcp_server", "info": json.dumps(info)},
    }


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def _requests(draw: st.DrawFn) -> dict[str, Any]:
    _, real = _parts()
    body = copy.deepcopy(real)
    body["model"] = draw(_text)
    body["token_ids"] = draw(st.lists(_u32, max_size=40))
    body["eos_token_ids"] = draw(st.lists(_u32, max_size=3))
    body["annotations"] = draw(st.lists(_text, max_size=3))
    body["mdc_sum"] = draw(_opt(st.text("0123456789abcdef", min_size=64, max_size=64)))
    stop = body["stop_conditions"]
    stop["max_tokens"] = draw(_opt(_u32))
    stop["stop"] = draw(_opt(st.lists(_text, max_size=2)))
    stop["ignore_eos"] = draw(_opt(st.booleans()))
    sampling = body["sampling_options"]
    sampling["temperature"] = draw(_opt(st.floats(0, 2, allow_nan=False)))
    sampling["top_k"] = draw(_opt(st.integers(-1, 1000)))
    sampling["seed"] = draw(_opt(st.integers(-(2**63), 2**63 - 1)))
    body["output_options"]["logprobs"] = draw(_opt(st.integers(0, 20)))
    if draw(st.booleans()):
        body["routing"] = {
            "dp_rank": draw(_u32),
            "backend_instance_id": draw(st.integers(0, 2**64 - 1)),
        }
    else:
        body.pop("routing")
    return body


@given(header=_headers(), body=st.binary(max_size=64), checksum=st.booleans())
def test_generated_frames_round_trip(header: dict[str, Any], body: bytes, checksum: bool) -> None:
    data = encode_frame(header, body, with_checksum=checksum)
    frame = decode_frame(data)
    assert frame.header == header
    assert frame.body == body
    assert frame.checksum_ok
    assert (frame.checksum != 0) is checksum
    assert encode_frame(frame.header, frame.body, with_checksum=checksum) == data


@given(header=_headers(), body=_requests(), checksum=st.booleans())
def test_generated_requests_validate(
    header: dict[str, Any], body: dict[str, Any], checksum: bool
) -> None:
    report = VALIDATOR.validate(FRAME, _frame(header, body, with_checksum=checksum))
    assert report.ok, [str(v) for v in report.violations]
    assert report.checked[PRE] == 1


# -- decode failures -------------------------------------------------------------------------


@pytest.mark.parametrize("cut", [0, 5, PREFIX_SIZE - 1, PREFIX_SIZE, PREFIX_SIZE + 10, -1])
def test_truncated_frame_is_a_decode_violation(cut: int) -> None:
    report = VALIDATOR.validate(FRAME, _b64(REAL[:cut]))
    assert report.rules() == {"decode"}
    assert "truncated frame" in report.violations[0].message
    with pytest.raises(FrameError, match="truncated"):
        decode_frame(REAL[:cut])


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        ({"__bytes_b64__": "not base64!"}, "not valid base64"),
        ({"__bytes_b64__": 42}, "base64 string"),
        (42, "expected the frame's bytes"),
        ({"__msgpack__": {}}, "expected the frame's bytes"),
        (_b64(encode_frame(b"\xff{not json", b"")), "header is not UTF-8 JSON"),
    ],
)
def test_garbage_is_a_decode_violation(instance: Any, message: str) -> None:
    report = VALIDATOR.validate(FRAME, instance)
    assert report.rules() == {"decode"}
    assert message in report.violations[0].message
    with pytest.raises(DecodeError):
        DECODERS["two-part-codec"](instance)


# -- mutants ---------------------------------------------------------------------------------


def test_trailing_bytes_break_frame_lengths() -> None:
    report = VALIDATOR.validate(FRAME, _b64(REAL + b"\x00\x00"))
    assert report.rules() == {"request-plane.frame-lengths"}
    assert report.violations[0].pointer == "/prefix"
    with pytest.raises(FrameError, match="2 bytes after"):
        decode_frame(REAL + b"\x00\x00")
    assert decode_frame(REAL + b"\x00\x00", allow_trailing=True).trailing == b"\x00\x00"


def test_body_len_short_by_one_leaves_a_body_that_is_not_msgpack() -> None:
    header_len, body_len, checksum = struct.unpack(">QQQ", REAL[:PREFIX_SIZE])
    mutant = struct.pack(">QQQ", header_len, body_len - 1, checksum) + REAL[PREFIX_SIZE:]
    violations = VALIDATOR.validate(FRAME, _b64(mutant)).violations
    assert [(v.rule, v.pointer) for v in violations] == [("schema.required", "/body")]


def test_header_len_off_by_one_is_a_decode_violation() -> None:
    header_len, body_len, checksum = struct.unpack(">QQQ", REAL[:PREFIX_SIZE])
    mutant = struct.pack(">QQQ", header_len + 1, body_len - 1, checksum) + REAL[PREFIX_SIZE:]
    assert _rules(_b64(mutant)) == {"decode"}


def test_wrong_checksum_breaks_checksum_rule() -> None:
    header, body = _parts()
    good = encode_frame(header, msgpack.packb(body), with_checksum=True)
    assert VALIDATOR.validate(FRAME, _b64(good)).ok
    bad = good[:16] + struct.pack(">Q", 12345) + good[PREFIX_SIZE:]
    report = VALIDATOR.validate(FRAME, _b64(bad))
    assert report.rules() == {"request-plane.checksum"}
    assert report.violations[0].pointer == "/prefix/checksum"
    assert not decode_frame(bad).checksum_ok


@pytest.mark.parametrize(
    "field", ["token_ids", "model", "stop_conditions", "mdc_sum", "router_config_override"]
)
def test_missing_required_request_field(field: str) -> None:
    header, body = _parts()
    del body[field]
    violations = VALIDATOR.validate(FRAME, _frame(header, body)).violations
    assert [(v.contract, v.rule, v.pointer) for v in violations] == [
        (PRE, "schema.required", "/body/__msgpack__")
    ]
    assert field in violations[0].message


def test_missing_required_nested_field() -> None:
    header, body = _parts()
    del body["sampling_options"]["temperature"]
    violations = VALIDATOR.validate(FRAME, _frame(header, body)).violations
    assert [(v.rule, v.pointer) for v in violations] == [
        ("schema.required", "/body/__msgpack__/sampling_options")
    ]


def test_token_id_above_u32_is_rejected() -> None:
    header, body = _parts()
    body["token_ids"][3] = U32_MAX + 1
    violations = VALIDATOR.validate(FRAME, _frame(header, body)).violations
    assert [(v.rule, v.pointer) for v in violations] == [
        ("schema.maximum", "/body/__msgpack__/token_ids/3")
    ]


@pytest.mark.parametrize(
    ("path", "value", "rule"),
    [
        (("model",), 7, "schema.type"),
        (("token_ids", 0), -1, "schema.minimum"),
        (("eos_token_ids",), "2", "schema.type"),
        (("stop_conditions", "max_tokens"), U32_MAX + 1, "schema.maximum"),
        (("sampling_options", "n"), 256, "schema.maximum"),
        (("routing",), {"dp_rank": U32_MAX + 1}, "schema.maximum"),
        (("routing",), {"backend_instance_id": -1}, "schema.minimum"),
    ],
)
def test_wrongly_typed_request_fields(path: tuple[Any, ...], value: Any, rule: str) -> None:
    header, body = _parts()
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert _rules(_frame(header, body)) == {rule}


def test_missing_header_field_and_bad_enum() -> None:
    header, body = _parts()
    del header["connection_info"]
    report = VALIDATOR.validate(FRAME, _frame(header, body))
    assert [(v.rule, v.pointer) for v in report.violations] == [("schema.required", "/header")]
    header, body = _parts()
    header["request_type"] = "many"
    report = VALIDATOR.validate(FRAME, _frame(header, body))
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("schema.enum", "/header/request_type")
    ]


def test_header_u64_overflow() -> None:
    header, _ = _parts()
    header["frontend_send_ts_ns"] = 2**64
    assert VALIDATOR.validate("request-plane.header", header).rules() == {"schema.maximum"}
    header["frontend_send_ts_ns"] = 2**64 - 1
    assert VALIDATOR.validate("request-plane.header", header).ok


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"context": "another-request"}, "differs from the request id"),
        ({"stream_type": "request"}, "'response' stream"),
        ({"address": "no-port"}, "not host:port"),
        ({"subject": ""}, "'subject'"),
    ],
)
def test_connection_info_rule(change: dict[str, str], needle: str) -> None:
    header, body = _parts()
    info = json.loads(header["connection_info"]["info"])
    info.update(change)
    header["connection_info"]["info"] = json.dumps(info)
    report = VALIDATOR.validate(FRAME, _frame(header, body))
    assert report.rules() == {"request-plane.connection-info"}
    assert needle in report.violations[0].message
    assert report.violations[0].pointer == "/header/connection_info/info"


def test_connection_info_that_is_not_json() -> None:
    header, body = _parts()
    header["connection_info"]["info"] = "{broken"
    assert _rules(_frame(header, body)) == {"request-plane.connection-info"}


def test_json_codec_body_is_shown_as_json_and_must_decode() -> None:
    header, body = _parts()
    header["payload_codec"] = "json"
    data = encode_frame(header, json.dumps(body).encode())
    view = frame_view(_b64(data))
    assert view["body"] == {"__json__": body}
    assert VALIDATOR.validate(FRAME, _b64(data)).ok
    as_msgpack = encode_frame(header, msgpack.packb(body))
    violations = VALIDATOR.validate(FRAME, _b64(as_msgpack)).violations
    assert [(v.rule, v.pointer) for v in violations] == [("schema.required", "/body")]


def test_empty_header_is_a_schema_violation() -> None:
    _, body = _parts()
    violations = VALIDATOR.validate(FRAME, _b64(encode_frame(b"", msgpack.packb(body)))).violations
    assert [(v.rule, v.pointer) for v in violations] == [("schema.type", "/header")]
