"""Input readers: format detection, decoding and one-line errors."""

from __future__ import annotations

import struct
from pathlib import Path

import msgpack
import pytest

from dynconform.contracts import InputError, json_view, read_instances
from dynconform.contracts._io import iter_raw_frames, sniff


def _frame(subject: str, data: bytes) -> bytes:
    raw = subject.encode()
    return struct.pack(">H", len(raw)) + raw + struct.pack(">I", len(data)) + data


def test_json_view_turns_msgpack_bytes_into_tagged_objects() -> None:
    inner = msgpack.packb({"a": [1, 2]})
    assert json_view({"payload": inner, 1: (b"\xc1",)}) == {
        "payload": {"__msgpack__": {"a": [1, 2]}},
        "1": [{"__bytes_b64__": "wQ=="}],
    }


def test_raw_capture_frames_become_messages(tmp_path: Path) -> None:
    envelope = msgpack.packb({"topic": "kv-events", "payload": msgpack.packb([1])})
    path = tmp_path / "cap"
    path.write_bytes(_frame("namespace.a.kv-events", envelope) * 2)
    items, stream, fmt = read_instances(str(path))
    assert (fmt, stream, len(items)) == ("raw", True, 2)
    assert items[0] == {
        "subject": "namespace.a.kv-events",
        "decoded": {"topic": "kv-events", "payload": {"__msgpack__": [1]}},
    }


def test_truncated_raw_capture_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "cap.bin"
    path.write_bytes(_frame("s", b"abcdef")[:-2])
    with pytest.raises(InputError) as info:
        read_instances(str(path))
    assert str(info.value) == f"{path}: truncated frame at byte 0"


def test_raw_frames_iterate_lazily() -> None:
    import io

    frames = list(iter_raw_frames(io.BytesIO(_frame("x.y", b"1") + _frame("z", b""))))
    assert [(f.subject, f.data) for f in frames] == [("x.y", b"1"), ("z", b"")]


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("a.json", b"[1]", "json"),
        ("a.jsonl", b"{}\n{}", "jsonl"),
        ("a.yml", b"a: 1", "yaml"),
        ("a.prom", b"# HELP x", "text"),
        ("stdin", b'{"a": 1}', "json"),
        ("stdin", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        ("stdin", b"a: 1\n", "yaml"),
        ("stdin", b"# HELP m x\n", "text"),
        ("stdin", b"\x82\xa1a\x01\xa1b\xc3", "msgpack"),
    ],
)
def test_sniff(name: str, content: bytes, expected: str) -> None:
    assert sniff(content, name) == expected


def test_multi_document_yaml_is_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "g.yaml"
    path.write_text("a: 1\n---\na: 2\n")
    assert read_instances(str(path)) == ([{"a": 1}, {"a": 2}], True, "yaml")


def test_msgpack_sequence_is_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "m.msgpack"
    path.write_bytes(msgpack.packb({"a": 1}) + msgpack.packb({"a": 2}))
    assert read_instances(str(path)) == ([{"a": 1}, {"a": 2}], True, "msgpack")


@pytest.mark.parametrize(
    ("name", "content", "fmt", "message"),
    [
        ("bad.json", b"{not json", None, "invalid JSON"),
        ("bad.jsonl", b"{}\n{oops\n", None, r"bad.jsonl:2: invalid JSON"),
        ("bad.yaml", b"a: [1\n", None, r"bad.yaml:2:1"),
        ("latin.json", '{"a": "\xe9"}'.encode("latin-1"), None, "not UTF-8"),
        ("empty.yaml", b"", None, "empty YAML"),
        ("x.msgpack", b"\xc1", None, "invalid msgpack"),
        ("x.json", b"{}", "xml", "unknown format"),
    ],
)
def test_bad_input_gives_one_line_input_error(
    tmp_path: Path, name: str, content: bytes, fmt: str | None, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputError, match=message) as info:
        read_instances(str(path), fmt)
    assert "\n" not in str(info.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_instances(str(tmp_path / "nope.json"))
    with pytest.raises(InputError, match="is a directory"):
        read_instances(str(tmp_path))
