"""Semantic rules: named predicates over a record or a stream that a schema cannot express.

A rule never sees an instance that failed its contract's schema, so it may rely on the
shape the schema guarantees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

#: What a rule reports: a JSON pointer into the instance and a message.
Issue = tuple[str, str]
RecordCheck = Callable[[Any], Iterable[Issue]]


class StreamChecker(Protocol):
    """Stateful checker for one stream; a fresh one is made per validation run."""

    def feed(self, instance: Any, index: int) -> Iterable[Issue]:
        """Check one instance in stream order."""
        ...

    def finish(self) -> Iterable[Issue]:
        """Check what can only be judged at the end of the stream."""
        ...


@dataclass(frozen=True, slots=True)
class RecordRule:
    """A predicate over one instance of ``contract``."""

    id: str
    contract: str
    summary: str
    check: RecordCheck

    kind = "record"


@dataclass(frozen=True, slots=True)
class StreamRule:
    """A predicate over the ordered instances of ``contract`` seen in one run."""

    id: str
    contract: str
    summary: str
    factory: Callable[[], StreamChecker]

    kind = "stream"


class Correlator(Protocol):
    """Stateful checker that observes the instances of several contracts in one run."""

    def observe(self, contract: str, instance: Any, index: int | None) -> Iterable[Issue]:
        """See one schema-valid instance of one of the watched contracts."""
        ...

    def finish(self) -> Iterable[Issue]:
        """Judge what only the whole run shows."""
        ...


@dataclass(frozen=True, slots=True)
class CorrelationRule:
    """A predicate across the instances of several contracts (e.g. discovery and events).

    Violations found while observing are reported against the observed contract; those found
    at the end against ``contracts[0]``.
    """

    id: str
    contracts: tuple[str, ...]
    summary: str
    factory: Callable[[], Correlator]

    kind = "correlation"

    @property
    def contract(self) -> str:
        return self.contracts[0]


def correlation_rule(
    rule_id: str, *, contracts: tuple[str, ...], summary: str
) -> Callable[[Callable[[], Correlator]], CorrelationRule]:
    """Turn a :class:`Correlator` class (or factory) into a :class:`CorrelationRule`."""

    def wrap(factory: Callable[[], Correlator]) -> CorrelationRule:
        return CorrelationRule(id=rule_id, contracts=contracts, summary=summary, factory=factory)

    return wrap


Rule = RecordRule | StreamRule | CorrelationRule


def watched(rule: Rule) -> tuple[str, ...]:
    """The contracts whose instances a rule sees."""
    return rule.contracts if isinstance(rule, CorrelationRule) else (rule.contract,)


def record_rule(
    rule_id: str, *, contract: str, summary: str
) -> Callable[[RecordCheck], RecordRule]:
    """Turn a function ``instance -> Iterable[(pointer, message)]`` into a :class:`RecordRule`."""

    def wrap(fn: RecordCheck) -> RecordRule:
        return RecordRule(id=rule_id, contract=contract, summary=summary, check=fn)

    return wrap


def stream_rule(
    rule_id: str, *, contract: str, summary: str
) -> Callable[[Callable[[], StreamChecker]], StreamRule]:
    """Turn a :class:`StreamChecker` class (or factory) into a :class:`StreamRule`."""

    def wrap(factory: Callable[[], StreamChecker]) -> StreamRule:
        return StreamRule(id=rule_id, contract=contract, summary=summary, factory=factory)

    return wrap


class RuleRegistry:
    """An explicit, typed collection of rules, looked up by ID or by contract."""

    def __init__(self, rules: Iterable[Rule] = ()) -> None:
        self._rules: dict[str, Rule] = {}
        self._by_contract: dict[str, list[Rule]] = {}
        for rule in rules:
            self.add(rule)

    def add(self, rule: Rule) -> None:
        if rule.id in self._rules:
            raise ValueError(f"duplicate rule id {rule.id!r}")
        self._rules[rule.id] = rule
        self._by_contract.clear()

    def __iter__(self) -> Iterator[Rule]:
        return iter(sorted(self._rules.values(), key=lambda r: r.id))

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def get(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def for_contract(self, contract: str) -> list[Rule]:
        """The rules that see instances of ``contract``, by ID (cached: a hot path)."""
        found = self._by_contract.get(contract)
        if found is None:
            found = [r for r in self if contract in watched(r)]
            self._by_contract[contract] = found
        return found
