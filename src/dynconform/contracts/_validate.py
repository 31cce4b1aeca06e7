"""Validate instances and streams against contracts: schema first, then semantic rules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from jsonschema.exceptions import ValidationError, best_match

from dynconform.contracts._catalog import Catalog, Contract
from dynconform.contracts._model import ValidationReport, Violation
from dynconform.contracts._rules import (
    CorrelationRule,
    Correlator,
    RecordRule,
    RuleRegistry,
    StreamChecker,
    StreamRule,
    watched,
)
from dynconform.contracts.decoders import DECODERS, DecodeError

_MISSING = object()

#: What a rule found: rule ID, JSON pointer (relative to the instance) and message.
Found = tuple[str, str, str]


def json_pointer(parts: Iterable[object]) -> str:
    """RFC 6901 pointer for a path of keys and indexes."""
    out = []
    for part in parts:
        text = str(part).replace("~", "~0").replace("/", "~1")
        out.append("/" + text)
    return "".join(out)


def json_type(value: Any) -> str | None:
    """The JSON Schema type of a JSON value (``integer`` for integral floats such as ``1.0``),
    or ``None`` for a value that is not JSON."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "integer" if value.is_integer() else "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


def resolve_pointer(instance: Any, pointer: str) -> Any:
    """The value at ``pointer`` in ``instance``, or a sentinel when it is absent."""
    current = instance
    if not pointer:
        return current
    for raw in pointer.lstrip("/").split("/"):
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(current, dict):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or int(part) >= len(current):
                return _MISSING
            current = current[int(part)]
        else:
            return _MISSING
    return current


def most_specific_error(error: ValidationError) -> ValidationError:
    """For a oneOf/anyOf failure, the branch error that explains it best (else ``error``)."""
    while error.context:
        nested = best_match(error.context)
        if nested is None:
            break
        error = nested
    return error


class _Run:
    """State of one validation run: counters, violations and live stream checkers."""

    def __init__(self, validator: Validator, contract: str) -> None:
        self.validator = validator
        self.report = ValidationReport(contract=contract)
        self.streams: dict[str, list[tuple[StreamRule, StreamChecker]]] = {}
        self.correlators: dict[str, tuple[CorrelationRule, Correlator]] = {}

    def checkers(self, contract: str) -> list[tuple[StreamRule, StreamChecker]]:
        live = self.streams.get(contract)
        if live is None:
            live = [
                (rule, rule.factory())
                for rule in self.validator.rules.for_contract(contract)
                if isinstance(rule, StreamRule)
            ]
            self.streams[contract] = live
        return live

    def correlator(self, rule: CorrelationRule) -> Correlator:
        live = self.correlators.get(rule.id)
        if live is None:
            live = (rule, rule.factory())
            self.correlators[rule.id] = live
        return live[1]

    def add(self, contract: str, rule: str, pointer: str, message: str, index: int | None) -> None:
        self.report.violations.append(Violation(contract, rule, pointer, message, index))

    def schema_ok(self, contract: Contract, instance: Any, index: int | None, prefix: str) -> bool:
        """Report what the schema of ``contract`` finds in ``instance``; whether it is valid."""
        ok = True
        for error in self.validator.catalog.validator(contract.name).iter_errors(instance):
            ok = False
            specific = most_specific_error(error)
            self.add(
                contract.name,
                f"schema.{specific.validator}",
                prefix + json_pointer(specific.absolute_path),
                specific.message,
                index,
            )
        return ok

    def found(self, contract: str, instance: Any, index: int | None) -> Iterable[Found]:
        """What the rules of ``contract`` find in a schema-valid instance: record rules, then
        stream rules, then correlation rules."""
        rules = self.validator.rules.for_contract(contract)
        for rule in rules:
            if isinstance(rule, RecordRule):
                for pointer, message in rule.check(instance):
                    yield rule.id, pointer, message
        for stream, checker in self.checkers(contract):
            for pointer, message in checker.feed(instance, index if index is not None else 0):
                yield stream.id, pointer, message
        for rule in rules:
            if isinstance(rule, CorrelationRule):
                for pointer, message in self.correlator(rule).observe(contract, instance, index):
                    yield rule.id, pointer, message

    def check(self, contract: Contract, instance: Any, index: int | None, prefix: str = "") -> None:
        self.report.checked[contract.name] += 1
        if contract.decoder is not None:
            try:
                instance = DECODERS[contract.decoder](instance)
            except DecodeError as exc:
                self.add(contract.name, "decode", prefix, str(exc), index)
                return
        if not self.schema_ok(contract, instance, index, prefix):
            return
        for rule, pointer, message in self.found(contract.name, instance, index):
            self.add(contract.name, rule, prefix + pointer, message, index)
        if contract.dispatch is not None:
            self._dispatch(contract, instance, index, prefix)

    def _dispatch(self, contract: Contract, instance: Any, index: int | None, prefix: str) -> None:
        assert contract.dispatch is not None
        key = resolve_pointer(instance, contract.dispatch.key)
        nested = resolve_pointer(instance, contract.dispatch.pointer)
        if nested is _MISSING:
            return  # the schema decides whether the nested value is required
        if key is _MISSING:
            target = contract.dispatch.default
        else:
            target = contract.dispatch.contracts.get(str(key))
        if target is None:
            return  # the schema decides which selectors are allowed
        self.check(
            self.validator.catalog.get(target), nested, index, prefix + contract.dispatch.pointer
        )

    def finish(self) -> ValidationReport:
        for contract, live in self.streams.items():
            for rule, checker in live:
                for pointer, message in checker.finish():
                    self.add(contract, rule.id, pointer, message, None)
        for correlation, correlator in self.correlators.values():
            for pointer, message in correlator.finish():
                self.add(correlation.contracts[0], correlation.id, pointer, message, None)
        return self.report


class Validator:
    """Validates instances against the catalogue's schemas and the registered rules."""

    def __init__(self, catalog: Catalog | None = None, rules: RuleRegistry | None = None) -> None:
        from dynconform.contracts.rules import default_rules

        self.catalog = catalog if catalog is not None else Catalog.load()
        self.rules = rules if rules is not None else default_rules()
        needed = {name for rule in self.rules for name in watched(rule)}
        unknown = sorted(needed - set(self.catalog.names()))
        if unknown:
            raise ValueError(f"rules registered for unknown contracts: {', '.join(unknown)}")

    def validate(self, contract: str, instance: Any) -> ValidationReport:
        """Validate a single instance (record rules apply; stream rules see a stream of one)."""
        run = _Run(self, contract)
        run.check(self.catalog.get(contract), instance, None)
        run.report.instances = 1
        return run.finish()

    def validate_stream(self, contract: str, instances: Iterable[Any]) -> ValidationReport:
        """Validate instances in order, applying the stream rules across them."""
        target = self.catalog.get(contract)
        run = _Run(self, contract)
        count = 0
        for index, instance in enumerate(instances):
            run.check(target, instance, index)
            count += 1
        run.report.instances = count
        return run.finish()

    def validate_many(self, sources: Iterable[tuple[str, Iterable[Any]]]) -> ValidationReport:
        """Validate several streams in one run, so correlation rules see all of them.

        ``sources`` are ``(contract, instances)`` pairs, validated in the order given; stream
        indexes restart at 0 for each source.
        """
        pairs = list(sources)
        run = _Run(self, " + ".join(name for name, _ in pairs))
        count = 0
        for name, instances in pairs:
            target = self.catalog.get(name)
            for index, instance in enumerate(instances):
                run.check(target, instance, index)
                count += 1
        run.report.instances = count
        return run.finish()

    def errors(self, contract: str, instance: Any) -> Sequence[Violation]:
        """Shorthand: the violations of one instance."""
        return self.validate(contract, instance).violations
