"""The key grammar of Dynamo's discovery plane, in its etcd and file-store forms.

Every discovery record is stored under a key that names what it describes::

    v1/instances/{namespace}/{component}/{endpoint}/{instance_id:x}
    v1/mdc/{namespace}/{component}/{endpoint}/{instance_id:x}[/{model_suffix}]
    v1/event_channels/namespace/{ns}[/component/{c}[/endpoint/{e}]]/topic/{topic}/{id:x}
    v1/event_sources/namespace/{ns}[/component/{c}[/endpoint/{e}]]/topic/{topic}/{id:x}

Names in ``event_channels``/``event_sources`` keys are event-segment encoded: ASCII letters,
digits, ``-`` and ``_`` stay, every other byte becomes ``%XX``. The etcd backend stores keys
as written above. The file backend keeps ``v1/<kind>/`` as directories and percent-encodes the
rest of the key into one file name, keeping only ASCII letters and digits::

    v1/instances/dynamo%2Fbackend%2Fgenerate%2F4300c7a4ec4251b8

:func:`parse_key` accepts exactly the canonical keys that :func:`format_key` writes, so a parse
and a format round-trip byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, get_args

__all__ = [
    "KINDS",
    "RECORD_TYPES",
    "U64_MAX",
    "DiscoveryKey",
    "DiscoveryKeyError",
    "KeyForm",
    "KeyKind",
    "decode_event_segment",
    "encode_event_segment",
    "format_key",
    "key_form",
    "parse_key",
]

KeyKind = Literal["instances", "mdc", "event_channels", "event_sources"]
KeyForm = Literal["etcd", "file"]

#: The four kinds of discovery key, in the order Dynamo documents them.
KINDS: tuple[KeyKind, ...] = get_args(KeyKind)

#: The ``type`` tag of the record stored under each kind of key.
RECORD_TYPES: Mapping[KeyKind, str] = {
    "instances": "Endpoint",
    "mdc": "Model",
    "event_channels": "EventChannel",
    "event_sources": "EventSource",
}

U64_MAX = 2**64 - 1

_ROOT = "v1"
_ASCII_ALNUM = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
_EVENT_SAFE = _ASCII_ALNUM | frozenset(b"-_")
_HEX_ID = re.compile(r"0|[1-9a-f][0-9a-f]{0,15}")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


class DiscoveryKeyError(ValueError):
    """A discovery key (or a :class:`DiscoveryKey`) that does not follow the key grammar."""


def _encode(value: str, safe: frozenset[int]) -> str:
    return "".join(chr(b) if b in safe else f"%{b:02X}" for b in value.encode("utf-8"))


def _decode(text: str, safe: frozenset[int], what: str) -> str:
    out = bytearray()
    i = 0
    while i < len(text):
        char = text[i]
        if char == "%":
            match = _PERCENT.match(text, i)
            if match is None:
                raise DiscoveryKeyError(
                    f"{what}: '%' at offset {i} is not followed by two hex digits"
                )
            out.append(int(match.group(1), 16))
            i += 3
            continue
        if ord(char) not in safe:
            raise DiscoveryKeyError(f"{what}: character {char!r} must be percent-encoded")
        out.append(ord(char))
        i += 1
    try:
        decoded = out.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DiscoveryKeyError(f"{what}: percent-encoded bytes are not UTF-8 ({exc})") from None
    if _encode(decoded, safe) != text:
        raise DiscoveryKeyError(
            f"{what}: not canonically encoded (expected {_encode(decoded, safe)!r})"
        )
    return decoded


def encode_event_segment(value: str) -> str:
    """Encode one event-key name: keep ASCII letters, digits, ``-``, ``_``; ``%XX`` the rest."""
    return _encode(value, _EVENT_SAFE)


def decode_event_segment(text: str) -> str:
    """Decode one canonically encoded event-key name (inverse of :func:`encode_event_segment`).

    Raises :class:`DiscoveryKeyError` for a bad or non-canonical escape.
    """
    return _decode(text, _EVENT_SAFE, f"event key segment {text!r}")


def _check_name(value: object, field: str, *, slash_ok: bool) -> None:
    if not isinstance(value, str) or not value:
        raise DiscoveryKeyError(f"{field} must be a non-empty string, got {value!r}")
    if not slash_ok and "/" in value:
        raise DiscoveryKeyError(f"{field} {value!r} must not contain '/'")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise DiscoveryKeyError(f"{field} {value!r} is not encodable as UTF-8") from None


@dataclass(frozen=True, slots=True)
class DiscoveryKey:
    """A parsed discovery key.

    ``component`` and ``endpoint`` are ``None`` only in event keys of a namespace- or
    component-scoped channel; ``topic`` is set exactly for event keys; ``model_suffix`` only
    ever appears in ``mdc`` keys (e.g. a LoRA adapter). ``instance_id`` is the worker's
    instance ID for ``instances``/``mdc`` keys and the publisher ID for event keys.
    """

    kind: KeyKind
    namespace: str
    component: str | None
    endpoint: str | None
    instance_id: int
    topic: str | None = None
    model_suffix: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise DiscoveryKeyError(f"unknown key kind {self.kind!r}; expected one of {KINDS}")
        if (
            not isinstance(self.instance_id, int)
            or isinstance(self.instance_id, bool)
            or not 0 <= self.instance_id <= U64_MAX
        ):
            raise DiscoveryKeyError(f"instance_id must be a u64, got {self.instance_id!r}")
        event = self.is_event
        _check_name(self.namespace, "namespace", slash_ok=event)
        if event:
            _check_name(self.topic, "topic", slash_ok=True)
            if self.component is not None:
                _check_name(self.component, "component", slash_ok=True)
            if self.endpoint is not None:
                if self.component is None:
                    raise DiscoveryKeyError("an endpoint scope needs a component")
                _check_name(self.endpoint, "endpoint", slash_ok=True)
            if self.model_suffix is not None:
                raise DiscoveryKeyError(f"{self.kind} keys have no model suffix")
            return
        _check_name(self.component, "component", slash_ok=False)
        _check_name(self.endpoint, "endpoint", slash_ok=False)
        if self.topic is not None:
            raise DiscoveryKeyError(f"{self.kind} keys have no topic")
        if self.model_suffix is not None:
            if self.kind != "mdc":
                raise DiscoveryKeyError("only mdc keys carry a model suffix")
            _check_name(self.model_suffix, "model_suffix", slash_ok=False)

    @property
    def is_event(self) -> bool:
        """Whether this is an ``event_channels`` or ``event_sources`` key."""
        return self.kind in ("event_channels", "event_sources")

    @property
    def record_type(self) -> str:
        """The ``type`` tag of the record stored under this key."""
        return RECORD_TYPES[self.kind]

    @property
    def scope(self) -> Literal["namespace", "component", "endpoint"]:
        """The ownership domain the key names (always ``endpoint`` for non-event keys)."""
        if self.endpoint is not None:
            return "endpoint"
        return "component" if self.component is not None else "namespace"


def _parse_hex(text: str, what: str) -> int:
    if not _HEX_ID.fullmatch(text):
        raise DiscoveryKeyError(
            f"{what}: instance id {text!r} is not lowercase hex without leading zeros (u64)"
        )
    return int(text, 16)


def _parse_body(kind: KeyKind, body: str, what: str) -> DiscoveryKey:
    parts = body.split("/")
    if kind in ("instances", "mdc"):
        allowed = (4, 5) if kind == "mdc" else (4,)
        if len(parts) not in allowed:
            shape = "{ns}/{component}/{endpoint}/{instance_id:x}"
            if kind == "mdc":
                shape += "[/{model_suffix}]"
            raise DiscoveryKeyError(
                f"{what}: expected v1/{kind}/{shape}, got {len(parts)} segments"
            )
        if any(not part for part in parts):
            raise DiscoveryKeyError(f"{what}: empty path segment")
        ns, component, endpoint, hex_id = parts[:4]
        suffix = parts[4] if len(parts) == 5 else None
        return DiscoveryKey(kind, ns, component, endpoint, _parse_hex(hex_id, what), None, suffix)
    match parts:
        case ["namespace", ns, "topic", topic, hex_id]:
            names: tuple[str, str | None, str | None] = (ns, None, None)
        case ["namespace", ns, "component", comp, "topic", topic, hex_id]:
            names = (ns, comp, None)
        case ["namespace", ns, "component", comp, "endpoint", ep, "topic", topic, hex_id]:
            names = (ns, comp, ep)
        case _:
            raise DiscoveryKeyError(
                f"{what}: expected v1/{kind}/namespace/{{ns}}[/component/{{c}}"
                "[/endpoint/{e}]]/topic/{topic}/{id:x}"
            )

    def decode(segment: str) -> str:
        return _decode(segment, _EVENT_SAFE, f"{what}: segment {segment!r}")

    ns_name, comp_name, ep_name = (None if n is None else decode(n) for n in names)
    assert ns_name is not None
    return DiscoveryKey(kind, ns_name, comp_name, ep_name, _parse_hex(hex_id, what), decode(topic))


def _split(text: str) -> tuple[KeyKind, str]:
    what = f"discovery key {text!r}"
    root, _, rest = text.partition("/")
    if root != _ROOT:
        raise DiscoveryKeyError(f"{what}: must start with '{_ROOT}/'")
    kind, sep, body = rest.partition("/")
    for known in KINDS:
        if kind == known:
            if not sep or not body:
                raise DiscoveryKeyError(f"{what}: nothing after '{_ROOT}/{kind}/'")
            return known, body
    raise DiscoveryKeyError(
        f"{what}: unknown key kind {kind!r}; expected one of {', '.join(KINDS)}"
    )


def key_form(text: str) -> KeyForm:
    """Which form ``text`` is written in: ``file`` when nothing after ``v1/<kind>/`` is a ``/``."""
    _, body = _split(text)
    return "etcd" if "/" in body else "file"


def parse_key(text: str, form: KeyForm | None = None) -> DiscoveryKey:
    """Parse a discovery key in etcd or file form (detected unless ``form`` is given).

    Raises :class:`DiscoveryKeyError` (a :class:`ValueError`) naming what is wrong.
    """
    kind, body = _split(text)
    what = f"discovery key {text!r}"
    if form is None:
        form = "etcd" if "/" in body else "file"
    if form == "file":
        body = _decode(body, _ASCII_ALNUM, f"{what} (file form)")
    elif form != "etcd":
        raise DiscoveryKeyError(f"unknown key form {form!r}; expected 'etcd' or 'file'")
    return _parse_body(kind, body, what)


def _etcd_body(key: DiscoveryKey) -> str:
    if not key.is_event:
        body = f"{key.namespace}/{key.component}/{key.endpoint}/{key.instance_id:x}"
        return body if key.model_suffix is None else f"{body}/{key.model_suffix}"
    parts = ["namespace", encode_event_segment(key.namespace)]
    if key.component is not None:
        parts += ["component", encode_event_segment(key.component)]
    if key.endpoint is not None:
        parts += ["endpoint", encode_event_segment(key.endpoint)]
    assert key.topic is not None  # guaranteed by DiscoveryKey.__post_init__
    parts += ["topic", encode_event_segment(key.topic), f"{key.instance_id:x}"]
    return "/".join(parts)


def format_key(key: DiscoveryKey, form: KeyForm = "etcd") -> str:
    """Write ``key`` as the etcd key or as the file backend's path (relative to its root)."""
    body = _etcd_body(key)
    if form == "file":
        body = _encode(body, _ASCII_ALNUM)
    elif form != "etcd":
        raise DiscoveryKeyError(f"unknown key form {form!r}; expected 'etcd' or 'file'")
    return f"{_ROOT}/{key.kind}/{body}"
