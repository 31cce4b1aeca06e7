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
