"""The live tap: attach to a running deployment and validate its wire at line rate.

A :class:`LiveTap` watches the discovery store (file or etcd) and the event plane (ZMQ
publishers and/or a NATS server) through the conformance taps, which hand it every message
as raw bytes. Events go through the fast validator (``dynconform.contracts.fast``) as one
stream with every rule on: schemas, subjects and topics, envelope sequences (gaps,
duplicates), KV hash chains, event ids, parents and removals. Every discovery record put is
validated against ``discovery.entry`` (and, through it, the record and card contracts)::

    from dynconform.conformance import LiveTap, LiveTapConfig

    tap = LiveTap(LiveTapConfig(discovery="etcd://127.0.0.1:2379", nats="nats://127.0.0.1:4222"))
    report = tap.run(duration=30)
    print(report.passed, dict(report.violations_by_rule))

ZMQ publishers and NATS subjects are found through the ``EventChannel`` records of discovery
as they appear (ZMQ: a SUB socket per announced endpoint; NATS: one wildcard subscription,
so a channel announced later is heard from its first message). ZMQ endpoints given
explicitly are tapped as well.

The stream rules replay each publisher from the first message the tap hears. A KV event
publisher first heard after its sequence 0 had started before the tap: removals and parents
of blocks it stored earlier cannot be judged, so the report notes it.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import re
import signal
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

from dynconform import __version__
from dynconform.conformance._discovery_tap import (
    DiscoveryTap,
    check_location,
    discovery_tap,
    entry_key,
)
from dynconform.conformance._event_tap import NatsTap, ZmqEventTap
from dynconform.contracts import Validator
from dynconform.contracts.event_subjects import TOPIC_KV_EVENTS
from dynconform.contracts.fast import FastValidator, FrameRun
from dynconform.reports import PublisherCount, TapReport, TapViolation
from dynconform.services import Lifecycle, ServiceError, check_reachable, is_server_url

__all__ = [
    "DEFAULT_SCOPE",
    "LiveProgress",
    "LiveTap",
    "LiveTapConfig",
    "LiveTapError",
    "parse_scope",
]

#: The subject scope of explicitly given ZMQ endpoints that no channel record describes:
#: where ai-dynamo workers publish by default.
DEFAULT_SCOPE = "dynamo/backend/generate"
#: Frames validated per batch, between two looks at the discovery store and the clock.
BATCH = 2048
#: How long the loop sleeps when nothing arrived.
IDLE = 0.01
_ZMQ_ENDPOINT = re.compile(r"^(tcp://[^\s:/]+:\d+|ipc://\S+)$")


class LiveTapError(Exception):
    """The tap cannot attach: a bad location or an unreachable store or server (one line)."""


def parse_scope(text: str) -> tuple[str, str | None, str | None]:
    """``NAMESPACE[/COMPONENT[/ENDPOINT]]`` as the scope tuple of an event subject."""
    parts = text.split("/")
    if not 1 <= len(parts) <= 3 or not all(parts):
        raise LiveTapError(f"scope {text!r}: expected NAMESPACE[/COMPONENT[/ENDPOINT]]")
    namespace = parts[0]
    component = parts[1] if len(parts) > 1 else None
    endpoint = parts[2] if len(parts) > 2 else None
    return namespace, component, endpoint


@dataclass(frozen=True, slots=True)
class LiveTapConfig:
    """Where to attach: a discovery store, a NATS server, ZMQ publishers (any of them)."""

    #: ``etcd://HOST:PORT`` or ``file://DIR`` (a ``DYN_FILE_KV`` directory)
    discovery: str | None = None
    #: ``nats://HOST:PORT``
    nats: str | None = None
    #: ZMQ PUB endpoints to connect besides those announced in discovery
    zmq: tuple[str, ...] = ()
    #: subject scope of the ``zmq`` endpoints that no channel record describes
    scope: str = DEFAULT_SCOPE
    #: violations kept with their details (all are counted)
    keep: int = 100
    #: how long to wait for the NATS subscription at start
    timeout: float = 10.0


@dataclass(frozen=True, slots=True)
class LiveProgress:
    """Where a live tap stands."""

    seconds: float
    events: int
    records: int
    violations: int
    #: events per second since the previous progress
    rate: float
    #: ZMQ publishers connected plus NATS subscriptions
    channels: int


def _check_config(config: LiveTapConfig) -> None:
    if not (config.discovery or config.nats or config.zmq):
        raise LiveTapError("nothing to tap: give --discovery, --nats or --zmq")
    if config.keep < 0:
        raise LiveTapError("the number of violations kept must be >= 0")
    if config.nats is not None and not is_server_url(config.nats, ("nats",)):
        raise LiveTapError(f"NATS URL {config.nats!r}: expected nats://HOST:PORT")
    for endpoint in config.zmq:
        if not _ZMQ_ENDPOINT.match(endpoint):
            raise LiveTapError(f"ZMQ endpoint {endpoint!r}: expected tcp://HOST:PORT")
    parse_scope(config.scope)


def _open_discovery(location: str) -> DiscoveryTap:
    try:
        check_location(location)
    except ValueError as exc:
        raise LiveTapError(str(exc)) from None
    tap = discovery_tap(location)
    tap.keep_history = False  # the live tap reads the timeline once, as it goes
    try:
        tap.start()
    except OSError as exc:
        reason = getattr(exc, "reason", None) or exc.strerror or exc
        raise LiveTapError(f"cannot reach etcd at {location}: {reason}") from None
    except ValueError as exc:
        raise LiveTapError(f"discovery {location!r} does not answer like etcd: {exc}") from None
    return tap


class LiveTap(Lifecycle):
    """Validates everything a running deployment puts on its discovery store and event plane.

    :meth:`run` attaches, validates until ``duration`` or Ctrl-C and returns the
    :class:`~dynconform.reports.TapReport`. For finer control: :meth:`start`, then
    :meth:`pump` (validate what arrived), :meth:`progress`, and :meth:`stop` +
    :meth:`report`.
    """

    def __init__(self, config: LiveTapConfig, *, validator: FastValidator | None = None) -> None:
        _check_config(config)
        self.config = config
        self.fast = validator if validator is not None else FastValidator()
        self.reference: Validator = self.fast.reference
        self.discovery: DiscoveryTap | None = None
        self.zmq: ZmqEventTap | None = None
        self.nats: NatsTap | None = None
        self.run_: FrameRun = self.fast.frames(keep=config.keep, publishers=True)
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self.by_subject: Counter[str] = Counter()
        self.by_record_type: dict[str, Counter[str]] = {}
        self.checked: Counter[str] = Counter()
        self.by_rule: Counter[str] = Counter()
        self.violations: list[TapViolation] = []
        self.errors: list[str] = []
        self.record_puts = 0
        self.record_deletes = 0
        self.request_frames = 0
        #: workers whose last Endpoint record was deleted (their rule state is dropped)
        self.workers_left = 0
        self._framing_seen = 0
        self._event_violations_seen = 0
        self._last_entry: dict[str, dict[str, Any]] = {}
        self._started = 0.0
        self._stopped_at: float | None = None
        self._date = ""
        self._last_progress = (0.0, 0)
        self._finished = False
        self._interrupted = threading.Event()

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Attach; raises :class:`LiveTapError` when a store or server cannot be reached."""
        config = self.config
        if config.nats is not None:
            try:
                check_reachable("nats", config.nats)
            except ServiceError as exc:
                raise LiveTapError(str(exc)) from None
        try:
            if config.discovery is not None:
                self.discovery = _open_discovery(config.discovery)
            if config.zmq or self.discovery is not None:
                zmq_tap = ZmqEventTap(
                    self.discovery,
                    endpoints=config.zmq,
                    scope=parse_scope(config.scope),
                )
                zmq_tap.on_frame = self._sink
                zmq_tap.start()
                self.zmq = zmq_tap
            if config.nats is not None:
                nats_tap = NatsTap(config.nats, self.discovery)
                nats_tap.on_frame = self._sink
                self.nats = nats_tap
                nats_tap.start(config.timeout)
                if nats_tap.errors:
                    raise LiveTapError(f"cannot subscribe at {config.nats}: {nats_tap.errors[0]}")
        except BaseException:
            self.stop()
            raise
        self._date = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
        self._started = time.monotonic()
        self._last_progress = (self._started, 0)

    def stop(self) -> None:
        """Detach from everything (the report stays available)."""
        for tap in (self.zmq, self.nats, self.discovery):
            if tap is not None:
                with contextlib.suppress(Exception):
                    tap.stop()
        if self._stopped_at is None and self._started:
            self._stopped_at = time.monotonic()

    def attached(self) -> bool:
        """Whether every event channel announced so far is connected (ZMQ handshakes done)."""
        if self.zmq is None:
            return True
        return set(self.zmq.channels()) <= self.zmq.handshaken

    def wait_attached(self, timeout: float) -> bool:
        """Wait (validating what arrives) until :meth:`attached`; whether it was in time."""
        deadline = time.monotonic() + timeout
        while not self.attached():
            if time.monotonic() >= deadline:
                return False
            if not self.pump():
                time.sleep(IDLE)
        time.sleep(0.05)  # a SUB socket's subscription follows its handshake on the wire
        return True

    # -- validation -----------------------------------------------------------------------

    def _sink(self, plane: str, subject: str, data: bytes) -> None:
        self._queue.append((plane, subject, data))

    def pump(self, limit: int = BATCH) -> int:
        """Validate the messages and discovery changes that arrived; returns how many."""
        done = self._pump_records() + self._pump_framing()
        queue = self._queue
        if not queue:
            return done
        batch: list[tuple[str, bytes]] = []
        popleft = queue.popleft
        for _ in range(min(limit, len(queue))):
            plane, subject, data = popleft()
            if plane == "event_plane":
                batch.append((subject, data))
            else:
                self._request_frame(subject, data)
        if batch:
            self.by_subject.update(subject for subject, _ in batch)
            first = self.run_.count
            self.run_.feed_all(batch)
            self._collect_event_violations(batch, first)
        return done + len(batch)

    def _collect_event_violations(self, batch: list[tuple[str, bytes]], first: int) -> None:
        found = self.run_.flow.report.violations
        for violation in found[self._event_violations_seen :]:
            index = violation.index
            where = ""
            if index is not None and 0 <= index - first < len(batch):
                where = batch[index - first][0]
            self._keep(
                TapViolation(
                    "events",
                    violation.contract,
                    violation.rule,
                    violation.pointer,
                    violation.message,
                    index,
                    where,
                )
            )
        self._event_violations_seen = len(found)

    def _keep(self, violation: TapViolation) -> None:
        if len(self.violations) < self.config.keep:
            self.violations.append(violation)

    def _request_frame(self, subject: str, data: bytes) -> None:
        view = {
            "subject": subject,
            "plane": "request_plane",
            "decoded": {"__bytes_b64__": base64.b64encode(data).decode("ascii")},
        }
        index = self.request_frames
        self.request_frames += 1
        self.by_subject[subject] += 1
        report = self.reference.validate("events.message", view)
        self.checked.update(report.checked)
        for v in report.violations:
            self.by_rule[v.rule] += 1
            self._keep(
                TapViolation(
                    "request_plane", v.contract, v.rule, v.pointer, v.message, index, subject
                )
            )

    def _worker_left(self, gone: dict[str, Any] | None) -> None:
        """Forget the rule state of a worker once the last of its Endpoint records is gone."""
        value = gone.get("value") if gone is not None else None
        if not isinstance(value, dict) or value.get("type") != "Endpoint":
            return
        instance = value.get("instance_id")
        if not isinstance(instance, int):
            return
        for entry in self._last_entry.values():
            other = entry.get("value")
            if (
                isinstance(other, dict)
                and other.get("type") == "Endpoint"
                and other.get("instance_id") == instance
            ):
                return
        self.workers_left += 1
        self.run_.forget_worker(instance)

    def _pump_records(self) -> int:
        if self.discovery is None:
            return 0
        changes = self.discovery.drain()
        for change in changes:
            entry = change.entry
            if entry is None:
                gone = self._last_entry.pop(change.key, None)
                self.record_deletes += 1
                self._count_record(gone, "deletes")
                self._worker_left(gone)
                continue
            self._last_entry[change.key] = entry
            index = self.record_puts
            self.record_puts += 1
            self._count_record(entry, "puts")
            report = self.reference.validate("discovery.entry", entry)
            self.checked.update(report.checked)
            for v in report.violations:
                self.by_rule[v.rule] += 1
                where = entry_key(entry)
                self._keep(
                    TapViolation(
                        "discovery", v.contract, v.rule, v.pointer, v.message, index, where
                    )
                )
        return len(changes)

    def _count_record(self, entry: dict[str, Any] | None, what: str) -> None:
        value = entry.get("value") if entry is not None else None
        kind = value.get("type") if isinstance(value, dict) else None
        name = kind if isinstance(kind, str) else "unknown"
        self.by_record_type.setdefault(name, Counter())[what] += 1

    def _pump_framing(self) -> int:
        tap = self.zmq
        if tap is None or tap.framing_total == self._framing_seen:
            return 0
        total = tap.framing_total
        new = total - self._framing_seen
        issues = tap.framing_issues[self._framing_seen : total]
        self._framing_seen = total
        self.by_rule["events.zmq-framing"] += new
        for issue in issues:
            self._keep(TapViolation("framing", "events.message", "events.zmq-framing", "", issue))
        return new

    # -- progress and report --------------------------------------------------------------

    def _now(self) -> float:
        return self._stopped_at if self._stopped_at is not None else time.monotonic()

    @property
    def events(self) -> int:
        """Event-plane messages validated so far."""
        return self.run_.count

    def violation_count(self) -> int:
        return sum(self.run_.violations.values()) + sum(self.by_rule.values())

    def progress(self) -> LiveProgress:
        """Counts so far, with the event rate since the previous call."""
        now = time.monotonic()
        then, before = self._last_progress
        events = self.events
        rate = (events - before) / (now - then) if now > then else 0.0
        self._last_progress = (now, events)
        channels = len(self.zmq.handshaken) if self.zmq is not None else 0
        channels += 1 if self.nats is not None else 0
        return LiveProgress(
            seconds=self._now() - self._started if self._started else 0.0,
            events=events,
            records=self.record_puts + self.record_deletes,
            violations=self.violation_count(),
            rate=rate,
            channels=channels,
        )

    def finish(self) -> None:
        """Validate what is still queued and run the end-of-stream checks (once)."""
        if self._finished:
            return
        while self.pump():
            pass
        before = len(self.run_.flow.report.violations)
        self.run_.finish()
        for v in self.run_.flow.report.violations[before:]:
            self._keep(TapViolation("events", v.contract, v.rule, v.pointer, v.message, v.index))
        self._finished = True

    def channels(self) -> list[dict[str, Any]]:
        """The event channels announced in discovery, how the tap reaches them, and the
        events heard from each (by publisher id and topic)."""
        if self.discovery is None:
            return []
        heard = self.run_.publishers or Counter()
        out = []
        for record in self.discovery.records("EventChannel"):
            transport = record.get("transport")
            kind = transport.get("kind") if isinstance(transport, dict) else None
            config = transport.get("config") if isinstance(transport, dict) else None
            config = config if isinstance(config, dict) else {}
            if kind == "Zmq":
                address = str(config.get("endpoint", ""))
                tapped = self.zmq is not None and address in self.zmq.handshaken
            else:
                address = str(config.get("subject_prefix", ""))
                tapped = kind == "Nats" and self.nats is not None
            publisher = record.get("instance_id")
            topic = str(record.get("topic", ""))
            out.append(
                {
                    "topic": topic,
                    "transport": str(kind),
                    "address": address,
                    "publisherId": publisher,
                    "tapped": tapped,
                    "events": heard.get((publisher, topic), 0) if isinstance(publisher, int) else 0,
                }
            )
        out.sort(key=lambda c: (c["topic"], c["address"]))
        return out

    def notes(self) -> list[str]:
        out = []
        for (publisher, topic), first in sorted(self.run_.first_sequences.items()):
            if topic == TOPIC_KV_EVENTS and first > 0:
                out.append(
                    f"publisher {publisher} ({topic}) was first heard at sequence {first}: it "
                    "started before the tap, so removals and parents of blocks it stored "
                    "earlier may be reported (kv.removed-after-stored, kv.parent-stored)"
                )
        untapped = sorted(
            {c["topic"] for c in self.channels() if c["transport"] == "Nats" and not c["tapped"]}
        )
        if untapped:
            out.append(
                "discovery announces NATS event channels (" + ", ".join(untapped) + "); give "
                "--nats URL to tap them"
            )
        for tap in (self.discovery, self.zmq, self.nats):
            if tap is not None:
                out += [f"{tap.kind} tap: {error}" for error in tap.errors[:5]]
        if self.workers_left:
            out.append(
                f"{self.workers_left} worker(s) left discovery during the tap: their rule "
                "state was dropped, and should their events come again, their block removals "
                "and parents are not judged until they clear their caches"
            )
        if self.run_.fallbacks:
            out.append(f"{self.run_.fallbacks} event(s) judged by the reference validator")
        return out

    def source(self) -> dict[str, Any]:
        config = self.config
        out: dict[str, Any] = {}
        if config.discovery is not None:
            out["discovery"] = config.discovery
        if config.nats is not None:
            out["nats"] = config.nats
        if config.zmq:
            out["zmq"] = list(config.zmq)
            out["scope"] = config.scope
        return out

    def report(self, stopped: str = "end") -> TapReport:
        """The report of the run (validates what is still queued first)."""
        self.finish()
        run = self.run_
        by_contract = Counter(run.report().checked)
        by_contract.update(self.checked)
        by_rule = Counter(run.violations)
        by_rule.update(self.by_rule)
        publishers = run.publishers or Counter()
        return TapReport(
            source=self.source(),
            date=self._date,
            dynconform_version=__version__,
            seconds=self._now() - self._started if self._started else 0.0,
            stopped=stopped,
            events=run.count,
            record_puts=self.record_puts,
            record_deletes=self.record_deletes,
            by_contract=dict(by_contract),
            by_subject=dict(self.by_subject),
            by_publisher=tuple(
                PublisherCount(pid, topic, n, run.first_sequences.get((pid, topic)))
                for (pid, topic), n in sorted(publishers.items())
            ),
            by_record_type={k: dict(v) for k, v in self.by_record_type.items()},
            violations_by_rule={k: v for k, v in by_rule.items() if v},
            violations=tuple(self.violations),
            channels=tuple(self.channels()),
            notes=tuple(self.notes()),
        )

    # -- the loop -------------------------------------------------------------------------

    def interrupt(self) -> None:
        """Ask :meth:`run` to stop (as Ctrl-C does); safe from any thread or signal handler."""
        self._interrupted.set()

    def run(
        self,
        duration: float | None = None,
        *,
        on_progress: Callable[[LiveProgress], None] | None = None,
        every: float = 1.0,
        on_attached: Callable[[LiveTap], None] | None = None,
    ) -> TapReport:
        """Attach, validate until ``duration`` seconds passed or Ctrl-C, detach, report.

        ``on_attached`` is called once every channel announced at start is connected;
        ``on_progress`` about every ``every`` seconds. Ctrl-C (SIGINT, when called from the
        main thread) stops the run with ``stopped == "interrupted"``.
        """
        if duration is not None and duration <= 0:
            raise LiveTapError("the duration must be > 0")
        previous: Any = None
        main = threading.current_thread() is threading.main_thread()
        if main:
            previous = signal.signal(signal.SIGINT, self._on_sigint)
        stopped = "end"
        try:
            if not self._started:
                self.start()
            stopped = self._loop(duration, on_progress, every, on_attached)
        finally:
            if main:
                signal.signal(signal.SIGINT, previous)
            self.stop()
        return self.report(stopped)

    def _on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.interrupt()

    def _loop(
        self,
        duration: float | None,
        on_progress: Callable[[LiveProgress], None] | None,
        every: float,
        on_attached: Callable[[LiveTap], None] | None,
    ) -> str:
        deadline = None if duration is None else self._started + duration
        next_report = time.monotonic() + every
        announced = on_attached is None
        while True:
            if self._interrupted.is_set():
                return "interrupted"
            done = self.pump()
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return "duration"
            if not announced and self.attached() and on_attached is not None:
                announced = True
                on_attached(self)
            if on_progress is not None and now >= next_report:
                next_report = now + every
                on_progress(self.progress())
            if not done:
                self._interrupted.wait(IDLE)
