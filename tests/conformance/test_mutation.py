"""Proof that every check can fail: run the suite against the reference with each of its
violation modes (``dynconform mocker violations``) and see exactly the targeted checks fail.

A mode targets the checks that enforce its rule (``Check.enforces``). For each mode, at least
one targeted check must fail and every failing check must be targeted. Modes that cannot
hide each other (see ``_conflict``) share one reference, so the whole proof takes a few
references instead of one per mode; set ``DYNCONFORM_MUTATION_ONE_PER_MODE=1`` to give
every mode its own reference.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conformance_helpers import assert_no_process_left

from dynconform.conformance import (
    Check,
    RunConfig,
    Session,
    Timeouts,
    bundled_expectations,
    default_checks,
)
from dynconform.conformance._reference import dynconform_command
from dynconform.reports import CheckResult

CHECKS = default_checks()
#: Short windows: a violated check fails at the end of its window. The reference's file
#: store forgets a killed worker after its 10 s TTL; a restarted worker is ready when the
#: restart returns, and listed after the frontend's next poll.
TIMEOUTS = Timeouts(
    {
        "consistency": 2.0,
        "event": 3.0,
        "fuzz": 8.0,
        "registration": 15.0,
        "deregistration": 20.0,
        "recovery": 10.0,
    }
)

#: Checks no violation mode of the reference can break yet, with the mode they need.
PENDING: dict[str, str] = {}
#: Checks that must be killed by the mode made for them, not only by a mode that breaks their
#: input wholesale (an exposition that does not parse fails every metrics check).
DEDICATED = {
    check: check
    for check in (
        "discovery.worker-registered",
        "http.finish-reason-length",
        "http.errors.malformed-json",
        "http.errors.invalid-parameter",
        "events.zmq-framing",
        "metrics.counters-monotonic",
        "metrics.requests-total-exact",
        "fault.worker-kill-deregisters",
        "fault.worker-restart-recovers",
    )
} | {
    "http.chat.valid": "http.chat.wrong-object",
    "http.completion.valid": "http.completion.missing-field",
}
#: Checks the unmodified reference fails: its bundled expectations file says why.
_REFERENCE = bundled_expectations("reference")
assert _REFERENCE is not None
BASELINE_FAILS = {d.check for d in _REFERENCE.deviations}


@dataclass(frozen=True)
class Mode:
    name: str
    rule: str
    contract: str
    surface: str
    needs: tuple[str, ...]

    @property
    def topology(self) -> str:
        return "etcd-nats" if {"etcd", "nats"} & set(self.needs) else "file"

    def targets(self) -> set[str]:
        return {c.id for c in CHECKS.enforcing(self.contract, self.rule)}


@pytest.fixture(scope="module")
def modes() -> list[Mode]:
    """The reference's violation modes, as ``dynconform mocker violations --json`` lists them."""
    out = subprocess.run(
        [*dynconform_command(), "mocker", "violations", "--json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [
        Mode(m["name"], m["rule"], m["contract"], m["surface"], tuple(m.get("needs", ())))
        for m in json.loads(out)
    ]


#: Rules whose violation hides the rest of the instance from other rules (a schema failure
#: stops its rules and dispatch; an exposition that does not parse has no families).
MASKING = ("metrics.exposition-parses", "request-plane.frame-lengths")


def _masks(mode: Mode) -> bool:
    return mode.rule.startswith("schema.") or mode.rule in MASKING


def _conflict(a: Mode, b: Mode) -> bool:
    """Whether two modes may hide each other: another topology, a shared target, the same
    contract (the reference may alter one instance for either), or a masking mode on the
    same surface."""
    if a.topology != b.topology or a.contract == b.contract or a.targets() & b.targets():
        return True
    return a.surface == b.surface and (_masks(a) or _masks(b))


def group(modes: list[Mode]) -> list[list[Mode]]:
    """Modes packed into runs: same topology, disjoint targets, and a mode that can mask
    others alone on its surface."""
    if os.environ.get("DYNCONFORM_MUTATION_ONE_PER_MODE"):
        return [[m] for m in modes]
    groups: list[list[Mode]] = []
    for mode in sorted(modes, key=lambda m: (m.topology, not _masks(m), m.surface, m.name)):
        for members in groups:
            if not any(_conflict(mode, m) for m in members):
                members.append(mode)
                break
        else:
            groups.append([mode])
    return groups


def run(tmp: Path, members: list[Mode], profiles: set[str]) -> dict[str, CheckResult]:
    config = RunConfig(
        topology=members[0].topology,
        violations=tuple(m.name for m in members),
        profiles=tuple(sorted(profiles)),
        timeouts=TIMEOUTS,
        seed=3,
        report_dir=tmp,
    )
    with Session(config) as session:
        return {c.id: session.execute(c) for c in session.selected()}


def test_every_check_can_be_killed(modes: list[Mode]) -> None:
    """Each check is targeted by a mode, fails on the baseline, or is a documented gap."""
    assert modes, "the reference lists no violation mode"
    targeted = {check for m in modes for check in m.targets()}
    for mode in modes:
        assert mode.targets(), f"violation mode {mode.name} ({mode.rule}) targets no check"
    uncovered = set(CHECKS.ids()) - targeted - BASELINE_FAILS - set(PENDING)
    assert not uncovered, f"checks no violation mode targets (add one, or to PENDING): {uncovered}"
    assert not set(PENDING) & BASELINE_FAILS
    for check_id in BASELINE_FAILS - {"openai.errors.envelope"}:
        # A reference bug, not a design choice: the reference should be fixed.
        assert check_id in targeted or check_id == "fuzz.http-api", check_id


def _profiles(members: list[Mode]) -> set[str]:
    profiles = {"core", "streaming", "kv-routing"}
    for mode in members:
        for check_id in mode.targets():
            profiles.update(CHECKS.get(check_id).profiles)
    return profiles


@pytest.mark.slow
def test_violation_modes_fail_exactly_their_checks(modes: list[Mode], tmp_path: Path) -> None:
    problems: list[str] = []
    killed: set[str] = set()
    #: check -> the modes whose run failed it while targeting it
    killers: dict[str, set[str]] = {}
    for index, members in enumerate(group(modes)):
        workdir = tmp_path / f"run{index}"
        results = run(workdir, members, _profiles(members))
        # Checks the reference fails anyway prove nothing here.
        failed = {i for i, r in results.items() if r.status in ("failed", "error")}
        failed -= BASELINE_FAILS
        killed |= failed
        expected = set().union(*(m.targets() for m in members))
        for mode in members:
            if not mode.targets() & failed:
                problems.append(f"{mode.name}: none of {sorted(mode.targets())} failed")
            for check_id in mode.targets() & failed:
                killers.setdefault(check_id, set()).add(mode.name)
        for check_id in sorted(failed - expected):
            reason = results[check_id].reason[:200]
            modes_run = ", ".join(m.name for m in members)
            problems.append(f"{check_id} failed under [{modes_run}] unrelated: {reason}")
        assert_no_process_left(str(workdir))
    never = set(CHECKS.ids()) - BASELINE_FAILS - set(PENDING) - killed
    if never:
        problems.append(f"no mode killed {sorted(never)}: add them to PENDING or add modes")
    stale = set(PENDING) & killed
    if stale:
        problems.append(f"modes now kill {sorted(stale)}: remove them from PENDING")
    for check_id, mode_name in sorted(DEDICATED.items()):
        if mode_name not in killers.get(check_id, set()):
            problems.append(f"{check_id} was not killed by its mode {mode_name}")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
def test_reference_passes_every_check(tmp_path: Path) -> None:
    """Without a violation mode, every check passes on the reference (but the baseline ones)."""
    config = RunConfig(
        profiles=tuple(sorted({p for c in CHECKS for p in c.profiles})),
        # the fuzzer gets the time for all its examples, so that what it finds is repeatable
        timeouts=Timeouts({**TIMEOUTS.overrides, "fuzz": 120.0}),
        report_dir=tmp_path,
    )
    with Session(config) as session:
        results = [session.execute(c) for c in session.selected()]
        report = session.report(results)
    outcome: dict[str, Any] = {r.id: (r.status, r.reason[:200]) for r in results}
    failed = {i for i, (status, _) in outcome.items() if status != "passed"}
    # Whether the fuzzer generates the input that the reference mishandles is up to it.
    expected = BASELINE_FAILS - {"fuzz.http-api"}
    assert failed - {"fuzz.http-api"} == expected, {i: outcome[i] for i in failed ^ expected}
    assert report.passed
    assert {r.id for r in report.checks if r.known_deviation} == failed
    assert_no_process_left(str(tmp_path))


def test_modes_are_grouped_without_overlap(modes: list[Mode]) -> None:
    groups = group(modes)
    assert sorted(m.name for g in groups for m in g) == sorted(m.name for m in modes)
    for members in groups:
        for i, a in enumerate(members):
            assert not any(_conflict(a, b) for b in members[i + 1 :])
    assert len(groups) < len(modes) or os.environ.get("DYNCONFORM_MUTATION_ONE_PER_MODE")


def _check(check_id: str) -> Check:
    return CHECKS.get(check_id)


def test_pending_entries_name_real_checks() -> None:
    for check_id, needed in PENDING.items():
        assert _check(check_id).id == check_id
        assert needed


def test_dedicated_modes_target_their_checks(modes: list[Mode]) -> None:
    by_name = {m.name: m for m in modes}
    for check_id, mode_name in DEDICATED.items():
        assert check_id in by_name[mode_name].targets(), (check_id, mode_name)


def test_documentation_names_the_dedicated_modes() -> None:
    text = (Path(__file__).parents[2] / "docs" / "conformance.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if "|" in line}
    for check_id, mode_name in DEDICATED.items():
        assert mode_name in rows[check_id].split("|")[3], check_id
    for check_id in PENDING:
        assert "needs a mode" in rows[check_id], check_id
