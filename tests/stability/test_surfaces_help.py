"""The ``--help`` fallback: real 1.6.1 captures, and a component with options only a built
parser shows, run with the current interpreter."""

from __future__ import annotations

import re
import sys
import time
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from surfaces_helpers import write_tree

from dynconform.cli import main
from dynconform.stability import SurfaceOptions, Tier, load_surfaces, parse_help, snapshot_surfaces
from dynconform.stability._help_surface import merge_help

FIXTURES = Path(__file__).parents[1] / "fixtures"
HELP = FIXTURES / "ai-dynamo-1.6.1" / "cli_help"
STATIC = FIXTURES / "surfaces" / "ai-dynamo-1.6.1-cli.json"


def _listed(text: str) -> set[str]:
    """Every option spelling in the option lines of a help text."""
    names: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^ {2}(-\S.*?)(?:\s{2,}|$)", line)
        if m:
            names.update(p.split(" ")[0] for p in m.group(1).split(", "))
    return names - {"-h", "--help"}


def test_parse_real_frontend_help() -> None:
    text = (HELP / "dynamo.frontend.txt").read_text()
    opts = parse_help(text, "dynamo.frontend")
    assert {n for o in opts.values() for n in o.names} == _listed(text)
    disagg = opts["--enforce-disagg"]
    assert disagg.aliases == ("--no-enforce-disagg",)
    assert (disagg.env, disagg.default, disagg.action) == (
        "DYN_ENFORCE_DISAGG",
        "False",
        "BooleanOptionalAction",
    )
    assert disagg.deprecated
    assert disagg.origin == "help"
    assert disagg.help.startswith("DEPRECATED: accepted for compatibility")
    assert "env var" not in disagg.help
    mode = opts["--router-mode"]
    assert mode.choices is not None
    assert mode.choices[:2] == ("round-robin", "random")
    assert set(opts["--interactive"].aliases) == {"-i", "--no-interactive"}
    assert opts["--http-port"].default == "8000"
    shared = opts["--shared-cache-multiplier"]
    assert shared.tier is Tier.EXPERIMENTAL
    assert shared.deprecated


def test_parse_real_mocker_help_and_failed_capture() -> None:
    text = (HELP / "dynamo.mocker.txt").read_text()
    opts = parse_help(text, "dynamo.mocker")
    assert {n for o in opts.values() for n in o.names} == _listed(text)
    worker = opts["--is-prefill-worker"]
    assert worker.deprecated
    assert worker.default == "False"
    assert worker.action is None
    assert opts["--disaggregation-mode"].choices == ("agg", "prefill", "decode")
    assert opts["--num-workers"].default == "1"  # from "(default: 1)" in wrapped help
    assert parse_help((HELP / "dynamo.vllm.txt").read_text()) == {}  # the run failed


@pytest.mark.parametrize("component", ["frontend", "mocker"])
def test_merge_closes_the_static_gap(component: str) -> None:
    """Static reading misses what custom actions add; merged with --help nothing is missing."""
    static = snapshot_surfaces(str(STATIC)).cli[f"dynamo.{component}"]
    text = (HELP / f"dynamo.{component}.txt").read_text()
    real = _listed(text)

    def missing(opts: dict) -> set[str]:  # type: ignore[type-arg]
        ours = {n for o in opts.values() for n in o.names}
        return {h for h in real if not any(fnmatchcase(h, o) for o in ours)}

    merged = merge_help(static, parse_help(text, f"dynamo.{component}"))
    assert missing(merged) == set()
    if component == "frontend":
        assert missing(static) == {"--no-enforce-disagg"}
        assert merged["--enforce-disagg"].origin == "source+help"
        assert static["--enforce-disagg"].origin == "source"  # the input is left alone
    assert {o.origin for o in merged.values()} <= {"source", "source+help", "help"}


FAKE = {
    "fakedyn/__init__.py": "",
    "fakedyn/comp/__init__.py": "",
    "fakedyn/comp/__main__.py": """
        import argparse

        class Negatable(argparse.Action):
            def __init__(self, option_strings, dest, **kwargs):
                names = list(option_strings)
                names += ["--no-" + s[2:] for s in option_strings if s.startswith("--")]
                super().__init__(names, dest, nargs=0, **kwargs)

            def __call__(self, parser, namespace, values, option_string=None):
                setattr(namespace, self.dest, not option_string.startswith("--no-"))

        def main():
            p = argparse.ArgumentParser()
            p.add_argument("--enforce-disagg", action=Negatable, default=False,
                           help="[DEPRECATED] accepted and ignored.")
            for side in ("in", "out"):
                p.add_argument(f"--{side}-level", type=int, help="Level.")
            extra = {"--dynamic-port": "[BETA] Port chosen when the parser is built."}
            for flag, text in extra.items():
                p.add_argument(flag, help=text)
            p.parse_args()

        main()
        """,
    "fakedyn/broken/__init__.py": "",
    "fakedyn/broken/__main__.py": """
        import argparse
        import not_installed_engine
        argparse.ArgumentParser().add_argument("--never", help="Never shown.")
        """,
    "fakedyn/slow/__init__.py": "",
    "fakedyn/slow/__main__.py": """
        import argparse, time
        time.sleep(60)
        argparse.ArgumentParser().add_argument("--late", help="Too late.")
        """,
}


def test_help_from_current_interpreter(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_tree(tmp_path / "src", FAKE)
    monkeypatch.setenv("PYTHONPATH", str(root))
    static = snapshot_surfaces(str(root), SurfaceOptions(components=("fakedyn.comp",)))
    assert "--dynamic-port" not in static.cli["fakedyn.comp"]
    options = SurfaceOptions(
        components=("fakedyn.comp", "fakedyn.broken"), help_from=sys.executable
    )
    loaded = load_surfaces(str(root), options)
    comp = loaded.snapshot.cli["fakedyn.comp"]
    port = comp["--dynamic-port"]
    assert (port.origin, port.tier, port.location) == ("help", Tier.BETA, "help:fakedyn.comp")
    disagg = comp["--enforce-disagg"]
    assert disagg.aliases == ("--no-enforce-disagg",)
    assert disagg.origin == "source+help"
    assert "--in-level" not in comp
    assert "--*-level" in comp
    assert len(loaded.problems) == 1
    assert "fakedyn.broken --help exited 1" in loaded.problems[0]
    assert "not_installed_engine" in loaded.problems[0]
    out = tmp_path / "merged.json"
    argv = ["surfaces", "snapshot", str(root), "--component", "fakedyn.comp"]
    assert main([*argv, "--help-from", sys.executable, "-o", str(out)]) == 0
    assert '"origin": "help"' in out.read_text()
    assert main([*argv, "--help-from", str(tmp_path / "no-python")]) == 2
    assert "no such interpreter" in capsys.readouterr().err


def test_help_timeout_kills_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_tree(tmp_path / "src", FAKE)
    monkeypatch.setenv("PYTHONPATH", str(root))
    options = SurfaceOptions(components=("fakedyn.slow",), help_from=sys.executable, help_timeout=1)
    start = time.monotonic()
    loaded = load_surfaces(str(root), options)
    assert time.monotonic() - start < 15
    assert loaded.problems == ["fakedyn.slow --help: no answer within 1s"]
