"""Read instances from files: JSON, JSONL, YAML, msgpack, text and raw event-plane captures.

Binary values are shown to schemas in one JSON view, the same the 1.6.1 captures use:
bytes that hold one msgpack object become ``{"__msgpack__": <decoded>}``, other bytes
``{"__bytes_b64__": "<base64>"}``.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import yaml

FORMATS: tuple[str, ...] = ("json", "jsonl", "yaml", "msgpack", "raw", "text")

_EXTENSIONS = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".msgpack": "msgpack",
    ".mpk": "msgpack",
    ".bin": "raw",
    ".raw": "raw",
    ".txt": "text",
    ".prom": "text",
}


class InputError(ValueError):
    """Input that cannot be read or decoded; the message is one line for the user."""


@dataclass(frozen=True, slots=True)
class RawFrame:
    """One message of the raw event-plane capture format."""

    subject: str
    data: bytes


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that rejects a mapping holding the same key twice.

    Plain PyYAML keeps the last value silently, which would hide a duplicated key from every
    contract.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:
                continue  # an unhashable key; the base constructor reports it
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def json_view(value: Any) -> Any:
    """Turn decoded msgpack (bytes, tuples, non-str keys) into the JSON view used by schemas."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return {"__msgpack__": json_view(msgpack.unpackb(raw, raw=False, strict_map_key=False))}
        except Exception:
            return {"__bytes_b64__": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, dict):
        return {str(k) if not isinstance(k, str) else k: json_view(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_view(v) for v in value]
    return value


def iter_raw_frames(stream: BinaryIO, name: str = "raw capture") -> Iterator[RawFrame]:
    """Frames of ``u16 BE subject length, subject, u32 BE data length, data``; errors name
    the input ``name``."""
    offset = 0
    while True:
        head = stream.read(2)
        if not head:
            return
        if len(head) < 2:
            raise InputError(f"{name}: truncated frame at byte {offset}")
        (subject_len,) = struct.unpack(">H", head)
        subject = stream.read(subject_len)
        size_raw = stream.read(4)
        if len(subject) < subject_len or len(size_raw) < 4:
            raise InputError(f"{name}: truncated frame at byte {offset}")
        (size,) = struct.unpack(">I", size_raw)
        data = stream.read(size)
        if len(data) < size:
            raise InputError(f"{name}: truncated frame at byte {offset}")
        try:
            subject_text = subject.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(f"{name}: subject at byte {offset} is not UTF-8") from None
        yield RawFrame(subject_text, data)
        offset += 2 + subject_len + 4 + size


def raw_frame_view(frame: RawFrame) -> dict[str, Any]:
    """A raw frame as an ``events.message`` instance."""
    try:
        envelope = msgpack.unpackb(frame.data, raw=False, strict_map_key=False)
    except Exception:
        return {"subject": frame.subject, "decoded": json_view(frame.data)}
    return {"subject": frame.subject, "decoded": json_view(envelope)}


def _looks_like_raw(data: bytes) -> bool:
    if len(data) < 6:
        return False
    subject_len: int = struct.unpack(">H", data[:2])[0]
    if subject_len == 0 or len(data) < 2 + subject_len + 4:
        return False
    subject = data[2 : 2 + subject_len]
    if not all(33 <= b < 127 for b in subject):
        return False
    size: int = struct.unpack(">I", data[2 + subject_len : 6 + subject_len])[0]
    return 6 + subject_len + size <= len(data)


def sniff(data: bytes, name: str) -> str:
    """Guess the format from the file name, then from the content."""
    ext = Path(name).suffix.lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if _looks_like_raw(data):
        return "raw"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "msgpack"
    stripped = text.lstrip()
    if stripped.startswith(("{", "[")):
        try:
            json.loads(text)
            return "json"
        except ValueError:
            return "jsonl"
    if stripped.startswith("#") or not stripped:
        return "text"
    return "yaml"


def decode_text(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text; ``InputError`` naming ``name`` and the first bad byte if not."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def parse(data: bytes, fmt: str, name: str) -> tuple[list[Any], bool]:
    """Decode ``data``; return the instances and whether the format is a stream."""
    if fmt == "raw":
        frames = list(iter_raw_frames(io.BytesIO(data), name))
        return [raw_frame_view(f) for f in frames], True
    if fmt == "msgpack":
        unpacker = msgpack.Unpacker(io.BytesIO(data), raw=False, strict_map_key=False)
        try:
            items = [json_view(obj) for obj in unpacker]
        except Exception as exc:
            raise InputError(f"{name}: invalid msgpack ({exc})") from None
        if not items:
            raise InputError(f"{name}: no msgpack object found")
        return items, len(items) > 1
    text = decode_text(data, name)
    if fmt == "text":
        return [text], False
    if fmt == "json":
        try:
            return [json.loads(text)], False
        except ValueError as exc:
            raise InputError(f"{name}: invalid JSON ({exc})") from None
    if fmt == "jsonl":
        items = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    items.append(json.loads(line))
                except ValueError as exc:
                    raise InputError(f"{name}:{lineno}: invalid JSON ({exc})") from None
        return items, True
    if fmt == "yaml":
        try:
            docs = [d for d in yaml.load_all(text, Loader=_UniqueKeyLoader) if d is not None]
        except yaml.YAMLError as exc:
            raise InputError(yaml_problem(name, exc)) from None
        if not docs:
            raise InputError(f"{name}: empty YAML document")
        return docs, len(docs) > 1
    raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def read_input(path: str) -> tuple[bytes, str]:
    """The bytes of ``path`` (``-`` for standard input) and the name to report it by;
    ``InputError`` with a one-line reason when it cannot be read."""
    if path == "-":
        return sys.stdin.buffer.read(), "<stdin>"
    try:
        return Path(path).read_bytes(), path
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror})") from None


def read_instances(path: str, fmt: str | None = None) -> tuple[list[Any], bool, str]:
    """Read ``path`` (``-`` for standard input); return instances, stream flag and format."""
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    data, name = read_input(path)
    chosen = fmt or sniff(data, name)
    items, stream = parse(data, chosen, name)
    return items, stream, chosen


def yaml_problem(name: str, exc: yaml.YAMLError) -> str:
    """One line for a YAML syntax error: ``NAME:LINE:COLUMN: what is wrong``."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    parts = [getattr(exc, "context", None), getattr(exc, "problem", None)]
    problem = "; ".join(p for p in parts if p) or "invalid YAML"
    return f"{name}{where}: {problem}"
