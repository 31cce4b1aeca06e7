"""Write and read reports (conformance, stability and tap) as JSON and YAML.

Every serialised form goes through the redaction pass first, so a secret that reached a
report (an env var value, a URL's password) is never written.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from dynconform.contracts import InputError, decode_text
from dynconform.reports._model import KIND, ConformanceReport
from dynconform.reports._redact import redact_data
from dynconform.reports._stability import STABILITY_KIND, StabilityReport
from dynconform.reports._tap import TAP_KIND, TapReport

__all__ = [
    "REPORT_KINDS",
    "Report",
    "load_report",
    "redacted",
    "report_from_dict",
    "report_json",
    "report_yaml",
    "write_report",
    "write_tap_report",
]

# libyaml when PyYAML has it: a long stability report reads and writes ten times faster
_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_DUMPER: type[yaml.SafeDumper] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

Report = ConformanceReport | StabilityReport | TapReport
REPORT_KINDS: dict[str, type[ConformanceReport] | type[StabilityReport] | type[TapReport]] = {
    KIND: ConformanceReport,
    STABILITY_KIND: StabilityReport,
    TAP_KIND: TapReport,
}


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _yaml(data: Any) -> str:
    text: str = yaml.dump(data, Dumper=_DUMPER, sort_keys=False, allow_unicode=True, width=100)
    return text


def report_json(report: Report) -> str:
    """The report as indented JSON (keys in a stable order), secrets redacted."""
    return _json(redact_data(report.to_dict()))


def report_yaml(report: Report) -> str:
    """The report as block-style YAML, secrets redacted."""
    return _yaml(redact_data(report.to_dict()))


def write_report(report: Report, directory: Path, stem: str = "report") -> list[Path]:
    """Write ``<stem>.json`` and ``<stem>.yaml`` into ``directory``; return their paths."""
    data = redact_data(report.to_dict())
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{stem}.json", directory / f"{stem}.yaml"]
    paths[0].write_text(_json(data), encoding="utf-8")
    paths[1].write_text(_yaml(data), encoding="utf-8")
    return paths


def write_tap_report(report: TapReport, path: Path) -> Path:
    """Write the report to ``path`` (YAML for ``.yaml``/``.yml``, JSON otherwise), secrets
    redacted; :func:`load_report` reads it back."""
    data = redact_data(report.to_dict())
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_yaml(data) if path.suffix in (".yaml", ".yml") else _json(data), "utf-8")
    return path


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """The report a serialised mapping holds, chosen by its ``kind``."""
    kind = data.get("kind")
    cls = REPORT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        known = ", ".join(sorted(REPORT_KINDS))
        raise InputError(f"not a dynconform report: kind {kind!r} (expected one of: {known})")
    return cls.from_dict(data)


def load_report(path: Path) -> Report:
    """Read a report (any kind) written as JSON or YAML."""
    try:
        text = decode_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.load(text, Loader=_LOADER)
    except (ValueError, yaml.YAMLError) as exc:
        detail = " ".join(str(exc).split())
        raise InputError(f"{path}: cannot parse report ({detail})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: a report is a mapping")
    try:
        return report_from_dict(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def redacted(report: Report, env: Mapping[str, str] | None = None) -> Report:
    """A copy of ``report`` with every secret redacted (what every writer renders)."""
    return report_from_dict(redact_data(report.to_dict(), env))
