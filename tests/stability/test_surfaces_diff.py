"""Surface diffs under the stability policy: kinds, tiers, renames, waivers, CLI."""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path

import pytest
from surfaces_helpers import V1, write_tree

from dynconform.cli.surfaces_cmd import add_surfaces
from dynconform.stability import (
    CliOption,
    Status,
    SurfaceSnapshot,
    Tier,
    build_surfaces,
    diff_surfaces,
    judge_surfaces,
    parse_waivers,
)


def _v2() -> dict[str, str]:
    files = dict(V1)
    files["demo/prometheus_names.py"] = """
        class frontend_service:
            REQUESTS_TOTAL = "http_requests_total"
            class operation:
                TOKENIZE = "tokenize"
            QUEUE = "queue_depth"
        """
    files["demo/frontend/__main__.py"] = """
        import argparse, os
        from demo.common import router
        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--http-port", type=int, default=8080, help="HTTP port.")
            p.add_argument("--target", help="Target.")
            for side in ("in", "out"):
                p.add_argument(f"--{side}-bandwidth", type=float, help="Bandwidth.")
            router.add_router(p)
        """
    files["demo/common/router.py"] = V1["demo/common/router.py"].replace(
        '["round-robin", "random", "kv"]', '["round-robin", "kv", "least-loaded"]'
    )
    files["demo/common/utils.py"] = V1["demo/common/utils.py"].replace(
        "DYN_HTTP_TIMEOUT", "DYN_HTTP_TIMEOUT_SECS"
    )
    return files


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return write_tree(tmp_path / "v1", V1), write_tree(tmp_path / "v2", _v2())


def _by(findings: list, kind: str) -> dict[str, object]:  # type: ignore[type-arg]
    return {f.path: f for f in findings if f.kind == kind}


def test_changes_found(pair: tuple[Path, Path]) -> None:
    old = build_surfaces(pair[0], "demo", source="v1", version="1")
    new = build_surfaces(pair[1], "demo", source="v2", version="2")
    findings = diff_surfaces(old, new)
    removed = _by(findings, "surface-removed")
    assert "cli:demo.frontend:--mode" in removed
    assert "env:DYN_HTTP_TIMEOUT" in removed
    assert "metric:kvbm_hits" in removed
    renamed = _by(findings, "surface-renamed")
    assert renamed["cli:demo.frontend:--old-flag"].new == "--target"  # type: ignore[attr-defined]
    metric = renamed["metric:requests_total"]
    assert metric.new == "http_requests_total"  # type: ignore[attr-defined]
    changed = [f for f in findings if f.kind == "flag-changed"]
    messages = {(f.path, f.message) for f in changed}
    assert ("cli:demo.frontend:--http-port", "alias removed: -p") in messages
    assert ("cli:demo.frontend:--http-port", "default changed") in messages
    assert ("cli:demo.frontend:--router-mode", "choices removed: random") in messages
    widened = _by(findings, "flag-widened")
    assert widened["cli:demo.frontend:--router-mode"].message == "choices added: least-loaded"  # type: ignore[attr-defined]
    added = _by(findings, "surface-added")
    assert {"env:DYN_HTTP_TIMEOUT_SECS", "metric:queue_depth"} <= set(added)
    assert "metric:http_requests_total" not in added
    assert not [f for f in findings if "--in-bandwidth" in f.path or "mocker" in f.path]


def test_policy_tiers_and_waivers(pair: tuple[Path, Path], tmp_path: Path) -> None:
    old = build_surfaces(pair[0], "demo", source="v1", version="1")
    new = build_surfaces(pair[1], "demo", source="v2", version="2")
    report = judge_surfaces(old, new)
    assert not report.ok
    status = {(f.path, f.kind): f.status for f in report.findings}
    assert status[("cli:demo.frontend:--mode", "surface-removed")] is Status.REPORTED
    assert status[("env:DYN_HTTP_TIMEOUT", "surface-removed")] is Status.VIOLATION
    # --old-flag said "Deprecated" in 1: with a one-release period the rename is allowed.
    assert status[("cli:demo.frontend:--old-flag", "surface-renamed")] is Status.VIOLATION
    lenient = judge_surfaces(old, new, periods={Tier.STABLE: 1})
    ok = {(f.path, f.kind): f.status for f in lenient.findings}
    assert ok[("cli:demo.frontend:--old-flag", "surface-renamed")] is Status.ALLOWED

    waivers = parse_waivers([{"path": "**", "reason": "pre-1.0 cleanup"}], "inline")
    assert judge_surfaces(old, new, waivers=waivers).ok
    assert report.summary()["stable"]["additions"] == 2  # env var, metric


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    add_surfaces(parser.add_subparsers())
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


def test_cli_snapshot_and_diff(
    pair: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "old.json"
    assert _cli(["surfaces", "snapshot", str(pair[0]), "-o", str(out)]) == 0
    assert "flags in 2 components" in capsys.readouterr().err
    assert json.loads(out.read_text())["kind"] == "SurfaceSnapshot"
    assert _cli(["surfaces", "diff", str(out), str(pair[1])]) == 1
    text = capsys.readouterr().out
    assert "env:DYN_HTTP_TIMEOUT" in text
    assert "verdict: FAIL" in text
    assert _cli(["surfaces", "diff", str(out), str(out), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"
    waivers = tmp_path / "w.yaml"
    waivers.write_text(
        textwrap.dedent(
            """
            - path: "**"
              reason: accepted for the demo
            """
        ),
        encoding="utf-8",
    )
    assert _cli(["surfaces", "diff", str(out), str(pair[1]), "--waivers", str(waivers)]) == 0
    assert _cli(["surfaces", "diff", str(out), str(pair[1]), "--format", "github"]) == 1
    assert "::error" in capsys.readouterr().out


def test_computed_spellings_cover_old_names() -> None:
    old = SurfaceSnapshot("p", cli={"p.c": {"--aic-tp": CliOption("--aic-tp", dest="aic_tp")}})
    old.env = {"DYN_AIC_TP": ["p/a.py"], "DYN_GONE": ["p/a.py"]}
    new = SurfaceSnapshot("p", cli={"p.c": {"--ais-*": CliOption("--ais-*", ("--aic-*",))}})
    new.env = {"DYN_AIC_*": ["p/b.py"]}
    paths = {(f.kind, f.path) for f in diff_surfaces(old, new)}
    assert ("surface-removed", "env:DYN_GONE") in paths
    assert not any("aic" in p.lower() and k == "surface-removed" for k, p in paths)


def test_choices_restricted_and_lifted() -> None:
    def snap(**opts: CliOption) -> SurfaceSnapshot:
        return SurfaceSnapshot("p", cli={"p.c": {f"--{k}": o for k, o in opts.items()}})

    old = snap(
        a=CliOption("--a", choices=("x", "y")),
        b=CliOption("--b"),
        c=CliOption("--c", ("-c",), choices=("x",)),
    )
    new = snap(
        a=CliOption("--a"),
        b=CliOption("--b", choices=("x", "y")),
        c=CliOption("--c", ("-C",), choices=("x",)),
    )
    got = {(f.kind, f.path, f.message) for f in diff_surfaces(old, new)}
    assert got == {
        ("flag-widened", "cli:p.c:--a", "choices no longer restricted"),
        ("flag-changed", "cli:p.c:--b", "choices now restricted to x, y"),
        ("flag-changed", "cli:p.c:--c", "alias removed: -c"),
        ("flag-widened", "cli:p.c:--c", "alias added: -C"),
    }
