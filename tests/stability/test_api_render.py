"""Report writers and release selection."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import pytest

from dynconform.stability import (
    ApiReport,
    Snapshot,
    Tier,
    TierConfig,
    apply_policy,
    diff_snapshots,
    parse_waivers,
    render,
    select_versions,
)
from dynconform.stability._policy import version_key

Snap = Callable[..., Snapshot]

OLD = {
    "pkg/__init__.py": "def keep() -> None: ...\n",
    "pkg/core.py": "def f(a: int, b: int = 0) -> None: ...\nLIMIT = 1\n",
    "pkg/lab.py": '__stability__ = "experimental"\n'
    + "".join(f"def t{i}() -> None: ...\n" for i in range(15)),
}
NEW = {
    "pkg/__init__.py": "def keep() -> None: ...\ndef added() -> None: ...\n",
    "pkg/core.py": "def f(a: int) -> None: ...\nLIMIT = 2\n",
    "pkg/lab.py": '__stability__ = "experimental"\n',
}


@pytest.fixture
def report(snap: Snap) -> ApiReport:
    config = TierConfig()
    old, new = snap(OLD, config=config), snap(NEW, config=config)
    old.source, new.source = "old-src", "new-src"
    old.version, new.version = "1.0", "1.1"
    waivers = parse_waivers(
        [{"path": "pkg.core.LIMIT", "reason": "tuned, see notes", "expires": "2999-01-01"}], "w"
    )
    return apply_policy(
        diff_snapshots(old, new), old, new, config.periods, waivers, today=dt.date(2026, 1, 1)
    )


def test_text_groups_by_tier_and_kind_and_cuts_long_lists(report: ApiReport) -> None:
    text = render(report, "text", limit=3)
    lines = text.splitlines()
    assert lines[0] == "API of pkg: old-src (1.0) -> new-src (1.1)"
    stable = lines.index(next(ln for ln in lines if ln.startswith("STABLE")))
    experimental = lines.index(next(ln for ln in lines if ln.startswith("EXPERIMENTAL")))
    assert stable < experimental
    assert "1 violation, 1 waived" in lines[stable]
    assert "  parameter-removed (1)" in lines
    assert "    FAIL   pkg.core.f(b): parameter 'b' was removed  [pkg/core.py:1]" in lines
    assert "    waived pkg.core.LIMIT: value changed from 1 to 2  [pkg/core.py:2]" in lines
    assert "    ... 12 more (use --max or --format json)" in lines
    assert "  used    pkg.core.LIMIT (any kind), matched 1: tuned, see notes" in lines
    assert lines[-1] == "verdict: FAIL, 1 policy violation(s)"
    assert "pkg.added" not in text
    assert "pkg.added" in render(report, "text", additions=True)


def test_json_report_is_versioned_and_complete(report: ApiReport) -> None:
    data = json.loads(render(report, "json"))
    assert data["apiVersion"] == "dynconform.dev/v1"
    assert data["kind"] == "ApiDiffReport"
    assert data["policy"]["deprecationReleases"] == {
        "internal": None,
        "experimental": None,
        "beta": 1,
        "stable": 2,
    }
    assert data["summary"]["experimental"]["reported"] == 15
    assert data["waivers"][0]["state"] == "used"
    assert {f["status"] for f in data["findings"]} == {
        "violation",
        "waived",
        "reported",
        "info",
    }


def test_markdown_has_a_summary_table_and_details(report: ApiReport) -> None:
    md = render(report, "markdown")
    assert "| stable | 2 | 1 | 0 | 1 | 0 | 1 |" in md
    assert "<details><summary>experimental: 15 breaking</summary>" in md
    assert "| `pkg.core.LIMIT` | any | used | tuned, see notes |" in md


def test_github_annotations_escape_properties_and_messages(report: ApiReport) -> None:
    out = render(report, "github").splitlines()
    errors = [ln for ln in out if ln.startswith("::error")]
    assert errors == [
        "::error file=pkg/core.py,line=1,title=API parameter-removed (stable)::"
        "pkg.core.f(b): parameter 'b' was removed"
    ]
    notice = next(ln for ln in out if ln.startswith("::notice"))
    assert "title=API attribute-value-changed waived%3A tuned%2C see notes" in notice


def test_select_versions_orders_filters_and_keeps_named_bounds() -> None:
    versions = ["1.10.0", "1.2.0", "1.2.0.post1", "1.9.0", "2.0.0rc1", "1.0.0", "0.9.0", "2.0.0"]
    assert select_versions(versions, "1.0.0", "2.0.0") == [
        "1.0.0",
        "1.2.0",
        "1.2.0.post1",
        "1.9.0",
        "1.10.0",
        "2.0.0",
    ]
    assert "2.0.0rc1" in select_versions(versions, "1.9.0", None, pre=True)
    assert select_versions(versions, "1.10.0", "2.0.0rc1") == ["1.10.0", "2.0.0rc1"]
    assert version_key("1.10") > version_key("1.9")


def test_tier_order_is_the_strength_of_the_promise() -> None:
    assert Tier.STABLE.rank > Tier.BETA.rank > Tier.EXPERIMENTAL.rank > Tier.INTERNAL.rank
