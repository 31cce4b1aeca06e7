"""Deprecation periods per surface kind over a five-release history of synthetic sources."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from surfaces_helpers import write_tree

from dynconform.cli import main
from dynconform.contracts import InputError
from dynconform.stability import (
    SURFACE_PERIODS,
    Status,
    SurfaceSnapshot,
    Tier,
    history_surfaces,
    judge_history,
    judge_surfaces,
    parse_exposition,
    snapshot_surfaces,
)

# Per release (1..5): the help of each flag and the comment of each metric; None: gone.
FLAGS: dict[str, list[str | None]] = {
    "--a": ["A.", "[DEPRECATED] A.", None, None, None],
    "--c": ["[BETA] C.", "[BETA] [DEPRECATED] C.", None, None, None],
    "--d": ["D.", "D.", "D.", None, None],
    "--e": ["[EXPERIMENTAL] E.", None, None, None, None],
    "--keep": ["Kept.", "Kept.", "Kept.", "Kept.", "Kept."],
}
HELPER_B: list[str | None] = ["B.", "Deprecated: use --a.", "Deprecated: use --a.", None, None]
METRICS: dict[str, list[str | None]] = {
    "M1_TOTAL": ["Requests", "Requests (deprecated)", None, None, None],
    "M2_SECONDS": [
        "Latency",
        "Latency [DEPRECATED]",
        "Latency [DEPRECATED]",
        "Latency [DEPRECATED]",
        None,
    ],
}


def _release(i: int) -> dict[str, str]:
    lines = ["import argparse", "from rel.util import add_argument", "def main():"]
    lines.append("    p = argparse.ArgumentParser()")
    for flag, helps in FLAGS.items():
        if helps[i] is not None:
            lines.append(f"    p.add_argument({flag!r}, help={helps[i]!r})")
    if HELPER_B[i] is not None:
        lines.append(f"    add_argument(p, flag_name='--b', env_var='DYN_B', help={HELPER_B[i]!r})")
    names = ["class svc:"]
    for const, comments in METRICS.items():
        if comments[i] is not None:
            names += [f"    # {comments[i]}", f"    {const} = {const.lower()!r}"]
    names.append("    KEEP = 'keep'")
    return {
        "rel/__init__.py": "",
        "rel/util.py": "def add_argument(parser, *, flag_name, env_var, help):\n    pass\n",
        "rel/front/__init__.py": "",
        "rel/front/__main__.py": "\n".join(lines) + "\n",
        "rel/prometheus_names.py": "\n".join(names) + "\n",
    }


@pytest.fixture
def releases(tmp_path: Path) -> list[str]:
    return [str(write_tree(tmp_path / f"r{i + 1}", _release(i))) for i in range(5)]


def _statuses(step: object) -> dict[str, Status]:
    return {f.path: f.status for f in step.findings if f.breaking}  # type: ignore[attr-defined]


def test_periods_per_kind_over_history(releases: list[str]) -> None:
    report = history_surfaces(releases)
    steps = [_statuses(s) for s in report.steps]
    assert steps[0] == {"cli:rel.front:--e": Status.REPORTED}  # experimental: never fails
    assert steps[1] == {
        "cli:rel.front:--a": Status.VIOLATION,  # stable flag: 2 releases, deprecated 1
        "cli:rel.front:--c": Status.ALLOWED,  # beta flag: 1 release
        "metric:m1_total": Status.VIOLATION,  # stable metric: 3 releases, deprecated 1
    }
    assert steps[2] == {
        "cli:rel.front:--b": Status.ALLOWED,  # deprecated in release 2, removed in 4
        "env:DYN_B": Status.ALLOWED,  # the env fallback of a deprecated flag
        "cli:rel.front:--d": Status.VIOLATION,  # never deprecated
    }
    assert steps[3] == {"metric:m2_seconds": Status.ALLOWED}  # deprecated 2, removed 5
    assert [s.ok for s in report.steps] == [True, False, False, True]
    assert report.history.first_seen["cli:rel.front:--b"] == releases[1]
    reasons = {f.path: f.reason for s in report.steps for f in s.findings if f.breaking}
    assert reasons["metric:m1_total"] == (
        "stable metric needs a deprecation 3 release(s) before; deprecated 1"
    )
    assert reasons["cli:rel.front:--b"].startswith("deprecated 2 release(s) before")


def test_history_counts_from_first_deprecation(releases: list[str]) -> None:
    """Without the history a deprecation looks one release old: --b would fail."""
    r3, r4 = snapshot_surfaces(releases[2]), snapshot_surfaces(releases[3])
    alone = _statuses(judge_surfaces(r3, r4))
    assert alone["cli:rel.front:--b"] is Status.VIOLATION
    snaps = [snapshot_surfaces(r) for r in releases]
    lenient = judge_history(snaps, kind_periods={"metric": {Tier.STABLE: 1}})
    assert _statuses(lenient.steps[1])["metric:m1_total"] is Status.ALLOWED
    assert _statuses(lenient.steps[1])["cli:rel.front:--a"] is Status.VIOLATION
    every = judge_history(snaps, periods={Tier.STABLE: 1})  # a tier override hits every kind
    assert _statuses(every.steps[1])["cli:rel.front:--a"] is Status.ALLOWED
    with pytest.raises(InputError, match="at least two"):
        judge_history(snaps[:1])
    with pytest.raises(InputError, match="unknown surface kind"):
        judge_history(snaps, kind_periods={"flags": {Tier.STABLE: 1}})


def test_defaults_follow_kubernetes() -> None:
    assert SURFACE_PERIODS["cli"] == {Tier.STABLE: 2, Tier.BETA: 1}
    assert SURFACE_PERIODS["metric"] == {Tier.STABLE: 3, Tier.BETA: 1}


_LIVE = """# HELP svc_requests_total Requests (deprecated: use svc_calls_total)
# TYPE svc_requests_total counter
svc_requests_total 3
# HELP svc_calls_total Calls
# TYPE svc_calls_total counter
svc_calls_total 3
"""


def test_live_metric_help_deprecation() -> None:
    def snap(text: str, version: str) -> SurfaceSnapshot:
        return SurfaceSnapshot("live", version=version, metric_families=parse_exposition(text))

    old = snap(_LIVE, "1")
    assert old.metric_families["svc_requests_total"].deprecated
    new = snap("\n".join(_LIVE.splitlines()[3:]) + "\n", "2")
    report = judge_surfaces(old, new)
    assert _statuses(report) == {"metric:svc_requests_total": Status.VIOLATION}
    lenient = judge_surfaces(old, new, kind_periods={"metric": {Tier.STABLE: 1}})
    assert _statuses(lenient) == {"metric:svc_requests_total": Status.ALLOWED}


def test_cli_history(releases: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["surfaces", "history", *releases, "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert [s["verdict"] for s in data["steps"]] == ["pass", "fail", "fail", "pass"]
    argv = ["surfaces", "history", *releases[:3], "--deprecation", "metric:stable=1"]
    assert main([*argv, "--deprecation", "cli:stable=1"]) == 0
    assert "all pass" in capsys.readouterr().out
    assert (
        main(["surfaces", "diff", releases[1], releases[2], "--deprecation", "flag:stable=1"]) == 2
    )
    assert "unknown kind 'flag'" in capsys.readouterr().err
    assert main(["surfaces", "history", releases[0]]) == 2
