"""The fast validator: compiled types first, the reference validator for what they reject."""

from __future__ import annotations

import json
import operator
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import count, islice, repeat
from typing import Any

import msgspec

from dynconform.contracts._catalog import Contract
from dynconform.contracts._io import RawFrame, raw_frame_view
from dynconform.contracts._model import ValidationReport
from dynconform.contracts._validate import Found, Validator, _Run
from dynconform.contracts.fast._checks import PatternCheck
from dynconform.contracts.fast._compile import Compiled, Compiler, Empty, Mode, deferred_checks
from dynconform.contracts.fast._rules import (
    EnvelopeRunner,
    ForwardPassRunner,
    KvEventsRunner,
    MessageRunner,
    NoRules,
    Runner,
    attr_view,
    fast_runner,
    regressions,
)
from dynconform.contracts.fast._shape import Sub, Unsupported

#: The contract of one event-plane message, and what a raw capture frame is validated as.
MESSAGE = "events.message"
SUBJECT_MEMO_SIZE = 4096
#: A violation found without the frame index: contract, rule, pointer, message.
Fixed = tuple[str, str, str, str]
#: The memo entry of a subject that the ``events.message`` schema rejects.
_REJECTED: dict[str, list[Fixed]] = {}
#: The keys of the ``events.message`` view of a raw frame.
_FRAME_KEYS = frozenset({"subject", "decoded"})
#: Frames validated together (:meth:`FrameRun.feed_all` splits longer inputs).
BATCH = 1024
_NIL = b"\xc0"
_FIRST = operator.itemgetter(0)


class FastValidator:
    """Validates with msgspec types compiled from the contracts' JSON Schemas.

    Verdicts and violations are those of :class:`~dynconform.contracts.Validator`: an
    instance that a compiled type rejects, or a contract that does not compile, goes to the
    reference validator, which then also gives the messages, rule IDs and JSON pointers. The
    semantic rules always run: the events rules through differentially tested equivalents
    that read the decoded values, every other rule as registered.

    Inputs are wire data: raw event-plane frames (:meth:`validate_frames`, :meth:`frames`)
    and JSON text (:meth:`validate_json`).
    """

    def __init__(self, validator: Validator | None = None) -> None:
        self.reference = validator if validator is not None else Validator()
        self.catalog = self.reference.catalog
        self.rules = self.reference.rules
        self._compiled: dict[tuple[str, Mode], Compiled | None] = {}
        #: contract and mode -> why it does not compile
        self.unsupported: dict[tuple[str, Mode], str] = {}
        self._plan: _FramePlan | bool | None = False

    def compiled(self, contract: str, mode: Mode) -> Compiled | None:
        """The compiled type of ``contract``, or ``None`` when it stays on the reference."""
        key = (contract, mode)
        if key not in self._compiled:
            target = self.catalog.get(contract)
            resolver = self.catalog.registry.resolver(base_uri=target.schema_id)
            result: Compiled | None
            try:
                result = Compiler(mode, contract).compile(Sub(dict(target.schema), resolver))
                msgspec.msgpack.Decoder(result.type)  # msgspec rejects some unions here
            except (Unsupported, Empty, TypeError, ValueError) as exc:
                self.unsupported[key] = str(exc) or type(exc).__name__
                result = None
            self._compiled[key] = result
        return self._compiled[key]

    # -- raw event-plane frames ---------------------------------------------------------

    def frames(self, keep: int | None = None, *, publishers: bool = False) -> FrameRun:
        """A run over a stream of raw frames; ``keep`` caps the violations kept in the report.

        With ``publishers``, the run counts the frames of each publisher and topic
        (:attr:`FrameRun.publishers`).
        """
        if self._plan is False:
            self._plan = _FramePlan.build(self)
        plan = self._plan if isinstance(self._plan, _FramePlan) else None
        return FrameRun(self, plan, keep, publishers=publishers)

    def validate_frames(self, frames: Iterable[RawFrame]) -> ValidationReport:
        """The report of ``Validator().validate_stream("events.message", views)`` where
        ``views`` are the frames' JSON views (``raw_frame_view``)."""
        run = self.frames()
        run.feed_all((frame.subject, frame.data) for frame in frames)
        return run.finish()

    # -- JSON text ----------------------------------------------------------------------

    def validate_json(self, contract: str, text: str | bytes) -> ValidationReport:
        """Same as ``Validator().validate(contract, json.loads(text))``."""
        flow = _Flow(self, contract)
        flow.check(self.catalog.get(contract), json.loads(text), None, "")
        flow.report.instances = 1
        return flow.finish()

    def validate_json_stream(self, contract: str, texts: Iterable[str | bytes]) -> ValidationReport:
        """Same as ``Validator().validate_stream(contract, [json.loads(t) for t in texts])``."""
        flow = _Flow(self, contract)
        target = self.catalog.get(contract)
        count = 0
        for index, text in enumerate(texts):
            flow.check(target, json.loads(text), index, "")
            count += 1
        flow.report.instances = count
        return flow.finish()


class _Flow(_Run):
    """One run, step for step as ``Validator`` runs it, with the compiled types first and the
    fast equivalents of the rules where there are any."""

    def __init__(self, fast: FastValidator, contract: str, keep: int | None = None) -> None:
        super().__init__(fast.reference, contract)
        self.fast = fast
        self.runners: dict[str, Runner | None] = {}
        self.keep = keep
        self.by_rule: Counter[str] = Counter()

    def runner(self, contract: str) -> Runner | None:
        """The fast equivalent of the rules of ``contract``, or ``None`` (they run as
        registered)."""
        if contract not in self.runners:
            rules = self.validator.rules.for_contract(contract)
            self.runners[contract] = fast_runner(contract, rules, self)
        return self.runners[contract]

    def add(self, contract: str, rule: str, pointer: str, message: str, index: int | None) -> None:
        self.by_rule[rule] += 1
        if self.keep is None or len(self.report.violations) < self.keep:
            super().add(contract, rule, pointer, message, index)

    def schema_ok(self, contract: Contract, instance: Any, index: int | None, prefix: str) -> bool:
        compiled = self.fast.compiled(contract.name, "python")
        if compiled is not None:
            try:
                msgspec.convert(instance, compiled.type)
                return True
            except msgspec.ValidationError:
                pass  # the reference gives the violations
        return super().schema_ok(contract, instance, index, prefix)

    def found(self, contract: str, instance: Any, index: int | None) -> Iterable[Found]:
        runner = self.runner(contract)
        if runner is None:
            return super().found(contract, instance, index)
        return runner.run(attr_view(instance))


class _Target:
    """A payload contract reached through the envelope's dispatch, with its run state."""

    __slots__ = (
        "batch",
        "contract",
        "count",
        "counters",
        "decode",
        "deferred",
        "lean",
        "nullable",
        "prefix",
        "run",
        "sequences",
    )

    def __init__(
        self,
        contract: str,
        decoder: msgspec.msgpack.Decoder[Any],
        prefix: str,
        lean: tuple[msgspec.msgpack.Decoder[Any], tuple[tuple[str, PatternCheck], ...]] | None,
    ) -> None:
        self.contract = contract
        self.decode = decoder.decode
        #: for batches: a decoder that leaves the pattern checks of fields to ``deferred``
        self.lean = decoder.decode if lean is None else lean[0].decode
        self.deferred = () if lean is None else lean[1]
        #: whether a payload may decode to ``None`` (the fast path takes that as a rejection)
        try:
            self.nullable = decoder.decode(_NIL) is None
        except msgspec.ValidationError:
            self.nullable = False
        self.prefix = prefix
        self.count = 0
        self.run: Callable[[Any], list[Found]] | None = None
        #: ``run`` over many payloads at once: what it finds, by position
        self.batch: Callable[[list[Any]], dict[int, list[Found]]] | None = None
        self.sequences: dict[int, int] | None = None
        #: the forward-pass counters, checked over a batch rather than by ``run``
        self.counters: dict[tuple[str, int], int] | None = None


@dataclass(frozen=True, slots=True)
class _FramePlan:
    """How a raw frame is checked without building its JSON view.

    A frame's ``events.message`` view is ``{"subject": ..., "decoded": <envelope>}``. The plan
    holds only when the compiled schemas show that the message's own verdict depends on the
    subject alone (so it is memoized per subject), that the envelope is reached by the
    message's default dispatch, and that the envelope's only binary view is the value its
    dispatch validates.
    """

    message: Any
    envelope: str
    envelope_decoder: msgspec.msgpack.Decoder[Any]
    envelope_prefix: str
    targets: dict[
        str,
        tuple[
            str,
            msgspec.msgpack.Decoder[Any],
            str,
            tuple[msgspec.msgpack.Decoder[Any], tuple[tuple[str, PatternCheck], ...]] | None,
        ],
    ]

    @classmethod
    def build(cls, fast: FastValidator) -> _FramePlan | None:
        if MESSAGE not in fast.catalog:
            return None
        message = fast.catalog.get(MESSAGE)
        outer = message.dispatch
        if outer is None or outer.default is None or outer.pointer != "/decoded":
            return None
        message_type = fast.compiled(MESSAGE, "python")
        if message_type is None or not _subject_only(message_type.type):
            return None
        envelope = fast.catalog.get(outer.default)
        compiled = fast.compiled(envelope.name, "msgpack")
        inner = envelope.dispatch
        if compiled is None or inner is None or envelope.decoder is not None:
            return None
        # The loop reads these fields by name, as the envelope rules do.
        fields = _encoded_fields(compiled.type)
        if (
            inner.pointer != "/payload/__msgpack__"
            or inner.key != "/topic"
            or compiled.binary_pointers != {"/payload"}
            or any(fields.get(k) != k for k in ("topic", "payload", "publisher_id", "sequence"))
        ):
            return None
        targets = {}
        for selector, name in inner.contracts.items():
            target = fast.catalog.get(name)
            payload = fast.compiled(name, "msgpack")
            if payload is None or payload.binary_pointers or target.dispatch or target.decoder:
                continue
            prefix = outer.pointer + inner.pointer
            lean = deferred_checks(payload.type)
            lean_decoder = None if lean is None else (msgspec.msgpack.Decoder(lean[0]), lean[1])
            targets[selector] = (name, msgspec.msgpack.Decoder(payload.type), prefix, lean_decoder)
        return cls(
            message_type.type,
            envelope.name,
            msgspec.msgpack.Decoder(compiled.type),
            outer.pointer,
            targets,
        )


def _encoded_fields(tp: Any) -> dict[str, str]:
    """Encoded name -> attribute of a Struct type (empty for anything else)."""
    if not (isinstance(tp, type) and issubclass(tp, msgspec.Struct)):
        return {}
    return dict(zip(tp.__struct_encode_fields__, tp.__struct_fields__, strict=True))


def _subject_only(tp: Any) -> bool:
    """Whether the compiled message type judges a frame view by its subject alone."""
    fields = _encoded_fields(tp)
    if not set(fields) >= _FRAME_KEYS:
        return False
    info = {f.encode_name: f for f in msgspec.structs.fields(tp)}
    if info["decoded"].type != dict[str, Any]:
        return False
    for residual in getattr(tp, "__dynconform_residuals__", ()):
        never = not residual.requires <= _FRAME_KEYS
        if "decoded" in residual.else_touches or (not never and "decoded" in residual.then_touches):
            return False
    return True


def _patterns_hold(checks: tuple[tuple[str, PatternCheck], ...], payloads: list[Any]) -> bool:
    """Whether every payload passes the deferred pattern checks of its fields."""
    for attr, check in checks:
        try:
            values = set(map(operator.attrgetter(attr), payloads))
        except TypeError:  # an unhashable value: only the full decoder judges it
            return False
        if not values <= check.passed and any(check(v) is not None for v in values):
            return False
    return True


class FrameRun:
    """Validation of one stream of raw event-plane frames (an ``events.message`` stream)."""

    def __init__(
        self,
        fast: FastValidator,
        plan: _FramePlan | None,
        keep: int | None,
        *,
        publishers: bool = False,
    ) -> None:
        self.flow = _Flow(fast, MESSAGE, keep)
        #: frames fed so far, and those of them that went to the reference validator
        self.count = 0
        self.fallbacks = 0
        #: frames per (publisher_id, topic) when counted (the frames the compiled types
        #: accepted; those judged by the reference validator are not attributed)
        self.publishers: Counter[tuple[int, str]] | None = Counter() if publishers else None
        #: the first envelope sequence seen of each (publisher_id, topic)
        self.first_sequences: dict[tuple[int, str], int] = {}
        self._message = fast.catalog.get(MESSAGE) if MESSAGE in fast.catalog else None
        #: subject -> _REJECTED (the message schema rejects it) or, per topic, the violations
        #: that depend on the subject and topic only
        self._subjects: dict[str, dict[str, list[Fixed]]] = {}
        self._plan = plan
        self._targets: dict[str, _Target] = {}
        self._runners: tuple[MessageRunner, EnvelopeRunner] | None = None
        if plan is None:
            return
        self._targets = {k: _Target(*v) for k, v in plan.targets.items()}
        message = self.flow.runner(MESSAGE)
        envelope = self.flow.runner(plan.envelope)
        if not isinstance(message, MessageRunner) or not isinstance(envelope, EnvelopeRunner):
            return
        payloads: dict[str, Runner] = {}
        for target in self._targets.values():
            runner = self.flow.runner(target.contract)
            if runner is None:
                return
            payloads[target.contract] = runner
        self._runners = (message, envelope)
        for topic, target in self._targets.items():
            runner = payloads[target.contract]
            target.sequences = envelope.sequences(topic) if envelope.sequence else None
            if isinstance(runner, NoRules):
                continue
            if isinstance(runner, ForwardPassRunner):
                if not runner.enabled:
                    continue
                target.counters = runner.last
            elif isinstance(runner, KvEventsRunner):
                target.batch = runner.run_batch
            target.run = runner.run

    def forget_worker(self, worker_id: int) -> None:
        """Drop the rule state kept for a worker that left (its discovery records are gone),
        so that a long tap over a fleet whose workers come and go keeps none for the gone:
        the blocks it held, its last event IDs and forward-pass counters. Should its events
        come again, its block removals and parents are not judged until it clears its cache,
        since what it held before is not known."""
        for runner in self.flow.runners.values():
            if isinstance(runner, KvEventsRunner | ForwardPassRunner):
                runner.forget(worker_id)

    @property
    def violations(self) -> Counter[str]:
        """Violations found so far, by rule."""
        return self.flow.by_rule

    def _subject(self, subject: str) -> dict[str, list[Fixed]]:
        assert self._plan is not None
        try:
            msgspec.convert({"subject": subject, "decoded": {}}, self._plan.message)
            verdict: dict[str, list[Fixed]] = {}
        except msgspec.ValidationError:
            verdict = _REJECTED
        if len(self._subjects) >= SUBJECT_MEMO_SIZE:
            self._subjects.clear()
        self._subjects[subject] = verdict
        return verdict

    def _fixed(self, memo: dict[str, list[Fixed]], subject: str, topic: str) -> list[Fixed]:
        """Violations of a valid frame that depend on its subject and topic only."""
        assert self._plan is not None
        assert self._runners is not None
        message, envelope = self._runners
        prefix = self._plan.envelope_prefix
        fixed = [(MESSAGE, r, p, m) for r, p, m in message.subject(subject, topic)]
        fixed += [(self._plan.envelope, r, prefix + p, m) for r, p, m in envelope.topic(topic)]
        memo[topic] = fixed
        return fixed

    def feed(self, subject: str, data: bytes) -> None:
        """Validate the next frame."""
        self.feed_all(((subject, data),))

    def feed_all(self, frames: Iterable[tuple[str, bytes]]) -> None:
        """Validate the next frames, in order."""
        if self._plan is None or self._runners is None:
            for subject, data in frames:
                self._slow(subject, data)
            return
        listed = frames if isinstance(frames, list) else list(frames)
        for start in range(0, len(listed), BATCH):
            chunk = listed if len(listed) <= BATCH else listed[start : start + BATCH]
            if not self._batch(chunk):
                self._exact(chunk)

    def _batch(self, chunk: list[tuple[str, bytes]]) -> bool:
        """Validate ``chunk`` a topic at a time, each step over all of a topic's frames in one
        C loop or list comprehension (decode, sequences, counters, KV rules); ``False``, with
        nothing changed, when a frame needs :meth:`_exact` (a frame the compiled types
        reject, a subject that is invalid or names another topic than its envelope).

        The result is the one of :meth:`_exact`: every rule keeps its state per topic and
        sees the frames of its topic in stream order, and the violations are put back in
        frame order.
        """
        plan = self._plan
        assert plan is not None
        by_subject: dict[str, list[bytes]] = {}
        for subject, data in chunk:
            try:
                by_subject[subject].append(data)
            except KeyError:
                by_subject[subject] = [data]
        subjects = self._subjects
        decode_envelope = plan.envelope_decoder.decode
        by_topic: dict[str, list[tuple[str, list[Any]]]] = {}
        for subject, datas in by_subject.items():
            verdict = subjects.get(subject)
            if verdict is None:
                verdict = self._subject(subject)
            if verdict is _REJECTED:
                return False
            try:
                envelopes = list(map(decode_envelope, datas))
            except Exception:
                return False
            # (List comprehensions read Struct fields faster than attrgetter.)
            topic = envelopes[0].topic
            if len(envelopes) > 1 and [e.topic for e in envelopes].count(topic) != len(datas):
                return False
            if topic not in self._targets:
                return False
            fixed = verdict.get(topic)
            if fixed is None:
                fixed = self._fixed(verdict, subject, topic)
            if fixed:
                return False
            by_topic.setdefault(topic, []).append((subject, envelopes))
        groups: list[tuple[str, _Target, list[Any], list[Any], frozenset[str]]] = []
        for topic, parts in by_topic.items():
            target = self._targets[topic]
            if len(parts) == 1:
                envelopes = parts[0][1]
            else:  # one topic on several subjects: back into stream order
                pending_of = {subject: iter(envs) for subject, envs in parts}
                envelopes = [next(pending_of[s]) for s, _ in chunk if s in pending_of]
            try:
                decode = target.lean
                payloads = [decode(e.payload) for e in envelopes]
            except Exception:
                return False
            if target.deferred and not _patterns_hold(target.deferred, payloads):
                return False
            if target.nullable and None in payloads:
                return False
            groups.append((topic, target, envelopes, payloads, frozenset(s for s, _ in parts)))
        base = self.count
        pending: list[tuple[int, _Target, Found | None, list[Found] | None]] = []
        for topic, target, envelopes, payloads, carriers in groups:
            target.count += len(payloads)
            gaps = self._sequences(topic, target, envelopes)
            found = self._payload_rules(target, payloads)
            if gaps or found:
                positions = [i for i, frame in enumerate(chunk) if frame[0] in carriers]
                for j in sorted({*(gaps or ()), *(found or ())}):
                    gap = gaps.get(j) if gaps else None
                    issues = found.get(j) if found else None
                    pending.append((base + positions[j], target, gap, issues))
        pending.sort(key=_FIRST)
        for index, target, gap, issues in pending:
            self._add(index, target, [], gap, issues)
        self.count = base + len(chunk)
        return True

    def _sequences(self, topic: str, target: _Target, envelopes: list[Any]) -> dict[int, Found]:
        """``kv.sequence-monotonic`` over one topic's envelopes: the gaps by position."""
        last, publishers = target.sequences, self.publishers
        if last is None and publishers is None:
            return {}
        ids = [e.publisher_id for e in envelopes]
        size = len(ids)
        publisher = ids[0]
        alone = ids.count(publisher) == size
        if publishers is not None:
            if alone:
                publishers[(publisher, topic)] += size
            else:
                publishers.update(zip(ids, repeat(topic)))
        if last is None:
            return {}
        sequences = [e.sequence for e in envelopes]
        if alone:
            first = sequences[0]
            previous = last.get(publisher)
            if (
                (previous is None or first == previous + 1)
                and sequences[-1] - first == size - 1
                and all(map(operator.lt, sequences, islice(sequences, 1, None)))
            ):
                if previous is None:
                    self.first_sequences[(publisher, topic)] = first
                last[publisher] = sequences[-1]
                return {}
        gaps: dict[int, Found] = {}
        firsts = self.first_sequences
        for j, publisher, sequence in zip(count(), ids, sequences):
            previous = last.get(publisher)
            last[publisher] = sequence
            if previous is None:
                firsts[(publisher, topic)] = sequence
            elif sequence != previous + 1:
                gaps[j] = EnvelopeRunner.gap((publisher, topic), sequence, previous)
        return gaps

    @staticmethod
    def _payload_rules(target: _Target, payloads: list[Any]) -> dict[int, list[Found]]:
        """The payload rules over one topic's payloads: what they found, by position."""
        counters = target.counters
        if counters is not None:
            workers = [p.worker_id for p in payloads]
            ranks = [p.dp_rank for p in payloads]
            values = [p.counter_id for p in payloads]
            return {
                j: [ForwardPassRunner.regression(key, value, previous)]
                for j, key, value, previous in regressions(counters, workers, ranks, values)
            }
        if target.batch is not None:
            return target.batch(payloads)
        if target.run is None:
            return {}
        found = list(map(target.run, payloads))
        if not any(found):
            return {}
        return {j: issues for j, issues in enumerate(found) if issues}

    def _exact(self, frames: list[tuple[str, bytes]]) -> None:
        """Validate ``frames`` one after the other."""
        plan = self._plan
        assert plan is not None
        targets, subjects = self._targets, self._subjects
        decode_envelope = plan.envelope_decoder.decode
        index = self.count
        for subject, data in frames:
            verdict = subjects.get(subject)
            if verdict is None:
                verdict = self._subject(subject)
            if verdict is not _REJECTED:
                try:
                    envelope = decode_envelope(data)
                    topic = envelope.topic
                    target = targets.get(topic)
                    payload = None if target is None else target.decode(envelope.payload)
                except Exception:  # any failure: the reference validator judges the frame
                    payload = None
                if payload is not None and target is not None:
                    target.count += 1
                    fixed = verdict.get(topic)
                    if fixed is None:
                        fixed = self._fixed(verdict, subject, topic)
                    gap = self._sequences(topic, target, [envelope]).get(0)
                    found = None if target.run is None else target.run(payload)
                    if fixed or gap or found:
                        self._add(index, target, fixed, gap, found)
                    index += 1
                    continue
            self.count = index
            self._slow(subject, data)
            index += 1
        self.count = index

    def _add(
        self,
        index: int,
        target: _Target,
        fixed: list[Fixed],
        gap: Found | None,
        found: list[Found] | None,
    ) -> None:
        assert self._plan is not None
        add = self.flow.add
        for contract, rule, pointer, message in fixed:
            add(contract, rule, pointer, message, index)
        if gap is not None:
            rule, pointer, message = gap
            add(self._plan.envelope, rule, self._plan.envelope_prefix + pointer, message, index)
        for rule, pointer, message in found or ():
            add(target.contract, rule, target.prefix + pointer, message, index)

    def _slow(self, subject: str, data: bytes) -> None:
        assert self._message is not None
        index = self.count
        self.count = index + 1
        self.fallbacks += 1
        self.flow.check(self._message, raw_frame_view(RawFrame(subject, data)), index, "")

    def report(self) -> ValidationReport:
        """The report so far (without the end-of-stream checks)."""
        report = self.flow.report
        report.instances = self.count
        for target in self._targets.values():
            if target.count:
                assert self._plan is not None
                report.checked[MESSAGE] += target.count
                report.checked[self._plan.envelope] += target.count
                report.checked[target.contract] += target.count
                target.count = 0
        return report

    def finish(self) -> ValidationReport:
        """Run the end-of-stream checks and return the report."""
        self.report()
        return self.flow.finish()
