"""Write and read conformance reports as JSON and YAML."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from dynconform.contracts import InputError
from dynconform.reports._model import ConformanceReport

__all__ = ["load_report", "report_json", "report_yaml", "write_report"]


def report_json(report: ConformanceReport) -> str:
    """The report as indented JSON (keys in a stable order)."""
    return json.dumps(report.to_dict(), indent=2) + "\n"


def report_yaml(report: ConformanceReport) -> str:
    """The report as block-style YAML."""
    text: str = yaml.safe_dump(report.to_dict(), sort_keys=False, allow_unicode=True, width=100)
    return text


def write_report(report: ConformanceReport, directory: Path, stem: str = "report") -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.yaml`` into ``directory``; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.json", directory / f"{stem}.yaml"]
    paths[0].write_text(report_json(report), encoding="utf-8")
    paths[1].write_text(report_yaml(report), encoding="utf-8")
    return paths


def load_report(path: Path) -> ConformanceReport:
    """Read a report written as JSON or YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot parse report ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a report is a mapping")
    return ConformanceReport.from_dict(data)
