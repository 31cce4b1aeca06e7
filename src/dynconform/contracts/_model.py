"""Result types shared by every validator and rule."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Violation:
    """One way in which an instance breaks a contract.

    ``rule`` is ``schema.<keyword>`` for JSON Schema failures (``schema.required``,
    ``schema.type``, ...) or the stable ID of a semantic rule (``kv.block-hash-chain``).
    ``pointer`` is an RFC 6901 JSON pointer into the instance; ``index`` is the position of the
    instance in a stream (``None`` for a single instance).
    """

    contract: str
    rule: str
    pointer: str
    message: str
    index: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "contract": self.contract,
            "rule": self.rule,
            "pointer": self.pointer,
            "message": self.message,
            "index": self.index,
        }

    def __str__(self) -> str:
        where = f"#{self.index}" if self.index is not None else ""
        return f"{self.contract}{where} {self.pointer or '/'}: [{self.rule}] {self.message}"


@dataclass(slots=True)
class ValidationReport:
    """Outcome of validating one instance or a stream of instances."""

    contract: str
    instances: int = 0
    violations: list[Violation] = field(default_factory=list)
    #: instances checked per contract, including nested ones (an envelope's payload)
    checked: Counter[str] = field(default_factory=Counter)

    @property
    def ok(self) -> bool:
        return not self.violations

    def by_rule(self) -> Counter[str]:
        return Counter(v.rule for v in self.violations)

    def rules(self) -> set[str]:
        return {v.rule for v in self.violations}

    def to_dict(self, limit: int | None = None) -> dict[str, Any]:
        shown = self.violations if limit is None else self.violations[:limit]
        return {
            "contract": self.contract,
            "valid": self.ok,
            "instances": self.instances,
            "checked": dict(sorted(self.checked.items())),
            "violation_count": len(self.violations),
            "violations_by_rule": dict(sorted(self.by_rule().items())),
            "violations": [v.to_dict() for v in shown],
        }
