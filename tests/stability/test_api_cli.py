"""``dynconform api ...`` through its argparse wiring: exit codes and output formats."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from stability_helpers import build_wheel, write_tree

from dynconform.cli._common import Parser, UsageError, fail
from dynconform.cli.api_cmd import add_api
from dynconform.contracts import InputError
from dynconform.stability import KINDS

Run = Callable[..., tuple[int, str, str]]

OLD = "def keep() -> None: ...\ndef gone(a: int) -> None: ...\n"
NEW = "def keep() -> None: ...\n"


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    def invoke(*argv: str) -> tuple[int, str, str]:
        parser = Parser(prog="dynconform")
        add_api(parser.add_subparsers(dest="command", parser_class=Parser))
        args = parser.parse_args(list(argv))
        try:
            code = args.func(args)
        except (InputError, UsageError) as exc:
            code = fail(str(exc))
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


@pytest.fixture
def trees(tmp_path: Path) -> tuple[str, str]:
    old = write_tree(tmp_path / "old", {"pkg/__init__.py": OLD})
    new = write_tree(tmp_path / "new", {"pkg/__init__.py": NEW})
    return str(old), str(new)


def test_snapshot_writes_a_baseline(run: Run, trees: tuple[str, str], tmp_path: Path) -> None:
    out = tmp_path / "api.json"
    code, stdout, err = run("api", "snapshot", trees[0], "-o", str(out))
    assert code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["kind"] == "ApiSnapshot"
    assert "pkg.gone" in data["objects"]
    assert "objects" in err
    assert stdout == ""
    code, stdout, _ = run("api", "snapshot", trees[0], "--default-tier", "beta")
    assert json.loads(stdout)["objects"]["pkg.gone"]["tier"] == "beta"


def test_diff_fails_on_a_stable_removal(run: Run, trees: tuple[str, str]) -> None:
    code, out, _ = run("api", "diff", *trees)
    assert code == 1
    assert "STABLE" in out
    assert "object-removed (1)" in out
    assert "FAIL   pkg.gone: function was removed" in out
    assert out.rstrip().endswith("verdict: FAIL, 1 policy violation(s)")


def test_diff_tiers_file_makes_it_experimental(
    run: Run, trees: tuple[str, str], tmp_path: Path
) -> None:
    tiers = tmp_path / "tiers.yaml"
    tiers.write_text("tiers:\n  pkg.**: experimental\n", encoding="utf-8")
    code, out, _ = run("api", "diff", *trees, "--tiers", str(tiers))
    assert code == 0
    assert "EXPERIMENTAL [reported only]" in out
    assert "verdict: PASS" in out


def test_deprecation_override(run: Run, trees: tuple[str, str]) -> None:
    assert run("api", "diff", *trees, "--deprecation", "stable=none")[0] == 0
    assert run("api", "diff", *trees, "--deprecation", "stable=0")[0] == 0
    code, _, err = run("api", "diff", *trees, "--deprecation", "stable")
    assert code == 2
    assert "TIER=N" in err


def test_json_markdown_and_github_formats(run: Run, trees: tuple[str, str]) -> None:
    code, out, _ = run("api", "diff", *trees, "--format", "json")
    report = json.loads(out)
    assert code == 1
    assert (report["kind"], report["verdict"]) == ("ApiDiffReport", "fail")
    assert report["summary"]["stable"]["violation"] == 1
    assert report["findings"][0]["kind"] == "object-removed"

    code, out, _ = run("api", "diff", *trees, "--format", "markdown")
    assert "### API check: FAIL" in out
    assert "| stable | 1 | 1 |" in out
    assert "| violation | object-removed | `pkg.gone` |" in out

    code, out, _ = run("api", "diff", *trees, "--format", "github")
    assert (
        "::error file=pkg/__init__.py,line=2,title=API object-removed (stable)::"
        "pkg.gone: function was removed"
    ) in out


def test_output_file(run: Run, trees: tuple[str, str], tmp_path: Path) -> None:
    target = tmp_path / "report.md"
    code, out, _ = run("api", "diff", *trees, "--format", "markdown", "-o", str(target))
    assert code == 1
    assert out == ""
    assert "API check" in target.read_text(encoding="utf-8")


def test_check_against_a_baseline(run: Run, trees: tuple[str, str], tmp_path: Path) -> None:
    baseline = tmp_path / "api.json"
    run("api", "snapshot", trees[0], "-o", str(baseline))
    assert run("api", "check", "--baseline", str(baseline), trees[0])[0] == 0
    assert run("api", "check", "--baseline", str(baseline), trees[1])[0] == 1
    code, _, err = run("api", "check", "--baseline", str(tmp_path / "nope.json"), trees[1])
    assert code == 2
    assert "no such file" in err


def test_waivers_on_the_command_line(run: Run, trees: tuple[str, str], tmp_path: Path) -> None:
    waivers = tmp_path / "waivers.yaml"
    waivers.write_text(
        "- path: pkg.gone\n  kind: object-removed\n  reason: agreed\n  expires: 2999-01-01\n"
        "- path: pkg.other\n  reason: stale\n",
        encoding="utf-8",
    )
    code, out, _ = run("api", "diff", *trees, "--waivers", str(waivers))
    assert code == 0
    assert "used    pkg.gone (object-removed), matched 1: agreed" in out
    assert "unused  pkg.other (any kind), matched 0: stale" in out
    waivers.write_text(
        "- path: pkg.gone\n  reason: agreed\n  expires: 2000-01-01\n", encoding="utf-8"
    )
    code, out, _ = run("api", "diff", *trees, "--waivers", str(waivers), "--format", "github")
    assert code == 1
    assert "::error title=dynconform waiver expired::" in out


def test_usage_errors_exit_2(run: Run, trees: tuple[str, str]) -> None:
    code, out, err = run("api", "diff", "pypi:nope", trees[1])
    assert code == 2
    assert out == ""
    assert err.startswith("dynconform: error: bad PyPI source")
    assert err.count("\n") == 1
    assert run("api", "diff", *trees, "--max", "-1")[0] == 2
    assert run("api", "diff", *trees, "--tiers", "no-such-tiers")[0] == 2


def test_kinds_lists_the_catalogue(run: Run) -> None:
    code, out, _ = run("api", "kinds")
    assert code == 0
    assert len(out.splitlines()) == len(KINDS)
    assert any(
        line.startswith("reexport-removed") and "breaking" in line for line in out.splitlines()
    )


def test_history_over_a_local_index(run: Run, tmp_path: Path) -> None:
    links = tmp_path / "index"
    build_wheel(links, "hist", "1.0", {"hist/__init__.py": "def a(x: int) -> None: ...\n"})
    dep = "from typing_extensions import deprecated\n@deprecated('use b')\n"
    build_wheel(links, "hist", "1.1", {"hist/__init__.py": dep + "def a(x: int) -> None: ...\n"})
    build_wheel(links, "hist", "1.2", {"hist/__init__.py": dep + "def a(x: int) -> None: ...\n"})
    build_wheel(links, "hist", "1.3", {"hist/__init__.py": "def b() -> None: ...\n"})
    build_wheel(links, "hist", "2.0rc1", {"hist/__init__.py": ""})
    index = ("--no-index", "--find-links", str(links))
    code, _, err = run("api", "history", "hist", "--from", "1.0", "--to", "9.9", *index)
    assert code == 2
    assert "has no release 9.9" in err
    code, out, _ = run("api", "history", "hist", "--from", "1.0", *index, "--format", "json")
    data = json.loads(out)
    assert data["releases"] == ["1.0", "1.1", "1.2", "1.3"]  # no pre-release without --pre
    assert data["deprecations"] == {"hist.a": "1.1"}
    assert [s["verdict"] for s in data["steps"]] == ["pass", "pass", "pass"]
    # Deprecated in 1.1, removed in 1.3: two releases, enough for Stable.
    assert data["steps"][2]["findings"][0]["status"] == "allowed"
    code, out, _ = run("api", "history", "hist", "--versions", "1.0,1.3", *index)
    assert code == 1
    assert out.splitlines()[0] == "1.0 -> 1.3: FAIL; stable 1 breaking (1 violation), 1 added"
    assert out.splitlines()[1].startswith("hist: 1 comparisons, 0 deprecations tracked")
