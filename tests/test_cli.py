"""The command line: help, exit codes and one-line errors without tracebacks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dynconform.cli import main
from dynconform.cli.contracts_cmd import rules_markdown

ROOT = Path(__file__).resolve().parents[1]


def _run(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dynconform", *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_help_teaches_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "validate" in out
    assert "contracts" in out


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: dynconform" in capsys.readouterr().out


def test_unknown_flag_is_one_line_exit_2() -> None:
    result = _run("validate", "--bogus")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "unrecognized arguments" in result.stderr or "required" in result.stderr


def test_unknown_contract_is_one_line_exit_2() -> None:
    result = _run("validate", "no.such-contract", "x.json")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dynconform: error: unknown contract 'no.such-contract'; see 'dynconform contracts list'"
    ]
    assert "Traceback" not in result.stderr


def test_contracts_show_unknown_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["contracts", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown contract 'nope'" in err


def test_docs_rules_md_is_up_to_date() -> None:
    assert (ROOT / "docs" / "rules.md").read_text(encoding="utf-8") == rules_markdown(), (
        "regenerate with: dynconform contracts rules --format markdown > docs/rules.md"
    )


CAPTURES = ROOT / "tests" / "fixtures" / "ai-dynamo-1.6.1"


def test_validate_real_capture_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    path = CAPTURES / "etcd_nats" / "etcd_kvs.json"
    assert main(["validate", "discovery.entry", str(path)]) == 0
    out = capsys.readouterr().out
    assert "discovery.entry, 8 instance(s): valid" in out


def test_validate_invalid_exits_1_with_rule_and_pointer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    entries = json.loads((CAPTURES / "etcd_nats" / "etcd_kvs.json").read_text())
    entries[5]["value"]["instance_id"] = 2**64
    bad = tmp_path / "kvs.json"
    bad.write_text(json.dumps(entries))
    assert main(["validate", "discovery.entry", str(bad), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["valid"] is False
    assert "schema.maximum" in report["violations_by_rule"]
    assert any(v["pointer"] == "/value/instance_id" for v in report["violations"])
    assert {v["index"] for v in report["violations"]} == {5}


def test_validate_reads_stdin() -> None:
    body = (CAPTURES / "etcd_nats" / "etcd_kvs.json").read_bytes()
    result = _run("validate", "discovery.entry", "-", "--each", stdin=body)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def test_validate_with_correlates_two_files() -> None:
    result = _run(
        "validate",
        "events.message",
        str(CAPTURES / "etcd_nats" / "nats_messages.jsonl"),
        "--with",
        "discovery.entry",
        str(CAPTURES / "etcd_nats" / "etcd_kvs.json"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "request-plane.preprocessed-request 120" in result.stdout


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such file"),
        (b"{broken", "invalid JSON"),
        (b'{"a": "\xff\xfe"}', "not UTF-8"),
    ],
)
def test_malformed_input_through_the_cli_is_one_line_exit_2(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "input.json"
    if content is not None:
        path.write_bytes(content)
    result = _run("validate", "discovery.entry", str(path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert lines[0].startswith("dynconform: error: ")


def test_export_to_an_unwritable_place_is_one_line_exit_2(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _run("contracts", "export", str(blocker / "sub"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_lazy_command_table_matches_the_commands() -> None:
    """main() builds only the command it runs; the table it lists the others from must agree
    with what each command module registers."""
    import argparse

    from dynconform.cli import build_parser
    from dynconform.cli._common import COMMANDS

    full = build_parser()
    sub = next(a for a in full._actions if isinstance(a, argparse._SubParsersAction))
    registered = {c.dest: c.help for c in sub._choices_actions}
    assert registered == {name: summary for name, (_, _, summary) in COMMANDS.items()}
    lazy = build_parser("graph")
    lazy_sub = next(a for a in lazy._actions if isinstance(a, argparse._SubParsersAction))
    assert list(lazy_sub.choices) == list(registered)
    assert lazy_sub.choices["graph"].format_help() == sub.choices["graph"].format_help()


@pytest.mark.parametrize(
    ("command", "packages"),
    [("validate", ["cli", "contracts"]), ("graph", ["cli", "contracts", "graph"])],
)
def test_a_command_imports_only_the_packages_it_needs(command: str, packages: list[str]) -> None:
    code = (
        "import sys; from dynconform.cli import build_parser; "
        f"build_parser({command!r}); "
        "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('dynconform.')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert proc.stdout.strip() == str(packages)
