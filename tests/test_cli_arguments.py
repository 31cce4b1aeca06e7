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


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _walk(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every parser of the tree by its prog, ``parser`` included."""
    found = {parser.prog: parser}
    for child in _subparsers(parser).values():
        found.update(_walk(child))
    return found


GROUPS = ["checks", "contracts", "graph", "mocker", "api", "surfaces", "report"]


@pytest.mark.parametrize("group", ["", *GROUPS])
def test_a_bare_group_prints_its_help_on_stdout_and_exits_2(group: str, capsys: Capsys) -> None:
    assert main([group] if group else []) == 2
    out, err = capsys.readouterr()
    assert err == ""
    assert out.startswith(f"usage: dynconform {group}".rstrip())
    parser = _walk(dynconform.cli.build_parser())[f"dynconform {group}".rstrip()]
    names = _subparsers(parser)
    assert names
    assert all(f"\n    {name}" in out for name in names)


WITH_EXAMPLES = [
    "",
    "checks",
    "checks list",
    "checks show",
    "contracts",
    "contracts list",
    "contracts show",
    "contracts rules",
    "contracts export",
    "contracts verify",
    "mocker",
    "mocker build-model",
    "mocker violations",
    "api",
    "api snapshot",
    "api check",
    "api history",
    "api kinds",
    "surfaces",
    "report",
]


def test_every_parser_teaches_with_examples() -> None:
    parsers = _walk(dynconform.cli.build_parser())
    for name in WITH_EXAMPLES:
        parser = parsers[f"dynconform {name}".rstrip()]
        assert "examples:" in (parser.epilog or ""), parser.prog
        assert parser.formatter_class is argparse.RawDescriptionHelpFormatter, parser.prog
        assert 2 <= len(parser.epilog.splitlines()) <= 6, parser.prog
        assert all(
            line.startswith(("examples:", "  dynconform ", "      "))
            for line in parser.epilog.splitlines()
        ), parser.prog


@pytest.mark.parametrize(
    ("command", "option"),
    [
        ("run", "--timeout"),
        ("checks list", "--profile"),
        ("mocker serve", "--discovery"),
        ("mocker serve", "--event-plane"),
        ("mocker serve", "--block-size"),
        ("mocker serve", "--num-gpu-blocks"),
        ("mocker build-model", "--vocab-size"),
        ("mocker build-model", "--context-length"),
    ],
)
def test_options_have_help(command: str, option: str) -> None:
    parser = _walk(dynconform.cli.build_parser())[f"dynconform {command}"]
    action = next(a for a in parser._actions if option in a.option_strings)
    assert action.help is not None
    assert len(action.help) > 10


def test_compat_usage_names_old_and_new(capsys: Capsys) -> None:
    parser = _walk(dynconform.cli.build_parser())["dynconform contracts compat"]
    assert parser.format_usage().rstrip().endswith("OLD [OLD ...] NEW")
    with pytest.raises(SystemExit) as info:
        main(["contracts", "compat", "only-one"])
    assert info.value.code == 2
    assert "required: NEW" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["bogus", "cli:bogus"])
def test_surfaces_deprecation_hint_names_the_kind(value: str, capsys: Capsys) -> None:
    assert main(["surfaces", "diff", "a", "b", "--deprecation", value]) == 2
    assert f"expects [KIND:]TIER=N, got {value!r}" in capsys.readouterr().err
