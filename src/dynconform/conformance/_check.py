"""Declarative check records and their explicit registry.

A check is a record, not a test file: a stable ID, a title, an RFC 2119 description, the
contract(s) and rule IDs it enforces, its profiles and required features, a severity, a
phase (when in a run it executes) and the function that performs it::

    @check(
        "http.stream.done-terminator",
        title="Streams end with data: [DONE]",
        description="A streamed response MUST end with exactly one `data: [DONE]` event.",
        profiles=("streaming",),
        contracts=("http.sse-stream",),
        rules=("http.sse.done-terminator",),
    )
    def done_terminator(ctx: Context) -> None: ...

The decorator returns the :class:`Check`; modules list their checks in ``CHECKS`` and
:func:`dynconform.conformance.default_checks` assembles them, so importing a module
registers nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dynconform.conformance._profiles import FEATURES, PROFILES

if TYPE_CHECKING:
    from dynconform.conformance._context import Context

__all__ = ["PHASES", "Check", "CheckFunction", "CheckRegistry", "Phase", "check"]

CheckFunction = Callable[["Context"], None]
Severity = Literal["required", "recommended"]
#: Phases run in this order: traffic first, then what the taps saw, then destructive checks.
Phase = Literal["traffic", "observe", "destructive"]
PHASES: tuple[Phase, ...] = ("traffic", "observe", "destructive")

_ID = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+$")
_KEYWORDS = ("MUST", "SHOULD", "MAY")


@dataclass(frozen=True, slots=True)
class Check:
    """One conformance check."""

    id: str
    title: str
    description: str
    profiles: tuple[str, ...]
    function: CheckFunction
    features: tuple[str, ...] = ()
    contracts: tuple[str, ...] = ()
    #: rule IDs whose violation this check reports (``schema.*`` = any schema keyword of its
    #: contracts); behavioural checks also list their own ID
    rules: tuple[str, ...] = ()
    severity: Severity = "required"
    phase: Phase = "traffic"

    def __post_init__(self) -> None:
        if not _ID.match(self.id):
            raise ValueError(f"check id {self.id!r} is not lowercase dotted kebab-case")
        if not any(word in self.description for word in _KEYWORDS):
            raise ValueError(f"check {self.id}: description has no RFC 2119 keyword")
        if not self.profiles:
            raise ValueError(f"check {self.id}: no profile")
        for profile in self.profiles:
            if profile not in PROFILES:
                raise ValueError(f"check {self.id}: unknown profile {profile!r}")
        for feature in self.features:
            if feature not in FEATURES:
                raise ValueError(f"check {self.id}: unknown feature {feature!r}")

    @property
    def level(self) -> Literal["core", "extended"]:
        """``core`` when the check needs no optional feature, else ``extended``."""
        return "extended" if self.features else "core"

    def enforces(self, contract: str, rule: str) -> bool:
        """Whether a violation of ``rule`` in ``contract`` makes this check fail."""
        if rule in self.rules:
            return True
        return (
            rule.startswith("schema.") and "schema.*" in self.rules and (contract in self.contracts)
        )


def check(
    check_id: str,
    *,
    title: str,
    description: str,
    profiles: tuple[str, ...],
    features: tuple[str, ...] = (),
    contracts: tuple[str, ...] = (),
    rules: tuple[str, ...] = (),
    severity: Severity = "required",
    phase: Phase = "traffic",
) -> Callable[[CheckFunction], Check]:
    """Turn a function ``(ctx) -> None`` into a :class:`Check` record."""

    def wrap(function: CheckFunction) -> Check:
        return Check(
            id=check_id,
            title=title,
            description=" ".join(description.split()),
            profiles=profiles,
            function=function,
            features=features,
            contracts=contracts,
            rules=rules,
            severity=severity,
            phase=phase,
        )

    return wrap


class CheckRegistry:
    """An explicit collection of checks, looked up by ID, profile or enforced rule."""

    def __init__(self, checks: Iterable[Check] = ()) -> None:
        self._checks: dict[str, Check] = {}
        for item in checks:
            self.add(item)

    def add(self, item: Check) -> None:
        if item.id in self._checks:
            raise ValueError(f"duplicate check id {item.id!r}")
        self._checks[item.id] = item

    def __iter__(self) -> Iterator[Check]:
        """Checks in run order: by phase, then by ID."""
        return iter(sorted(self._checks.values(), key=lambda c: (PHASES.index(c.phase), c.id)))

    def __len__(self) -> int:
        return len(self._checks)

    def __contains__(self, check_id: object) -> bool:
        return check_id in self._checks

    def get(self, check_id: str) -> Check:
        try:
            return self._checks[check_id]
        except KeyError:
            raise KeyError(f"unknown check {check_id!r}") from None

    def ids(self) -> list[str]:
        return [c.id for c in self]

    def select(
        self, profiles: Iterable[str] | None = None, ids: Iterable[str] | None = None
    ) -> list[Check]:
        """Checks in any of ``profiles`` (all when ``None``), narrowed to ``ids`` if given."""
        wanted = set(profiles) if profiles is not None else None
        only = set(ids) if ids is not None else None
        if only is not None:
            unknown = sorted(only - self._checks.keys())
            if unknown:
                raise KeyError(f"unknown check {unknown[0]!r}")
        return [
            c
            for c in self
            if (wanted is None or wanted.intersection(c.profiles))
            and (only is None or c.id in only)
        ]

    def enforcing(self, contract: str, rule: str) -> list[Check]:
        """The checks that fail when ``rule`` of ``contract`` is violated."""
        return [c for c in self if c.enforces(contract, rule)]
