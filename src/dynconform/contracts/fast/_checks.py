"""Checks that msgspec types cannot express, run by a generated ``__post_init__``.

msgspec calls a Struct's ``__post_init__`` after decoding it and turns a ``ValueError`` raised
there into a validation error, so these checks make decoding fail exactly like a type would.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from msgspec import UNSET

from dynconform.contracts.fast._shape import json_equal

#: A check on one value: an error message, or ``None`` when the value passes.
Check = Callable[[Any], "str | None"]

MEMO_SIZE = 4096


class PatternCheck:
    """``re.search`` of every pattern; strings that passed are remembered (values repeat)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.regexes = [re.compile(p) for p in patterns]
        self.passed: set[str] = set()

    def __call__(self, value: Any) -> str | None:
        if not isinstance(value, str) or value in self.passed:
            return None
        for regex in self.regexes:
            if regex.search(value) is None:
                return f"{value!r} does not match {regex.pattern!r}"
        if len(self.passed) >= MEMO_SIZE:
            self.passed.clear()
        self.passed.add(value)
        return None


def int_range(lower: int | None, upper: int | None) -> Check:
    """Bounds beyond what msgspec constraints hold (int64)."""

    def check(value: Any) -> str | None:
        if isinstance(value, int) and not isinstance(value, bool):
            if lower is not None and value < lower:
                return f"{value} is less than {lower}"
            if upper is not None and value > upper:
                return f"{value} is greater than {upper}"
        return None

    return check


def unique(value: Any) -> str | None:
    """``uniqueItems`` for arrays of strings or integers."""
    if isinstance(value, list) and len(set(value)) != len(value):
        return "array items are not unique"
    return None


def each(inner: Check) -> Check:
    """``inner`` on every item of an array."""

    def check(value: Any) -> str | None:
        if isinstance(value, list | tuple):
            for item in value:
                problem = inner(item)
                if problem is not None:
                    return problem
        return None

    return check


def members(checks: Sequence[Check | None]) -> Check | None:
    """The check of each position of a fixed-size array."""
    if all(check is None for check in checks):
        return None
    indexed = [(i, check) for i, check in enumerate(checks) if check is not None]

    def check(value: Any) -> str | None:
        if isinstance(value, list | tuple):
            for i, one in indexed:
                problem = one(value[i]) if i < len(value) else None
                if problem is not None:
                    return problem
        return None

    return check


def all_of(checks: Sequence[Check]) -> Check | None:
    """Every check in turn (each ignores values of types it does not judge)."""
    if not checks:
        return None
    if len(checks) == 1:
        return checks[0]

    def check(value: Any) -> str | None:
        for one in checks:
            problem = one(value)
            if problem is not None:
                return problem
        return None

    return check


#: A branch of a conditional checked after decoding: keys it requires, and
#: ``(attribute, type)`` pairs whose values must also convert to ``type``.
Branch = tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]


def conditional(
    required: tuple[str, ...], expected: dict[str, list[Any]], then: Branch, else_: Branch
) -> Callable[[Any], str | None]:
    """An ``if``/``then``/``else`` whose ``if`` tests presence and const values of fields."""

    def check(obj: Any) -> str | None:
        holds = all(getattr(obj, a) is not UNSET for a in required) and all(
            (value := getattr(obj, a)) is UNSET or any(json_equal(value, v) for v in values)
            for a, values in expected.items()
        )
        needed, converts = then if holds else else_
        for attr in needed:
            if getattr(obj, attr) is UNSET:
                return f"missing {attr}"
        for attr, tp in converts:
            value = getattr(obj, attr)
            if value is not UNSET:
                try:
                    msgspec.convert(value, tp)
                except msgspec.ValidationError as exc:
                    return str(exc)
        return None

    return check


@dataclass(frozen=True, slots=True)
class Presence:
    """``if: {required: [...]}``: the keys required when it holds and when it does not."""

    tested: tuple[str, ...]
    then: tuple[str, ...]
    else_: tuple[str, ...]


def post_init(
    field_checks: Sequence[tuple[str, Check]],
    counted: tuple[tuple[str, ...], int, int | None] | None,
    presence: Sequence[Presence],
    others: Sequence[Callable[[Any], str | None]],
) -> Callable[[Any], None] | None:
    """A ``__post_init__`` running the checks (generated: it runs once per decoded Struct)."""
    if not (field_checks or counted or presence or others):
        return None
    env: dict[str, Any] = {"UNSET": UNSET}
    lines = ["def __post_init__(self):"]
    for i, (attr, check) in enumerate(field_checks):
        env[f"check{i}"] = check
        lines.append(f"    value = self.{attr}")
        if isinstance(check, PatternCheck):
            env[f"passed{i}"] = check.passed
            lines.append(f"    if isinstance(value, str) and value not in passed{i}:")
        else:
            lines.append("    if value is not UNSET:")
        lines += [
            f"        problem = check{i}(value)",
            "        if problem is not None:",
            "            raise ValueError(problem)",
        ]
    if counted is not None:
        names, low, high = counted
        count = " + ".join(f"(self.{n} is not UNSET)" for n in names) or "0"
        limit = f"count < {low}" + ("" if high is None else f" or count > {high}")
        lines += [
            f"    count = {count}",
            f"    if {limit}:",
            "        raise ValueError(f'object has {count} properties')",
        ]
    for test in presence:
        holds = " and ".join(f"self.{a} is not UNSET" for a in test.tested)
        lines.append(f"    if {holds}:")
        lines += _require(test.then, "        ")
        lines.append("    else:")
        lines += _require(test.else_, "        ")
    for i, check in enumerate(others):
        env[f"other{i}"] = check
        lines += [
            f"    problem = other{i}(self)",
            "    if problem is not None:",
            "        raise ValueError(problem)",
        ]
    exec("\n".join(lines), env)  # attribute names are generated identifiers
    function: Callable[[Any], None] = env["__post_init__"]
    return function


def _require(attrs: tuple[str, ...], indent: str) -> list[str]:
    if not attrs:
        return [f"{indent}pass"]
    missing = " or ".join(f"self.{a} is UNSET" for a in attrs)
    return [
        f"{indent}if {missing}:",
        f"{indent}    raise ValueError('a required property is missing')",
    ]
