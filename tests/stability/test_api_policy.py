"""The tier policy: deprecation periods, history-aware ages, waivers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest

from dynconform.contracts import InputError
from dynconform.stability import (
    ApiReport,
    DeprecationHistory,
    Snapshot,
    Status,
    Tier,
    TierConfig,
    apply_policy,
    diff_snapshots,
    load_waivers,
    parse_waivers,
)

Snap = Callable[..., Snapshot]
TODAY = dt.date(2026, 6, 1)

V1 = "def keep() -> None: ...\ndef gone(a: int, old: int = 0) -> None: ...\n"
V1_DEPRECATED = (
    "from typing_extensions import deprecated\n"
    "def keep() -> None: ...\n"
    "@deprecated('use keep')\ndef gone(a: int, old: int = 0) -> None: ...\n"
)
V2 = "def keep() -> None: ...\n"


def judge(
    snap: Snap,
    old: str,
    new: str,
    tier: str = "stable",
    *,
    waivers: object = None,
    old_version: str | None = "1.1",
    history: DeprecationHistory | None = None,
) -> ApiReport:
    config = TierConfig(default=Tier(tier))
    a = snap({"pkg/__init__.py": old}, config=config)
    b = snap({"pkg/__init__.py": new}, config=config)
    a.version, b.version = old_version, "1.2"
    parsed = parse_waivers(waivers, "w") if waivers is not None else []
    return apply_policy(
        diff_snapshots(a, b), a, b, config.periods, parsed, today=TODAY, history=history
    )


def status(report: ApiReport, path: str = "pkg.gone") -> Status:
    return next(f.status for f in report.findings if f.path == path and f.breaking)


@pytest.mark.parametrize("tier", ["experimental", "internal"])
def test_experimental_and_internal_changes_are_reported_not_failed(snap: Snap, tier: str) -> None:
    report = judge(snap, V1, V2, tier)
    assert status(report) is Status.REPORTED
    assert report.ok
    assert report.exit_code == 0


def test_beta_removal_needs_one_release_of_deprecation(snap: Snap) -> None:
    assert status(judge(snap, V1, V2, "beta")) is Status.VIOLATION
    report = judge(snap, V1_DEPRECATED, V2, "beta")
    assert status(report) is Status.ALLOWED
    assert report.ok


def test_stable_removal_needs_two_releases_of_deprecation(snap: Snap) -> None:
    report = judge(snap, V1_DEPRECATED, V2, "stable")
    assert status(report) is Status.VIOLATION
    assert report.exit_code == 1
    assert "needs a deprecation 2 release(s) before; deprecated 1" in report.violations[0].reason


def test_deprecation_since_an_earlier_release_counts_two(snap: Snap) -> None:
    old = (
        "def keep() -> None: ...\n"
        'def gone(a: int, old: int = 0) -> None:\n    """Go.\n\n    .. deprecated:: 1.0\n    """\n'
    )
    assert status(judge(snap, old, V2, "stable", old_version="1.1")) is Status.ALLOWED
    assert status(judge(snap, old, V2, "stable", old_version="1.0")) is Status.VIOLATION


def test_history_counts_releases_since_the_deprecation_first_appeared(snap: Snap) -> None:
    history = DeprecationHistory(releases=["1.0", "1.1", "1.2"], first_seen={"pkg.gone": "1.0"})
    assert status(judge(snap, V1_DEPRECATED, V2, "stable", history=history)) is Status.ALLOWED
    history.first_seen["pkg.gone"] = "1.1"
    assert status(judge(snap, V1_DEPRECATED, V2, "stable", history=history)) is Status.VIOLATION


def test_history_records_objects_and_parameters(snap: Snap) -> None:
    history = DeprecationHistory()
    s = snap(
        {
            "pkg/__init__.py": V1_DEPRECATED
            + "def p(x: int = 0) -> None:\n"
            + '    """P.\n\n    Args:\n        x: Deprecated, ignored.\n    """\n'
        }
    )
    s.version = "1.0"
    history.record(s)
    assert history.releases == ["1.0"]
    assert history.first_seen == {"pkg.gone": "1.0", "pkg.p(x)": "1.0"}


def test_deprecated_parameter_may_be_removed_in_beta(snap: Snap) -> None:
    old = (
        "import warnings\n"
        "def f(a: int, legacy: bool | None = None) -> None:\n"
        "    if legacy is not None:\n"
        "        warnings.warn('legacy is deprecated', DeprecationWarning)\n"
    )
    report = judge(snap, old, "def f(a: int) -> None: ...\n", "beta")
    assert status(report, "pkg.f") is Status.ALLOWED
    report = judge(
        snap,
        "def f(a: int, legacy: bool = False) -> None: ...\n",
        "def f(a: int) -> None: ...\n",
        "beta",
    )
    assert status(report, "pkg.f") is Status.VIOLATION


def test_container_deprecation_covers_its_members(snap: Snap) -> None:
    old = (
        "from typing_extensions import deprecated\n"
        "@deprecated('gone')\nclass C:\n    def m(self, a: int) -> None: ...\n"
    )
    report = judge(snap, old, "class C:\n    def m(self) -> None: ...\n", "beta")
    assert status(report, "pkg.C.m") is Status.ALLOWED


def test_additions_are_info_and_experimental_references_warn(snap: Snap) -> None:
    new = (
        V1 + "from x import experimental\n@experimental\nclass D: ...\ndef use(d: D) -> None: ...\n"
    )
    report = judge(snap, V1, new, "stable")
    by_kind = {f.kind: f.status for f in report.findings}
    assert by_kind["object-added"] is Status.INFO
    assert by_kind["stable-references-experimental"] is Status.WARNING
    assert report.ok
    assert report.summary()["stable"]["warnings"] == 1


WAIVER = {"path": "pkg.gone", "kind": "object-removed", "reason": "agreed in review"}


def test_valid_waiver_waives_and_is_used(snap: Snap) -> None:
    report = judge(snap, V1, V2, waivers=[{**WAIVER, "expires": "2026-12-31"}])
    assert status(report) is Status.WAIVED
    assert report.ok
    assert [w.state for w in report.waivers] == ["used"]


def test_expired_waiver_fails_even_when_it_matches(snap: Snap) -> None:
    report = judge(snap, V1, V2, waivers=[{**WAIVER, "expires": "2026-01-01"}])
    assert status(report) is Status.VIOLATION
    assert [w.state for w in report.waivers] == ["expired"]
    assert not report.ok
    unrelated = judge(snap, V1, V1, waivers=[{**WAIVER, "expires": "2026-01-01"}])
    assert unrelated.exit_code == 1


def test_unused_waiver_is_reported_but_passes(snap: Snap) -> None:
    report = judge(snap, V1, V1, waivers=[{**WAIVER, "path": "pkg.other.**"}])
    assert [w.state for w in report.waivers] == ["unused"]
    assert report.ok


def test_waiver_kind_must_match_and_globs_work(snap: Snap) -> None:
    other_kind = judge(snap, V1, V2, waivers=[{**WAIVER, "kind": "parameter-removed"}])
    assert status(other_kind) is Status.VIOLATION
    glob = judge(snap, V1, V2, waivers=[{"path": "pkg.*", "reason": "cleanup"}])
    assert status(glob) is Status.WAIVED


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([{"kind": "object-removed", "reason": "x"}], "'path' is required"),
        ([{"path": "a"}], "'reason' is required"),
        ([{"path": "a", "reason": "x", "kind": "nope"}], "unknown kind 'nope'"),
        ([{"path": "a", "reason": "x", "expires": "soon"}], "must be a date"),
        ([{"path": "a", "reason": "x", "why": 1}], "unknown key"),
        ("text", "a list of entries"),
    ],
)
def test_bad_waivers_are_input_errors(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_waivers(data, "w")


def test_waivers_file_with_yaml_dates(tmp_path: Path) -> None:
    path = tmp_path / "waivers.yaml"
    path.write_text(
        "waivers:\n  - path: pkg.gone\n    kind: [object-removed]\n"
        "    reason: ok\n    expires: 2026-09-30\n",
        encoding="utf-8",
    )
    (waiver,) = load_waivers(path)
    assert waiver.expires == dt.date(2026, 9, 30)
    assert waiver.kinds == frozenset({"object-removed"})
