"""The command line refuses an empty path (``Path("")`` is the current directory) and turns
Ctrl-C at any time into "dynconform: interrupted", exit 130."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pytest

import dynconform.cli
from dynconform.cli import main
from dynconform.cli._common import nonempty, path_arg

Capsys = pytest.CaptureFixture[str]


@pytest.mark.parametrize(
    "value", ["pypi:ai-dynamo==1.6.1", "git:HEAD:lib", "builtin", "http://x/metrics", "-", "."]
)
def test_only_the_empty_string_is_refused(value: str) -> None:
    assert nonempty(value) == value
    assert path_arg(value) == Path(value)


@pytest.mark.parametrize("kind", [nonempty, path_arg])
def test_the_empty_string_is_an_argparse_error(kind: Callable[[str], object]) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="an empty string is not a path"):
        kind("")


EMPTY = {
    "contracts export": ["contracts", "export", ""],
    "validate": ["validate", "discovery.entry", ""],
    "graph validate": ["graph", "validate", ""],
    "graph render": ["graph", "render", "", "--target", "k8s"],
    "graph render -o": ["graph", "render", "g.yaml", "--target", "k8s", "-o", ""],
    "report render": ["report", "render", ""],
    "report render -o": ["report", "render", "r.json", "-o", ""],
    "report stability --waivers": [
        "report", "stability", "p", "--from", "1", "--to", "2", "--waivers", "",
    ],
    "contracts compat": ["contracts", "compat", "", "builtin"],
    "contracts compat --waivers": ["contracts", "compat", "a", "b", "--waivers", ""],
    "contracts compat -o": ["contracts", "compat", "a", "b", "-o", ""],
    "surfaces snapshot": ["surfaces", "snapshot", ""],
    "surfaces snapshot --crd": ["surfaces", "snapshot", "x", "--crd", ""],
    "surfaces snapshot --help-from": ["surfaces", "snapshot", "x", "--help-from", ""],
    "surfaces snapshot --repo": ["surfaces", "snapshot", "x", "--repo", ""],
    "surfaces diff": ["surfaces", "diff", "x", ""],
    "surfaces history": ["surfaces", "history", "x", ""],
    "api snapshot": ["api", "snapshot", ""],
    "api snapshot -o": ["api", "snapshot", "x", "-o", ""],
    "api snapshot --repo": ["api", "snapshot", "x", "--repo", ""],
    "api check --baseline": ["api", "check", "--baseline", ""],
    "api check SOURCE": ["api", "check", "--baseline", "b.json", ""],
    "api diff": ["api", "diff", "", "x"],
    "api diff --tiers": ["api", "diff", "a", "b", "--tiers", ""],
    "api diff --waivers": ["api", "diff", "a", "b", "--waivers", ""],
    "api diff --find-links": ["api", "diff", "a", "b", "--find-links", ""],
}  # fmt: skip


@pytest.mark.parametrize("name", EMPTY)
def test_an_empty_path_is_a_usage_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(EMPTY[name])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert err.endswith(": an empty string is not a path (see --help)\n"), err
    assert list(tmp_path.iterdir()) == []  # 'contracts export ""' wrote into the cwd


def test_an_empty_with_path_is_a_usage_error(tmp_path: Path, capsys: Capsys) -> None:
    kvs = tmp_path / "kvs.json"
    kvs.write_text("[]", encoding="utf-8")
    code = main(["validate", "discovery.entry", str(kvs), "--with", "discovery.entry", ""])
    assert (code, capsys.readouterr().err) == (
        2,
        "dynconform: error: --with CONTRACT PATH: an empty string is not a path\n",
    )


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


def _main_catching(argv: list[str]) -> int:
    """``main(argv)``, failing the test (not stopping pytest) if Ctrl-C escapes it."""
    try:
        return main(argv)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped main()")


def test_interrupt_while_the_parser_is_built(
    monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    # building the parser imports the command's modules: the first fraction of a second
    monkeypatch.setattr(dynconform.cli, "build_parser", _interrupt)
    assert _main_catching(["contracts", "list"]) == 130
    assert capsys.readouterr().err == "dynconform: interrupted\n"


def test_interrupt_while_a_command_runs(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    from dynconform.cli import contracts_cmd

    monkeypatch.setattr(contracts_cmd, "cmd_list", _interrupt)
    assert _main_catching(["contracts", "list"]) == 130
    assert capsys.readouterr().err == "dynconform: interrupted\n"
