"""The versioned tap report: what a live tap of a deployment saw and which rules it broke.

Serialised with camelCase keys, ``apiVersion`` and ``kind`` like the conformance report::

    apiVersion: dynconform.dev/v1alpha1
    kind: TapReport
    metadata: {date: ..., dynconformVersion: ...}
    source: {discovery: file:///tmp/kv, zmq: [...]}
    result: passed
    duration: {seconds: 30.0, stopped: duration}
    counts:
      events: 1200
      records: {puts: 9, deletes: 0}
      byContract: {events.kv-events: 300, discovery.entry: 9, ...}
      bySubject: {namespace.dynamo.component.backend.endpoint.generate.kv-events: 300}
      byPublisher: [{publisherId: 21269..., topic: kv-events, events: 300, firstSequence: 0}]
    rates: {eventsPerSecond: 40.0, recordsPerSecond: 0.3}
    violations: {total: 1, byRule: {kv.sequence-monotonic: 1}, items: [...]}
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dynconform.reports._model import API_VERSION, malformed, require_fields, require_kind

__all__ = [
    "TAP_KIND",
    "PublisherCount",
    "TapReport",
    "TapViolation",
]

#: The ``kind`` of a tap report; its ``apiVersion`` is the one of every report.
TAP_KIND = "TapReport"
#: what every tap writes: without them a report would read as an empty, passing run
_REQUIRED = ("source", "duration.seconds", "duration.stopped", "counts.events", "violations.byRule")


@dataclass(frozen=True, slots=True)
class TapViolation:
    """One broken rule: where it was seen (``events``, ``discovery`` or ``framing``) and what.

    ``index`` is the position in its stream: the event number, or the record number.
    """

    source: str
    contract: str
    rule: str
    pointer: str
    message: str
    index: int | None = None
    #: the subject of the event, or the key of the record, when known
    where: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "contract": self.contract,
            "rule": self.rule,
            "pointer": self.pointer,
            "message": self.message,
            "index": self.index,
        }
        if self.where:
            out["where"] = self.where
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TapViolation:
        index = data.get("index")
        return cls(
            source=str(data.get("source", "")),
            contract=str(data["contract"]),
            rule=str(data["rule"]),
            pointer=str(data.get("pointer", "")),
            message=str(data.get("message", "")),
            index=None if index is None else int(index),
            where=str(data.get("where", "")),
        )


@dataclass(frozen=True, slots=True)
class PublisherCount:
    """Events of one publisher on one topic, and the envelope sequence it was first seen at
    (greater than 0: the tap joined its stream after it had started)."""

    publisher_id: int
    topic: str
    events: int
    first_sequence: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "publisherId": self.publisher_id,
            "topic": self.topic,
            "events": self.events,
            "firstSequence": self.first_sequence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PublisherCount:
        first = data.get("firstSequence")
        return cls(
            publisher_id=int(data["publisherId"]),
            topic=str(data["topic"]),
            events=int(data["events"]),
            first_sequence=None if first is None else int(first),
        )


def _counts(data: Any) -> dict[str, int]:
    return {str(k): int(v) for k, v in (data or {}).items()}


@dataclass(frozen=True, slots=True)
class TapReport:
    """Everything one tap run saw: sources, counts, rates and violations."""

    #: where the tap attached: ``discovery``, ``nats``, ``zmq`` (a list) or ``replay``
    source: Mapping[str, Any]
    date: str
    dynconform_version: str
    seconds: float
    #: why the tap stopped: ``duration``, ``interrupted`` or ``end``
    stopped: str
    events: int
    record_puts: int = 0
    record_deletes: int = 0
    by_contract: Mapping[str, int] = field(default_factory=dict)
    by_subject: Mapping[str, int] = field(default_factory=dict)
    by_publisher: tuple[PublisherCount, ...] = ()
    #: discovery record type -> puts and deletes seen
    by_record_type: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    violations_by_rule: Mapping[str, int] = field(default_factory=dict)
    #: the first violations found (the report keeps a bounded number of them)
    violations: tuple[TapViolation, ...] = ()
    #: event channels announced through discovery, with how the tap reached them
    channels: tuple[Mapping[str, Any], ...] = ()
    #: things a reader should know: joined streams, unreachable channels, tap errors
    notes: tuple[str, ...] = ()

    @property
    def violation_count(self) -> int:
        return sum(self.violations_by_rule.values())

    @property
    def passed(self) -> bool:
        """Whether no rule was broken."""
        return self.violation_count == 0

    @property
    def events_per_second(self) -> float:
        seconds = round(self.seconds, 3)  # as serialised, so that rates survive a round trip
        return self.events / seconds if seconds > 0 else 0.0

    @property
    def records_per_second(self) -> float:
        seconds = round(self.seconds, 3)
        records = self.record_puts + self.record_deletes
        return records / seconds if seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": TAP_KIND,
            "metadata": {"date": self.date, "dynconformVersion": self.dynconform_version},
            "source": dict(self.source),
            "result": "passed" if self.passed else "failed",
            "duration": {"seconds": round(self.seconds, 3), "stopped": self.stopped},
            "counts": {
                "events": self.events,
                "records": {"puts": self.record_puts, "deletes": self.record_deletes},
                "byContract": dict(sorted(self.by_contract.items())),
                "bySubject": dict(sorted(self.by_subject.items())),
                "byPublisher": [p.to_dict() for p in self.by_publisher],
                "byRecordType": {
                    k: dict(sorted(v.items())) for k, v in sorted(self.by_record_type.items())
                },
            },
            "rates": {
                "eventsPerSecond": round(self.events_per_second, 1),
                "recordsPerSecond": round(self.records_per_second, 3),
            },
            "violations": {
                "total": self.violation_count,
                "byRule": dict(sorted(self.violations_by_rule.items())),
                "items": [v.to_dict() for v in self.violations],
            },
            "channels": [dict(c) for c in self.channels],
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TapReport:
        """Read a serialised report; raises :class:`InputError` for another kind or version."""
        require_kind(data, TAP_KIND)
        require_fields(data, TAP_KIND, *_REQUIRED)
        try:
            meta = data.get("metadata") or {}
            duration = data.get("duration") or {}
            counts = data.get("counts") or {}
            records = counts.get("records") or {}
            violations = data.get("violations") or {}
            return cls(
                source=dict(data.get("source") or {}),
                date=str(meta.get("date", "")),
                dynconform_version=str(meta.get("dynconformVersion", "")),
                seconds=float(duration.get("seconds", 0.0)),
                stopped=str(duration.get("stopped", "")),
                events=int(counts.get("events", 0)),
                record_puts=int(records.get("puts", 0)),
                record_deletes=int(records.get("deletes", 0)),
                by_contract=_counts(counts.get("byContract")),
                by_subject=_counts(counts.get("bySubject")),
                by_publisher=tuple(
                    PublisherCount.from_dict(p) for p in counts.get("byPublisher") or ()
                ),
                by_record_type={
                    str(k): _counts(v) for k, v in (counts.get("byRecordType") or {}).items()
                },
                violations_by_rule=_counts(violations.get("byRule")),
                violations=tuple(TapViolation.from_dict(v) for v in violations.get("items") or ()),
                channels=tuple(dict(c) for c in data.get("channels") or ()),
                notes=tuple(str(n) for n in data.get("notes") or ()),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise malformed(TAP_KIND, exc) from None
