"""Waivers: justified, expiring exceptions to the policy.

A waivers file is YAML, a list of entries (or a mapping with a ``waivers`` list)::

    waivers:
      - path: dynamo.llm.AicPerfConfig      # object path or dotted glob
        kind: reexport-removed              # a kind, a list of kinds, or omitted for any
        reason: renamed to AisPerfConfig, announced in the 1.6 release notes
        expires: 2026-09-30                 # after this date the waiver fails the check
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from dynconform.contracts import InputError, decode_text
from dynconform.stability._findings import Finding
from dynconform.stability._kinds import KINDS
from dynconform.stability._tiers import glob_regex


@dataclass(frozen=True)
class Waiver:
    """One entry of a waivers file."""

    path: str
    reason: str
    kinds: frozenset[str] | None = None
    expires: dt.date | None = None
    origin: str = ""

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return glob_regex(self.path)

    def matches(self, finding: Finding) -> bool:
        if self.kinds is not None and finding.kind not in self.kinds:
            return False
        return any(self.regex.match(path) for path in finding.paths)

    def expired(self, today: dt.date) -> bool:
        return self.expires is not None and self.expires < today

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "reason": self.reason}
        if self.kinds is not None:
            out["kind"] = sorted(self.kinds)
        if self.expires is not None:
            out["expires"] = self.expires.isoformat()
        return out


def _date(value: Any, where: str) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{where}: 'expires' must be a date (YYYY-MM-DD)") from None


def parse_waivers(data: Any, origin: str) -> list[Waiver]:
    """Waivers from a waivers file's parsed YAML."""
    if data is None:
        return []
    if isinstance(data, dict):
        data = data.get("waivers") or []
    if not isinstance(data, list):
        raise InputError(f"{origin}: a waivers file is a list of entries")
    out: list[Waiver] = []
    for i, entry in enumerate(data, 1):
        where = f"{origin}: waiver #{i}"
        if not isinstance(entry, dict):
            raise InputError(f"{where}: an entry is a mapping")
        unknown = set(entry) - {"path", "kind", "reason", "expires"}
        if unknown:
            raise InputError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        path, reason = entry.get("path"), entry.get("reason")
        if not isinstance(path, str) or not path.strip():
            raise InputError(f"{where}: 'path' is required")
        if not isinstance(reason, str) or not reason.strip():
            raise InputError(f"{where}: 'reason' is required (say why the change is accepted)")
        raw = entry.get("kind")
        kinds: frozenset[str] | None = None
        if raw is not None:
            names = [raw] if isinstance(raw, str) else raw
            if not isinstance(names, list) or not all(isinstance(k, str) for k in names):
                raise InputError(f"{where}: 'kind' is a kind or a list of kinds")
            bad = [k for k in names if k not in KINDS]
            if bad:
                raise InputError(f"{where}: unknown kind {bad[0]!r} (see 'dynconform api kinds')")
            kinds = frozenset(names)
        glob_regex(path)
        out.append(
            Waiver(path.strip(), reason.strip(), kinds, _date(entry.get("expires"), where), where)
        )
    return out


def load_waivers(path: Path) -> list[Waiver]:
    text = decode_text(path.read_bytes(), str(path))
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_waivers(data, str(path))
