"""Rule runners: fast equivalents of the events rules, with their state for one run.

They read decoded msgspec Structs (or JSON views through :func:`attr_view`) and keep their own
state; the differential tests hold them to the reference rules' output. Each runner returns
what it found as ``(rule id, pointer, message)`` in the order ``Validator`` reports it: record
rules, then stream rules, then correlation rules, each group by rule ID. Contracts without a
fast equivalent run their rules as registered (``Validator``'s run does that).
"""

from __future__ import annotations

import operator
import struct
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
from itertools import accumulate, chain, count, islice, repeat
from typing import Any, Protocol

import xxhash
from msgspec import UNSET

from dynconform.contracts import hashing
from dynconform.contracts._rules import Rule
from dynconform.contracts._validate import Found, _Run
from dynconform.contracts.rules import correlation, events

MEMO_SIZE = 4096


class _Attr:
    """Attribute access to a JSON object, the way the fast rules read decoded Structs."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data

    def __getattr__(self, name: str) -> Any:
        return attr_view(self._data.get(name, UNSET))


def attr_view(value: Any) -> Any:
    """``value`` with every JSON object readable by attribute (absent keys read as UNSET)."""
    if isinstance(value, dict):
        return _Attr(value)
    if isinstance(value, list):
        return [attr_view(item) for item in value]
    return value


class Runner(Protocol):
    """The rules of one contract for one run."""

    def run(self, instance: Any) -> list[Found]:
        """Check one schema-valid instance (a Struct, or an :func:`attr_view`)."""
        ...


def _memo_put(memo: dict[Any, Any], key: Any, value: Any) -> None:
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[key] = value


class MessageRunner:
    """``events.subject-matches-topic``, memoized per subject and topic."""

    def __init__(self, rules: Sequence[Rule], state: _Run) -> None:
        self.rule = events.subject_matches_topic if rules else None
        self.memo: dict[str, dict[str, list[Found]]] = {}

    def topics(self, subject: str) -> dict[str, list[Found]]:
        """The memo of ``subject``: topic -> what the rule finds."""
        found = self.memo.get(subject)
        if found is None:
            found = {}
            _memo_put(self.memo, subject, found)
        return found

    def subject(self, subject: str, topic: str) -> list[Found]:
        """What the rule finds for a message on ``subject`` whose envelope has ``topic``."""
        memo = self.topics(subject)
        found = memo.get(topic)
        if found is None:
            found = []
            if self.rule is not None:
                message = {"subject": subject, "decoded": {"topic": topic}}
                found = [(self.rule.id, p, m) for p, m in self.rule.check(message)]
            _memo_put(memo, topic, found)
        return found

    def run(self, message: Any) -> list[Found]:
        if message.plane == "request_plane":
            return []
        topic = message.decoded.topic
        if not isinstance(topic, str):
            return []
        return self.subject(message.subject, topic)


class EnvelopeRunner:
    """``events.topic-known`` (memoized) and ``kv.sequence-monotonic``."""

    def __init__(self, rules: Sequence[Rule], state: _Run) -> None:
        ids = {r.id for r in rules}
        self.topic_rule = events.topic_known if events.topic_known.id in ids else None
        self.sequence = events.sequence_monotonic.id in ids
        self.topics: dict[str, list[Found]] = {}
        #: last sequence per topic, then per publisher_id
        self.last: dict[str, dict[int, int]] = {}

    def topic(self, topic: str) -> list[Found]:
        """What ``events.topic-known`` finds for ``topic``."""
        found = self.topics.get(topic)
        if found is None:
            found = []
            if self.topic_rule is not None:
                issues = self.topic_rule.check({"topic": topic})
                found = [(self.topic_rule.id, p, m) for p, m in issues]
            _memo_put(self.topics, topic, found)
        return found

    @staticmethod
    def gap(key: tuple[int, str], sequence: int, previous: int) -> Found:
        """The violation for ``sequence`` after ``previous`` (not its successor)."""
        who = f"publisher {key[0]} topic {key[1]!r}"
        if sequence <= previous:
            message = f"{who}: sequence {sequence} after {previous} (duplicate or reordered)"
        else:
            message = f"{who}: sequence jumps from {previous} to {sequence} (lost messages)"
        return events.sequence_monotonic.id, "/sequence", message

    def run(self, envelope: Any) -> list[Found]:
        topic = envelope.topic
        found = self.topic(topic)
        if not self.sequence:
            return found
        publisher = envelope.publisher_id
        sequence = envelope.sequence
        last = self.sequences(topic)
        previous = last.get(publisher)
        last[publisher] = sequence
        if previous is None or sequence == previous + 1:
            return found
        return [*found, self.gap((publisher, topic), sequence, previous)]

    def sequences(self, topic: str) -> dict[int, int]:
        """The last sequence of each publisher on ``topic``."""
        last = self.last.get(topic)
        if last is None:
            last = self.last[topic] = {}
        return last


class KvEventsRunner:
    """``kv.block-hash-chain``, ``kv.event-id-monotonic``, ``kv.parent-stored``,
    ``kv.removed-after-stored`` and the stored blocks that ``mdc.block-size-consistent`` sees.
    """

    def __init__(self, rules: Sequence[Rule], state: _Run) -> None:
        ids = {r.id for r in rules}
        self.chain = events.block_hash_chain.id in ids
        self.event_ids = events.event_id_monotonic.id in ids
        self.parents = events.parent_stored.id in ids
        self.removals = events.removed_after_stored.id in ids
        blocks = correlation.BLOCK_SIZE_CONSISTENT
        #: last event_id per (worker_id, dp_rank)
        self.last: dict[tuple[int, int], int] = {}
        #: blocks held per (worker_id, dp_rank), then per storage tier
        self.held: dict[tuple[int, int], dict[str, set[int]]] = {}
        #: workers whose residency was forgotten: their blocks held before are not known
        self.unknown: set[int] = set()
        # Looked up now rather than keeping ``state``: the run holds its runners, and a runner
        # holding the run would make a cycle that only the cyclic GC frees.
        #: where stored blocks go for ``mdc.block-size-consistent`` (when that rule is on)
        self.correlator: correlation.BlockSizeConsistent | None = None
        if blocks.id in ids:
            correlator = state.correlator(blocks)
            if not isinstance(correlator, correlation.BlockSizeConsistent):
                raise TypeError("unexpected correlator for mdc.block-size-consistent")
            self.correlator = correlator

    def forget(self, worker_id: int) -> None:
        """Drop the state kept for ``worker_id`` (all its DP ranks). Its removals and parents
        are no longer judged, since the blocks it held are not known, until it clears its
        cache; its event IDs start afresh."""
        for key in [k for k in self.held if k[0] == worker_id]:
            del self.held[key]
        for key in [k for k in self.last if k[0] == worker_id]:
            del self.last[key]
        self.unknown.add(worker_id)

    def run(self, instance: Any) -> list[Found]:
        return self.run_batch([instance]).get(0, [])

    def run_batch(self, payloads: list[Any]) -> dict[int, list[Found]]:
        """What the rules find in each payload (by position), run on them in order.

        The fields of all router events and stored blocks are gathered a field at a time
        (list comprehensions read Struct fields faster than attrgetter), block hashes are
        checked all at once, and only the residency of blocks is replayed event by event.
        """
        events = list(chain.from_iterable(payloads))
        if not events:
            return {}
        inner = [e.event for e in events]
        datas = [e.data for e in inner]
        cleared = str in map(type, datas)
        storeds = [
            stored
            for stored in (
                [d.stored for d in datas if d.__class__ is not str]
                if cleared
                else [d.stored for d in datas]
            )
            if stored is not UNSET
        ]
        lists = [s.blocks for s in storeds]
        sizes = list(map(len, lists))
        blocks = list(chain.from_iterable(lists))
        hashes = [b.block_hash for b in blocks]
        tokens = [b.tokens_hash for b in blocks]
        parents = [s.parent_hash for s in storeds]
        found: dict[int, list[tuple[int, Found]]] = {}
        owners = _Owners(payloads)
        if self.chain and blocks:
            self._check_chain(hashes, tokens, sizes, parents, found, owners)
        workers = [e.worker_id for e in events]
        ranks = [e.dp_rank for e in inner]
        if self.event_ids:
            self._check_ids(workers, ranks, [e.event_id for e in inner], found, owners)
        tiers = [e.storage_tier for e in events]
        self._replay(workers, ranks, tiers, datas, hashes, sizes, parents, found, owners)
        if self.correlator is not None and hashes:
            self.correlator.add_stored(hashes)
        return {j: [issue for _, issue in sorted(f, key=_rank)] for j, f in found.items()}

    @staticmethod
    def _check_chain(
        hashes: list[int],
        tokens: list[int],
        sizes: list[int],
        parents: list[int | None],
        found: dict[int, list[tuple[int, Found]]],
        owners: _Owners,
    ) -> None:
        """``kv.block-hash-chain`` over every stored block of a batch."""
        starts = list(accumulate(sizes[:-1], initial=0))
        # each block's parent: the block before it, or its batch's parent for the first; one
        # spare slot at the end for batches without blocks there
        chained: list[int | None] = [None, *hashes]
        list(map(chained.__setitem__, starts, parents))
        # the first block of a chain has no parent: its hash is its tokens hash
        bare = [k for k, size, p in zip(starts, sizes, parents, strict=True) if p is None and size]
        for k in bare:
            chained[k] = 0
        try:
            expected = pair_hashes(chained, tokens)
        except (struct.error, TypeError):  # integral floats (1.0) are JSON Schema integers too
            expected = list(map(hashing.block_hash, chained[: len(tokens)], tokens))
        for k in bare:
            expected[k] = tokens[k]
            chained[k] = None
        if expected == hashes:
            return
        store = 0
        for k, (block, want) in enumerate(zip(hashes, expected, strict=True)):
            while store + 1 < len(starts) and starts[store + 1] <= k:
                store += 1
            if block != want:
                event = owners.stored_event(store)
                j = k - starts[store]
                issue = _chain_issue(event[1], j, block, want, chained[k], tokens[k])
                found.setdefault(event[0], []).append((0, issue))

    def _check_ids(
        self,
        workers: list[int],
        ranks: list[int],
        ids: list[int],
        found: dict[int, list[tuple[int, Found]]],
        owners: _Owners,
    ) -> None:
        """``kv.event-id-monotonic`` over the events of a batch."""
        for e, key, event_id, previous in regressions(self.last, workers, ranks, ids):
            position, i = owners.event(e)
            issue = _event_id_issue(i, key, event_id, previous)
            found.setdefault(position, []).append((1, issue))

    def _replay(
        self,
        workers: list[int],
        ranks: list[int],
        tiers: list[str],
        datas: list[Any],
        hashes: list[int],
        sizes: list[int],
        parents: list[int | None],
        found: dict[int, list[tuple[int, Found]]],
        owners: _Owners,
    ) -> None:
        """The blocks each worker holds, event by event: ``kv.parent-stored`` and
        ``kv.removed-after-stored``."""
        held_by_worker, unknown = self.held, self.unknown
        size = len(datas)
        # most batches hold the events of one worker, DP rank and tier: then the held blocks
        # are looked up once (and again only after a "cleared")
        alone = (
            workers.count(workers[0]) == size
            and ranks.count(ranks[0]) == size
            and tiers.count(tiers[0]) == size
        )
        offset = stored = 0
        at: tuple[int, int, str] | None = None  # the worker, DP rank and tier of `held`
        for e, data in enumerate(datas):
            if data.__class__ is str:  # "cleared"
                held_by_worker.pop((workers[e], ranks[e]), None)
                unknown.discard(workers[e])
                at = None
                continue
            if at is None or (not alone and at != (workers[e], ranks[e], tiers[e])):
                worker, tier = (workers[e], ranks[e]), tiers[e]
                at = (*worker, tier)
                tiers_held = held_by_worker.setdefault(worker, {})
                held = tiers_held.setdefault(tier, set())
                known = not unknown or worker[0] not in unknown
                check_parents, check_removals = self.parents and known, self.removals and known
            if data.stored is UNSET:
                removed = data.removed.block_hashes
                if check_removals and removed and not held.issuperset(removed):
                    position, i = owners.event(e)
                    for issue in _removal_issues(i, worker, tier, held, removed):
                        found.setdefault(position, []).append((3, issue))
                held.difference_update(removed)
                continue
            parent = parents[stored]
            size = sizes[stored]
            stored += 1
            if (
                check_parents
                and parent is not None
                and parent not in held
                and not any(parent in blocks for blocks in tiers_held.values())
            ):
                position, i = owners.event(e)
                found.setdefault(position, []).append((2, _parent_issue(i, worker, parent)))
            if size:
                held.update(hashes[offset : offset + size])
                offset += size


def regressions(
    last: dict[tuple[Any, int], int], workers: list[Any], ranks: list[int], values: list[int]
) -> list[tuple[int, tuple[Any, int], int, int]]:
    """``(position, key, value, previous)`` of each value that does not rise above the one
    before it of the same ``(worker, rank)`` key; ``last`` holds the last value of each key
    and is updated. One key whose values rise throughout is checked without a Python loop."""
    size = len(values)
    if workers.count(workers[0]) == size and ranks.count(ranks[0]) == size:
        key = (workers[0], ranks[0])
        previous = last.get(key)
        if (previous is None or values[0] > previous) and all(
            map(operator.lt, values, islice(values, 1, None))
        ):
            last[key] = values[-1]
            return []
    out = []
    for j, key, value in zip(count(), zip(workers, ranks, strict=True), values):
        previous = last.get(key)
        last[key] = value
        if previous is not None and value <= previous:
            out.append((j, key, value, previous))
    return out


class _Owners:
    """Where the events (and stored events) of a batch came from: payload position and
    position in that payload; worked out when a violation needs it."""

    def __init__(self, payloads: list[Any]) -> None:
        self.payloads = payloads
        self._events: list[tuple[int, int]] | None = None
        self._stored: list[tuple[int, int]] | None = None

    def event(self, e: int) -> tuple[int, int]:
        if self._events is None:
            self._events = [
                (position, i)
                for position, payload in enumerate(self.payloads)
                for i in range(len(payload))
            ]
        return self._events[e]

    def stored_event(self, n: int) -> tuple[int, int]:
        if self._stored is None:
            self._stored = [
                (position, i)
                for position, payload in enumerate(self.payloads)
                for i, router_event in enumerate(payload)
                if not isinstance(router_event.event.data, str)
                and router_event.event.data.stored is not UNSET
            ]
        return self._stored[n]


def _rank(item: tuple[int, Found]) -> int:
    return item[0]


_PACK = struct.Struct("<QQ").pack
#: below this many blocks, hashing them one by one is cheaper than :func:`pair_hashes`' setup
_PAIRS_AT_ONCE = 64
#: pair_hashes splits its buffer into 16-byte inputs this many at a time (one C call each)
_SPLIT = struct.Struct("16s" * 256)
_PAD = bytes(_SPLIT.size)


def pair_hashes(parents: Sequence[int | None], tokens: Sequence[int]) -> list[int]:
    """XXH3-64 (seed 1337) of each ``(parent, tokens)`` as little-endian u64 pairs, that is
    :func:`hashing.block_hash` for parents that are not ``None`` (the first ``len(tokens)``
    parents are used). Raises ``TypeError`` or ``struct.error`` for values that are not
    integers in u64 range.

    Converting all the integers at once (``array``) and splitting one buffer into the
    16-byte inputs (``struct``) costs a third of packing every pair on its own.
    """
    size = len(tokens)
    if size < _PAIRS_AT_ONCE:
        return list(map(_XXH3, map(_PACK, parents[:size], tokens), repeat(_SEED)))
    words: list[Any] = [None] * (2 * size)  # array() raises TypeError for a None left
    words[0::2] = parents[:size]
    words[1::2] = tokens
    try:
        packed = array("Q", words)
    except OverflowError as exc:
        raise struct.error(str(exc)) from None
    if _BIG_ENDIAN:
        packed.byteswap()
    packed.frombytes(_PAD[: -len(packed) * packed.itemsize % _SPLIT.size])
    inputs = islice(chain.from_iterable(_SPLIT.iter_unpack(packed)), size)
    return list(map(_XXH3, inputs, repeat(_SEED)))


_XXH3 = xxhash.xxh3_64_intdigest
_SEED = hashing.SEED
_BIG_ENDIAN = sys.byteorder == "big"


def _chain_issue(
    i: int, j: int, block_hash: int, expected: int, parent: int | None, tokens: int
) -> Found:
    return (
        events.block_hash_chain.id,
        f"/{i}/event/data/stored/blocks/{j}/block_hash",
        f"block_hash {block_hash} != {expected}, the hash of parent {parent} and "
        f"tokens_hash {tokens}",
    )


def _event_id_issue(i: int, worker: tuple[int, int], event_id: int, previous: int) -> Found:
    message = f"worker {worker[0]} dp_rank {worker[1]}: event_id {event_id} after {previous}"
    return events.event_id_monotonic.id, f"/{i}/event/event_id", message


def _parent_issue(i: int, worker: tuple[int, int], parent: int) -> Found:
    message = (
        f"worker {worker[0]} dp_rank {worker[1]} stores blocks under parent {parent}, "
        "which it does not hold"
    )
    return events.parent_stored.id, f"/{i}/event/data/stored/parent_hash", message


def _removal_issues(
    i: int, worker: tuple[int, int], tier: str, held: set[int], removed: Sequence[int]
) -> list[Found]:
    return [
        (
            events.removed_after_stored.id,
            f"/{i}/event/data/removed/block_hashes/{j}",
            f"worker {worker[0]} dp_rank {worker[1]} removes block {block} from {tier}, "
            "which it does not hold",
        )
        for j, block in enumerate(removed)
        if block not in held
    ]


class ForwardPassRunner:
    """``fpm.counter-monotonic``."""

    def __init__(self, rules: Sequence[Rule], state: _Run) -> None:
        self.enabled = bool(rules)
        #: last counter_id per (worker_id, dp_rank)
        self.last: dict[tuple[str, int], int] = {}

    def forget(self, worker_id: int) -> None:
        """Drop the counters of ``worker_id`` (all its DP ranks)."""
        name = str(worker_id)  # forward-pass metrics name their worker as a string
        for key in [k for k in self.last if k[0] == name]:
            del self.last[key]

    @staticmethod
    def regression(key: tuple[str, int], counter: int, previous: int) -> Found:
        """The violation for ``counter`` after ``previous`` (not greater)."""
        message = f"worker {key[0]} dp_rank {key[1]}: counter_id {counter} after {previous}"
        return events.counter_monotonic.id, "/counter_id", message

    def run(self, metrics: Any) -> list[Found]:
        if not self.enabled:
            return []
        key = (metrics.worker_id, metrics.dp_rank)
        counter = metrics.counter_id
        previous = self.last.get(key)
        self.last[key] = counter
        if previous is not None and counter <= previous:
            return [self.regression(key, counter, previous)]
        return []


class NoRules:
    """A contract without rules."""

    def __init__(self, rules: Sequence[Rule], state: _Run) -> None:
        pass

    def run(self, instance: Any) -> list[Found]:
        return []


RunnerFactory = Callable[[Sequence[Rule], _Run], Runner]

#: Fast equivalents: contract -> (runner, the reference rules it stands in for).
FAST_RUNNERS: dict[str, tuple[RunnerFactory, tuple[Rule, ...]]] = {
    "events.message": (MessageRunner, (events.subject_matches_topic,)),
    "events.envelope": (EnvelopeRunner, (events.topic_known, events.sequence_monotonic)),
    "events.kv-events": (
        KvEventsRunner,
        (
            events.block_hash_chain,
            events.event_id_monotonic,
            events.parent_stored,
            events.removed_after_stored,
            correlation.BLOCK_SIZE_CONSISTENT,
        ),
    ),
    "events.forward-pass-metrics": (ForwardPassRunner, (events.counter_monotonic,)),
    "events.kv-metrics": (NoRules, ()),
    "events.active-sequences": (NoRules, ()),
}


def fast_runner(contract: str, rules: Iterable[Rule], state: _Run) -> Runner | None:
    """The fast equivalent for ``contract`` if it covers exactly its registered rules."""
    entry = FAST_RUNNERS.get(contract)
    if entry is None:
        return None
    factory, covered = entry
    registered = list(rules)
    if not all(any(rule is known for known in covered) for rule in registered):
        return None
    return factory(registered, state)
