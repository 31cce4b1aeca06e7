"""Named, overridable timeouts and the consistency window for eventually consistent state.

Checks never sleep for a fixed time: they poll a condition with :func:`eventually` until it
holds or the named window closes, and report the last reason it did not hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TypeVar

from dynconform.conformance._errors import CheckFailed

__all__ = ["DEFAULT_TIMEOUTS", "Timeouts", "eventually", "parse_timeout"]

T = TypeVar("T")

#: Every named timeout (seconds) with its default.
DEFAULT_TIMEOUTS: Mapping[str, float] = MappingProxyType(
    {
        # the system under test is up: frontend answers and a model is listed
        "startup": 120.0,
        # a worker's discovery records and event channels are present
        "registration": 30.0,
        # one HTTP request, including a streamed body
        "request": 30.0,
        # eventually consistent state (models list, health, metrics) catches up
        "consistency": 10.0,
        # an event caused by a request arrives on the event plane
        "event": 10.0,
        # a killed worker's records and model are gone (etcd lease TTL is 10 s by default)
        "deregistration": 60.0,
        # a restarted worker serves again
        "recovery": 90.0,
        # time budget of the fuzzing check
        "fuzz": 60.0,
        # processes exit after SIGTERM before they are killed
        "shutdown": 10.0,
    }
)


def parse_timeout(text: str) -> tuple[str, float]:
    """Parse ``name=seconds``; raises :class:`ValueError` with a one-line message."""
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name:
        raise ValueError(f"timeout {text!r} is not NAME=SECONDS")
    if name not in DEFAULT_TIMEOUTS:
        known = ", ".join(DEFAULT_TIMEOUTS)
        raise ValueError(f"unknown timeout {name!r} (known: {known})")
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"timeout {name}: {value!r} is not a number of seconds") from None
    if not seconds > 0:
        raise ValueError(f"timeout {name} must be positive, got {value}")
    return name, seconds


@dataclass(frozen=True)
class Timeouts:
    """The named timeouts of one run: defaults with overrides applied."""

    overrides: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> Timeouts:
        return cls(dict(parse_timeout(spec) for spec in specs))

    def __getattr__(self, name: str) -> float:
        if name in DEFAULT_TIMEOUTS:
            return self.get(name)
        raise AttributeError(name)

    def get(self, name: str) -> float:
        return float(self.overrides.get(name, DEFAULT_TIMEOUTS[name]))

    def as_dict(self) -> dict[str, float]:
        return {name: self.get(name) for name in DEFAULT_TIMEOUTS}


def eventually(
    probe: Callable[[], T],
    *,
    within: float,
    what: str,
    interval: float = 0.05,
    max_interval: float = 0.5,
) -> T:
    """Call ``probe`` until it returns without raising :class:`CheckFailed`, within ``within``
    seconds; return its value. Polls with a growing interval. When the window closes, raise
    the last :class:`CheckFailed`, prefixed with what was awaited and for how long."""
    deadline = time.monotonic() + within
    last: CheckFailed | None = None
    while True:
        try:
            return probe()
        except CheckFailed as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, max_interval)
    assert last is not None
    raise CheckFailed(f"{what} within {within:g} s: {last}", last.violations) from None
