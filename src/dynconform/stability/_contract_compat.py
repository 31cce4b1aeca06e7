"""Compatibility of contract sets: schema files, directories of schemas, or the bundled ones.

Contracts are matched by ``x-dynconform.name``, else by ``$id`` without its ``.vN.json``
version suffix, else by file name. Every incompatibility becomes a ``contract-incompatible``
finding judged by the stability policy (tiers, waivers, verdict, output formats); a contract
whose ``x-dynconform.version`` major (or ``$id`` version) changed may break compatibility.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from dynconform.contracts import Catalog, InputError, decode_text
from dynconform.stability._findings import Finding, Status
from dynconform.stability._model import Snapshot, Tier
from dynconform.stability._policy import ApiReport, apply_policy
from dynconform.stability._schema_compat import MODES, incompatibilities, pairs_for_mode
from dynconform.stability._tiers import DEFAULT_PERIODS
from dynconform.stability._waivers import Waiver

BUILTIN = "builtin"
_ID_VERSION = re.compile(r"\.v(\d+)\.json$")


@dataclass(frozen=True, slots=True)
class SchemaSet:
    """The contracts of one side, by key."""

    label: str
    schemas: dict[str, Mapping[str, Any]]
    files: dict[str, str]

    @property
    def all(self) -> list[Mapping[str, Any]]:
        return list(self.schemas.values())


def _meta(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    meta = schema.get("x-dynconform")
    return meta if isinstance(meta, Mapping) else {}


def contract_key(schema: Mapping[str, Any], fallback: str) -> str:
    name = _meta(schema).get("name")
    if isinstance(name, str):
        return name
    sid = schema.get("$id")
    if isinstance(sid, str):
        return _ID_VERSION.sub("", sid)
    return fallback


def major_version(schema: Mapping[str, Any]) -> tuple[str, str]:
    """The declared major version and the ``$id`` version (empty when absent)."""
    version = str(_meta(schema).get("version", ""))
    sid = schema.get("$id")
    match = _ID_VERSION.search(sid) if isinstance(sid, str) else None
    return version.split(".", 1)[0], match.group(1) if match else ""


def _read(path: Path) -> Any:
    try:
        return json.loads(decode_text(path.read_bytes(), str(path)))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a JSON schema ({exc})") from None


def load_schema_set(spec: str) -> SchemaSet:
    """A schema file, a directory of schema files (recursively), or ``builtin``."""
    if spec == BUILTIN:
        catalog = Catalog.load()
        bundled = {c.name: c.schema for c in catalog}
        return SchemaSet(BUILTIN, bundled, {c.name: c.name for c in catalog})
    path = Path(spec)
    if path.is_file():
        data = _read(path)
        if not isinstance(data, Mapping | bool):
            raise InputError(f"{path}: a JSON schema is an object or a boolean")
        schema = data if isinstance(data, Mapping) else {}
        key = contract_key(schema, path.stem)
        return SchemaSet(spec, {key: schema}, {key: str(path)})
    if not path.is_dir():
        raise InputError(f"{spec}: no such schema file or directory (or 'builtin')")
    schemas: dict[str, Mapping[str, Any]] = {}
    files: dict[str, str] = {}
    for file in sorted(path.rglob("*.json")):
        data = _read(file)
        if not isinstance(data, Mapping) or not ("$id" in data or "x-dynconform" in data):
            continue
        key = contract_key(data, file.stem)
        if key in schemas:
            raise InputError(f"{file}: contract {key!r} also defined in {files[key]}")
        schemas[key] = data
        files[key] = str(file.relative_to(path))
    if not schemas:
        raise InputError(f"{spec}: no JSON schemas with an $id found")
    return SchemaSet(spec, schemas, files)


def _tier(schema: Mapping[str, Any]) -> Tier:
    tier = _meta(schema).get("tier")
    return Tier.parse(tier) if isinstance(tier, str) else Tier.STABLE


def _findings(sets: Sequence[SchemaSet], mode: str) -> list[Finding]:
    new = sets[-1]
    found: list[Finding] = []
    single = all(len(s.schemas) == 1 for s in sets)
    for w_i, r_i, direction in pairs_for_mode(mode, len(sets)):
        writer_set, reader_set = sets[w_i], sets[r_i]
        old_set = sets[min(w_i, r_i)]
        pairs: list[tuple[str, str]]
        if single:
            pairs = [(next(iter(writer_set.schemas)), next(iter(reader_set.schemas)))]
        else:
            pairs = [(k, k) for k in sorted(writer_set.schemas) if k in reader_set.schemas]
        for w_key, r_key in pairs:
            writer, reader = writer_set.schemas[w_key], reader_set.schemas[r_key]
            old_schema = old_set.schemas[w_key if old_set is writer_set else r_key]
            new_schema = new.schemas[r_key if new is reader_set else w_key]
            items = incompatibilities(
                writer, reader, writer_set=writer_set.all, reader_set=reader_set.all
            )
            for item in items:
                found.append(
                    Finding(
                        kind="contract-incompatible",
                        path=f"contract:{r_key}",
                        tier=_tier(new_schema),
                        message=f"{direction} ({item.rule}): {item.message}",
                        old=str(_meta(old_schema).get("version", "")) or None,
                        new=str(_meta(new_schema).get("version", "")) or None,
                        location=new.files.get(r_key) or new.files.get(w_key),
                        subject=item.pointer or "/",
                    )
                )
    if not single:
        previous = sets[-2]
        for key in sorted(set(previous.schemas) - set(new.schemas)):
            tier = _tier(previous.schemas[key])
            msg = "contract removed"
            found.append(Finding("contract-removed", f"contract:{key}", tier, msg))
        for key in sorted(set(new.schemas) - set(previous.schemas)):
            tier = _tier(new.schemas[key])
            found.append(Finding("contract-added", f"contract:{key}", tier, "contract added"))
    return found


def compare_contracts(
    specs: Sequence[str],
    mode: str = "backward",
    *,
    waivers: Sequence[Waiver] = (),
    today: dt.date | None = None,
    periods: Mapping[Tier, int | None] | None = None,
) -> ApiReport:
    """Check the newest of ``specs`` (oldest first) against the earlier ones under ``mode``.

    A contract breaks the policy unless its major version changed, a waiver covers it, or its
    tier (``x-dynconform.tier``, default stable) promises nothing.
    """
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r} (expected one of: {', '.join(MODES)})")
    if len(specs) < 2:
        raise InputError("compat needs at least two schema sets: OLD [OLD...] NEW")
    sets = [load_schema_set(s) for s in specs]
    old_snap = Snapshot("contracts", {}, source=sets[-2].label)
    new_snap = Snapshot("contracts", {}, source=sets[-1].label)
    judged = apply_policy(
        _findings(sets, mode),
        old_snap,
        new_snap,
        periods if periods is not None else DEFAULT_PERIODS,
        waivers,
        today=today,
        tiers_origin=f"contracts, mode {mode}",
    )
    bumped = _bumped(sets)
    findings = []
    for f in judged.findings:
        key = f.path.removeprefix("contract:")
        if f.kind == "contract-incompatible" and key in bumped:
            f = replace(f, status=Status.ALLOWED, reason=bumped[key])
        findings.append(f)
    judged.findings = sorted(findings, key=Finding.sort_key)
    return judged


def _bumped(sets: Sequence[SchemaSet]) -> dict[str, str]:
    new = sets[-1]
    out: dict[str, str] = {}
    for key, schema in new.schemas.items():
        majors = [major_version(s.schemas[key]) for s in sets[:-1] if key in s.schemas]
        now = major_version(schema)
        for before in majors:
            if before[0] and now[0] and before[0] != now[0]:
                out[key] = f"major version changed {before[0]} -> {now[0]}"
            elif before[1] and now[1] and before[1] != now[1]:
                out[key] = f"$id version changed v{before[1]} -> v{now[1]}"
    return out
