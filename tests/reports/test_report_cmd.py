"""``dynconform report render`` and ``dynconform report stability`` through the CLI."""

from __future__ import annotations

import json
import random
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from reports_helpers import Index

from dynconform.cli import main
from dynconform.reports import (
    API_VERSION,
    KIND,
    RENDER_FORMATS,
    STABILITY_KIND,
    TAP_KIND,
    ConformanceReport,
    StabilityReport,
    TapReport,
    load_report,
)

Capsys = pytest.CaptureFixture[str]


def _run(capsys: Capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("fmt", RENDER_FORMATS)
def test_render_every_format(fmt: str, run_dir: Path, capsys: Capsys) -> None:
    code, out, err = _run(capsys, "report", "render", str(run_dir / "report.yaml"), "--format", fmt)
    assert code == 0, err
    assert err == ""
    if fmt == "json":
        assert json.loads(out)["kind"] == "ConformanceReport"
    elif fmt == "yaml":
        assert yaml.safe_load(out)["result"] == "failed"
    elif fmt == "junit":
        assert ET.fromstring(out).get("failures") == "1"
    elif fmt == "github":
        assert out.startswith("::error title=dynconform http.usage.totals (failed)::")
    elif fmt == "html":
        assert out.lstrip().lower().startswith("<!doctype html>")
    elif fmt == "markdown":
        assert out.startswith("## dynconform conformance: FAILED\n")
    else:
        assert not re.search(r"\x1b\[", out)  # captured output is no terminal
        assert "http.usage.totals" in out


def test_render_to_a_file_and_strict(run_dir: Path, tmp_path: Path, capsys: Capsys) -> None:
    target = tmp_path / "out" / "summary.md"
    code, out, err = _run(
        capsys, "report", "render", str(run_dir / "report.json"), "--format", "markdown",
        "-o", str(target),
    )  # fmt: skip
    assert (code, out) == (0, "")
    assert f"wrote {target}" in err
    assert target.read_text(encoding="utf-8").startswith("## dynconform conformance: FAILED")
    code, _, _ = _run(capsys, "report", "render", str(run_dir / "report.json"), "--strict")
    assert code == 1


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: Capsys) -> None:
    cases = {
        "missing.json": None,
        "list.json": "[1, 2]",
        "kind.json": json.dumps({"apiVersion": "dynconform.dev/v1alpha1", "kind": "Nope"}),
        "broken.yaml": "a: [\n",
        "old.json": json.dumps({"apiVersion": "v0", "kind": "ConformanceReport"}),
    }
    for name, text in cases.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        code, out, err = _run(capsys, "report", "render", str(path))
        assert code == 2, name
        assert out == ""
        assert err.startswith("dynconform: error: ")
        assert err.count("\n") == 1, err
    with pytest.raises(SystemExit) as exc:
        main(["report", "render", str(tmp_path / "kind.json"), "--format", "pdf"])
    assert exc.value.code == 2
    assert "invalid choice: 'pdf'" in capsys.readouterr().err


def test_stability_command(
    pkgx_index: Index, tmp_path: Path, capsys: Capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = ("--no-index", "--find-links", str(pkgx_index.links))
    md = tmp_path / "stability.md"
    with pkgx_index.hermetic():
        code, _, err = _run(
            capsys, "report", "stability", "pkgx", "--from", "1.0", "--to", "2.0", *index,
            "--format", "json", "-o", str(tmp_path / "s.json"),
        )  # fmt: skip
        # pkgx.gone, pkgx.waived and the default of pkgx.keep(b) break stable undeprecated
        assert code == 1, err
        assert "2 release steps, 3 policy violations" in err
        report = load_report(tmp_path / "s.json")
        assert isinstance(report, StabilityReport)
        waivers = tmp_path / "waivers.yaml"
        waivers.write_text(
            "waivers:\n- path: pkgx.waived\n  reason: see the changelog\n"
            "- path: pkgx.gone\n  reason: nobody used it\n"
            "- path: pkgx.keep\n  reason: the old default was a bug\n",
            encoding="utf-8",
        )
        code, _, err = _run(
            capsys, "report", "stability", "pkgx", "--from", "1.0", "--to", "2.0", *index,
            "--waivers", str(waivers), "--format", "markdown", "-o", str(md),
        )  # fmt: skip
        assert code == 0, err
        text = md.read_text(encoding="utf-8")
        assert text.splitlines()[0] == "## API stability of pkgx 1.0 -> 2.0: PASS"
        assert "nobody used it" in text
        code, out, err = _run(
            capsys, "report", "stability", "pkgx", "--from", "1.0", "--to", "3.0", *index
        )
        assert code == 2
        assert out == ""
        assert err == "dynconform: error: pkgx has no release 3.0 on the package index\n"
        # on a terminal, the long steps are told as they start
        monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
        code, _, err = _run(
            capsys, "report", "stability", "pkgx", "--from", "1.0", "--to", "2.0", *index,
            "--waivers", str(waivers), "--no-cache", "--format", "markdown", "-o", str(md),
        )  # fmt: skip
        assert code == 0, err
        *told, wrote = err.splitlines()
        assert wrote.startswith(f"wrote {md} ")
        assert told == [
            "dynconform: listing the releases of pkgx",
            "dynconform: [1/3] fetching pypi:pkgx==1.0",
            "dynconform: [2/3] fetching pypi:pkgx==1.1",
            "dynconform: [3/3] fetching pypi:pkgx==2.0",
            "dynconform: building 3 API snapshot(s)",
        ]


def test_report_is_listed_in_the_help(capsys: Capsys) -> None:
    with pytest.raises(SystemExit):
        main(["report", "stability", "--help"])
    out = capsys.readouterr().out
    assert "dynconform report stability ai-dynamo --from 1.0.0 --to 1.6.1" in out
    assert main(["report", "render", str(Path("no-such-file.json"))]) == 2


def test_conformance_report_kind_is_kept(run_dir: Path) -> None:
    assert isinstance(load_report(run_dir / "report.yaml"), ConformanceReport)


def test_a_file_that_is_not_text_is_one_line(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b"\x89" + random.Random(0).randbytes(500))
    code, out, err = _run(capsys, "report", "render", str(path))
    assert (code, out, err) == (2, "", f"dynconform: error: {path}: not UTF-8 text (byte 0)\n")


TAP = TapReport(
    source={"replay": "capture.bin"},
    date="2025-01-01",
    dynconform_version="0.1.0",
    seconds=2.0,
    stopped="end",
    events=10,
    violations_by_rule={"kv.sequence-monotonic": 1},
)


def test_a_whole_tap_report_renders(tmp_path: Path, capsys: Capsys) -> None:
    path = tmp_path / "tap.json"
    path.write_text(json.dumps(TAP.to_dict()), encoding="utf-8")
    code, out, err = _run(capsys, "report", "render", str(path), "--format", "markdown")
    assert (code, err) == (0, "")
    assert "FAILED" in out
    assert _run(capsys, "report", "render", str(path), "--strict")[0] == 1


@pytest.mark.parametrize(
    "field",
    [
        "source",
        "duration",
        "duration.seconds",
        "duration.stopped",
        "counts",
        "counts.events",
        "violations",
        "violations.byRule",
    ],
)
def test_a_tap_report_without_a_required_field_is_malformed(
    field: str, tmp_path: Path, capsys: Capsys
) -> None:
    data = TAP.to_dict()
    *parents, last = field.split(".")
    target = data
    for key in parents:
        target = target[key]
    del target[last]
    path = tmp_path / "tap.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    code, out, err = _run(capsys, "report", "render", str(path), "--strict")
    assert (code, out) == (2, "")
    assert err == f"dynconform: error: {path}: malformed TapReport: missing field {field!r}\n"


IMPLEMENTATION = {"name": "x", "version": "1", "backend": "reference", "topology": "file"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        # the bare header: it used to render "0 violations -> PASSED"
        ({}, "malformed TapReport: missing field 'source'"),
        ({"source": {}, "duration": 5}, "malformed TapReport: field 'duration' is not a mapping"),
        (
            {**TAP.to_dict(), "violations": {"byRule": {}, "items": [{"contract": "c"}]}},
            "malformed TapReport: missing field 'rule'",
        ),
        ({"kind": KIND}, "malformed ConformanceReport: missing field 'implementation'"),
        (
            {"kind": KIND, "implementation": {"name": "x"}},
            "malformed ConformanceReport: missing field 'implementation.version'",
        ),
        (
            {"kind": KIND, "implementation": IMPLEMENTATION, "checks": [{"status": "passed"}]},
            "malformed ConformanceReport: missing field 'id'",
        ),
        ({"kind": STABILITY_KIND}, "malformed StabilityReport: missing field 'package'"),
        (
            {"kind": STABILITY_KIND, "package": "p", "fromVersion": "1", "toVersion": "2",
             "steps": [{"fromVersion": "1"}]},
            "malformed StabilityReport: missing field 'toVersion'",
        ),
    ],
)  # fmt: skip
def test_malformed_reports_name_the_field(
    data: dict[str, object], reason: str, tmp_path: Path, capsys: Capsys
) -> None:
    path = tmp_path / "report.json"
    path.write_text(json.dumps({"kind": TAP_KIND, **data, "apiVersion": API_VERSION}))
    code, out, err = _run(capsys, "report", "render", str(path), "--strict")
    assert (code, out, err) == (2, "", f"dynconform: error: {path}: {reason}\n")


def test_render_of_a_directory_says_so(tmp_path: Path, capsys: Capsys) -> None:
    code, out, err = _run(capsys, "report", "render", str(tmp_path))
    assert (code, out) == (2, "")
    assert err == f"dynconform: error: {tmp_path}: is a directory, not a report file\n"
