"""Event-plane subjects: ``namespace.{ns}[.component.{c}[.endpoint.{e}]].{topic}``.

Dynamo publishes every event-plane message (NATS subject or ZMQ-broker routing key) on the
subject of its scope and topic. Each segment is percent-encoded: ASCII letters, digits, ``-``
and ``_`` stay as they are, every other byte becomes ``%XX`` (upper-case hex), so a segment
never holds a ``.`` and the subject splits unambiguously. The envelope inside the message
carries the topic unencoded.

>>> parse_subject("namespace.dynamo.component.backend.endpoint.generate.kv-events").topic
'kv-events'
>>> format_subject("dynamo", "kv_metrics", component="backend", endpoint="generate")
'namespace.dynamo.component.backend.endpoint.generate.kv_metrics'
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "KNOWN_TOPICS",
    "SUBJECT_PATTERN",
    "TOPIC_ACTIVE_SEQUENCES",
    "TOPIC_CONTRACTS",
    "TOPIC_FORWARD_PASS_METRICS",
    "TOPIC_KV_EVENTS",
    "TOPIC_KV_METRICS",
    "EventSubject",
    "Scope",
    "SubjectError",
    "decode_segment",
    "encode_segment",
    "format_subject",
    "parse_subject",
]

#: KV cache block stored/removed/cleared events of a worker (``events.kv-events``).
TOPIC_KV_EVENTS = "kv-events"
#: Active KV load of a worker or scheduler (``events.kv-metrics``).
TOPIC_KV_METRICS = "kv_metrics"
#: Per-iteration scheduler telemetry (``events.forward-pass-metrics``).
TOPIC_FORWARD_PASS_METRICS = "forward-pass-metrics"
#: Request lifecycle events shared between routers (``events.active-sequences``).
TOPIC_ACTIVE_SEQUENCES = "active_sequences_events"

#: Each topic that ai-dynamo 1.6.1 publishes on, with the contract of its payload.
TOPIC_CONTRACTS: Mapping[str, str] = MappingProxyType(
    {
        TOPIC_KV_EVENTS: "events.kv-events",
        TOPIC_KV_METRICS: "events.kv-metrics",
        TOPIC_FORWARD_PASS_METRICS: "events.forward-pass-metrics",
        TOPIC_ACTIVE_SEQUENCES: "events.active-sequences",
    }
)

#: The topics that have a payload contract, in a stable order.
KNOWN_TOPICS: tuple[str, ...] = tuple(TOPIC_CONTRACTS)

_SEGMENT = r"(?:[A-Za-z0-9_-]|%[0-9A-F]{2})+"

#: A regular expression (ECMA-262 and Python compatible) that every event subject matches.
SUBJECT_PATTERN = (
    rf"^namespace\.{_SEGMENT}(?:\.component\.{_SEGMENT}(?:\.endpoint\.{_SEGMENT})?)?\.{_SEGMENT}$"
)

Scope = Literal["namespace", "component", "endpoint"]

_PLAIN = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEX = frozenset("0123456789ABCDEF")


class SubjectError(ValueError):
    """A string that is not a canonical event-plane subject or segment."""


def encode_segment(value: str) -> str:
    """Percent-encode one subject segment the way Dynamo does."""
    return "".join(chr(b) if b in _PLAIN else f"%{b:02X}" for b in value.encode("utf-8"))


def decode_segment(segment: str) -> str:
    """Decode one canonical segment; raise :class:`SubjectError` for any other spelling."""
    if not segment:
        raise SubjectError("empty subject segment")
    out = bytearray()
    i = 0
    while i < len(segment):
        char = segment[i]
        if char == "%":
            digits = segment[i + 1 : i + 3]
            if len(digits) != 2 or not set(digits) <= _HEX:
                raise SubjectError(f"invalid escape {segment[i : i + 3]!r} in segment {segment!r}")
            out.append(int(digits, 16))
            i += 3
        elif ord(char) < 128 and ord(char) in _PLAIN:
            out.append(ord(char))
            i += 1
        else:
            raise SubjectError(f"character {char!r} must be percent-encoded in segment {segment!r}")
    try:
        value = out.decode("utf-8")
    except UnicodeDecodeError:
        raise SubjectError(f"segment {segment!r} does not decode to UTF-8") from None
    if encode_segment(value) != segment:
        raise SubjectError(f"segment {segment!r} is not canonically encoded")
    return value


@dataclass(frozen=True, slots=True)
class EventSubject:
    """The scope and topic that an event-plane subject names (all values decoded)."""

    namespace: str
    topic: str
    component: str | None = None
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.endpoint is not None and self.component is None:
            raise SubjectError("an endpoint scope needs a component")
        for name in ("namespace", "topic", "component", "endpoint"):
            if getattr(self, name) == "":
                raise SubjectError(f"{name} must not be empty")

    @property
    def scope(self) -> Scope:
        """The narrowest scope named: namespace, component or endpoint."""
        if self.endpoint is not None:
            return "endpoint"
        return "component" if self.component is not None else "namespace"

    def __str__(self) -> str:
        return format_subject(
            self.namespace, self.topic, component=self.component, endpoint=self.endpoint
        )


def format_subject(
    namespace: str, topic: str, *, component: str | None = None, endpoint: str | None = None
) -> str:
    """The subject of ``topic`` in the given scope."""
    if endpoint is not None and component is None:
        raise SubjectError("an endpoint scope needs a component")
    parts = ["namespace", encode_segment(namespace)]
    if component is not None:
        parts += ["component", encode_segment(component)]
    if endpoint is not None:
        parts += ["endpoint", encode_segment(endpoint)]
    parts.append(encode_segment(topic))
    return ".".join(parts)


def parse_subject(subject: str) -> EventSubject:
    """Split a subject into scope and topic; raise :class:`SubjectError` if it is not one."""
    tokens = subject.split(".")
    shapes = {3: (), 5: ("component",), 7: ("component", "endpoint")}
    labels = shapes.get(len(tokens))
    if labels is None or tokens[0] != "namespace":
        raise SubjectError(
            f"{subject!r} is not namespace.{{ns}}[.component.{{c}}[.endpoint.{{e}}]].{{topic}}"
        )
    values: dict[str, str] = {"namespace": decode_segment(tokens[1])}
    for pos, label in enumerate(labels):
        key, value = tokens[2 + 2 * pos], tokens[3 + 2 * pos]
        if key != label:
            raise SubjectError(
                f"{subject!r}: expected {label!r} at token {3 + 2 * pos}, got {key!r}"
            )
        values[label] = decode_segment(value)
    return EventSubject(topic=decode_segment(tokens[-1]), **values)
