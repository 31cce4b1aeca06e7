"""Kubernetes CustomResourceDefinitions as a surface: kinds, served versions, field schemas.

Each ``apiextensions.k8s.io/v1`` ``CustomResourceDefinition`` found in YAML files (every file
under a ``crds/`` directory, every ``*crd*.yaml``, or the files given) becomes a ``Crd``:
per served version, the storage flag, ``deprecated`` / ``deprecationWarning``, and every
field path of its ``openAPIV3Schema`` with type, required flag, enum values and a
deprecation marker (a description that says "deprecated"). Paths are dotted; list items
add ``[]`` (``spec.envs[].name``), map values ``*`` (``spec.services.*.replicas``).

Tiers come from the version name, as in Kubernetes: ``v1alphaN`` experimental,
``v1betaN`` beta, ``vN`` stable. Breaking: a served version or a field removed, a type
changed, a new required field in an existing object (or a field made required), an enum
value removed (or values newly restricted). Compatible: additions, enum values added.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from dynconform.contracts import InputError, decode_text
from dynconform.stability._findings import Finding, parent_path, value_changes
from dynconform.stability._markers import says_deprecated
from dynconform.stability._model import Tier

_CRD_API = "apiextensions.k8s.io/v1"
_VERSION = re.compile(r"^v\d+(?:(alpha|beta)\d*)?$")
_TEMPLATE_LINE = re.compile(r"^\s*\{\{-?.*-?\}\}\s*$")
_TEMPLATE = re.compile(r"\{\{-?.*?-?\}\}")
_SKIP_DIRS = frozenset({".git", "node_modules", "vendor", "testdata"})


def version_tier(version: str) -> Tier:
    """``v1alpha1`` experimental, ``v2beta3`` beta, ``v1`` stable (others: experimental)."""
    m = _VERSION.match(version)
    if m is None:
        return Tier.EXPERIMENTAL
    return {"alpha": Tier.EXPERIMENTAL, "beta": Tier.BETA}.get(m.group(1) or "", Tier.STABLE)


@dataclass(slots=True)
class CrdField:
    """One field of a version's schema."""

    type: str | None = None
    required: bool = False
    enum: tuple[str, ...] | None = None
    deprecated: bool = False

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.type is not None:
            out["type"] = self.type
        if self.required:
            out["required"] = True
        if self.enum is not None:
            out["enum"] = list(self.enum)
        if self.deprecated:
            out["deprecated"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CrdField:
        enum = data.get("enum")
        return cls(
            type=data.get("type"),
            required=bool(data.get("required", False)),
            enum=tuple(str(v) for v in enum) if enum is not None else None,
            deprecated=bool(data.get("deprecated", False)),
        )


@dataclass(slots=True)
class CrdVersion:
    """One version of a CRD."""

    name: str
    served: bool = True
    storage: bool = False
    deprecated: bool = False
    deprecation_warning: str | None = None
    fields: dict[str, CrdField] = field(default_factory=dict)

    @property
    def tier(self) -> Tier:
        return version_tier(self.name)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier.value, "served": self.served}
        if self.storage:
            out["storage"] = True
        if self.deprecated:
            out["deprecated"] = True
        if self.deprecation_warning:
            out["deprecationWarning"] = self.deprecation_warning
        out["fields"] = {p: self.fields[p].to_dict() for p in sorted(self.fields)}
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> CrdVersion:
        return cls(
            name=name,
            served=bool(data.get("served", True)),
            storage=bool(data.get("storage", False)),
            deprecated=bool(data.get("deprecated", False)),
            deprecation_warning=data.get("deprecationWarning"),
            fields={str(p): CrdField.from_dict(f) for p, f in data.get("fields", {}).items()},
        )


@dataclass(slots=True)
class Crd:
    """One CustomResourceDefinition."""

    kind: str
    group: str = ""
    plural: str = ""
    scope: str = ""
    versions: dict[str, CrdVersion] = field(default_factory=dict)
    location: str = ""

    @property
    def storage_version(self) -> str | None:
        return next((v.name for v in self.versions.values() if v.storage), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "plural": self.plural,
            "scope": self.scope,
            "location": self.location,
            "storageVersion": self.storage_version,
            "versions": {n: self.versions[n].to_dict() for n in sorted(self.versions)},
        }

    @classmethod
    def from_dict(cls, kind: str, data: Mapping[str, Any]) -> Crd:
        return cls(
            kind=kind,
            group=str(data.get("group", "")),
            plural=str(data.get("plural", "")),
            scope=str(data.get("scope", "")),
            versions={
                str(n): CrdVersion.from_dict(str(n), v) for n, v in data.get("versions", {}).items()
            },
            location=str(data.get("location", "")),
        )


# -- reading --------------------------------------------------------------------------------------


def _schema_type(schema: Mapping[str, Any]) -> str | None:
    if schema.get("x-kubernetes-int-or-string"):
        return "int-or-string"
    kind = schema.get("type")
    if isinstance(kind, str):
        return kind
    for key in ("anyOf", "oneOf"):
        options = schema.get(key)
        if isinstance(options, list):
            types = sorted({str(o["type"]) for o in options if isinstance(o, dict) and "type" in o})
            if types:
                return "|".join(types)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return "any"
    return None


def _walk(schema: Any, path: str, required: bool, out: dict[str, CrdField]) -> None:
    if not isinstance(schema, dict):
        return
    if path:
        enum = schema.get("enum")
        out[path] = CrdField(
            type=_schema_type(schema),
            required=required,
            enum=tuple(str(v) for v in enum) if isinstance(enum, list) else None,
            deprecated=says_deprecated(str(schema.get("description", ""))),
        )
    needed = set(schema.get("required") or ())
    properties = schema.get("properties")
    if isinstance(properties, dict):
        for name, sub in properties.items():
            _walk(sub, f"{path}.{name}" if path else str(name), name in needed, out)
    items = schema.get("items")
    if isinstance(items, dict) and path:
        _walk(items, f"{path}[]", False, out)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict) and path:
        _walk(extra, f"{path}.*", False, out)


def crd_from_document(doc: Mapping[str, Any], location: str = "") -> Crd | None:
    """The Crd of one parsed YAML document (None if it is not an apiextensions/v1 CRD)."""
    if doc.get("kind") != "CustomResourceDefinition" or doc.get("apiVersion") != _CRD_API:
        return None
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return None
    names = spec.get("names") or {}
    kind = str(names.get("kind", "")) if isinstance(names, dict) else ""
    if not kind:
        return None
    crd = Crd(
        kind=kind,
        group=str(spec.get("group", "")),
        plural=str(names.get("plural", "")),
        scope=str(spec.get("scope", "")),
        location=location,
    )
    for entry in spec.get("versions") or ():
        if not isinstance(entry, dict) or not entry.get("name"):
            continue
        version = CrdVersion(
            name=str(entry["name"]),
            served=bool(entry.get("served", True)),
            storage=bool(entry.get("storage", False)),
            deprecated=bool(entry.get("deprecated", False)),
            deprecation_warning=entry.get("deprecationWarning"),
        )
        schema = (entry.get("schema") or {}).get("openAPIV3Schema")
        _walk(schema, "", False, version.fields)
        crd.versions[version.name] = version
    return crd


def _documents(text: str, origin: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError:
        pass
    # A Helm template: drop directive lines and inline expressions, then try again.
    lines = [ln for ln in text.splitlines() if not _TEMPLATE_LINE.match(ln)]
    cleaned = _TEMPLATE.sub("templated", "\n".join(lines))
    try:
        return list(yaml.safe_load_all(cleaned))
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({str(exc).splitlines()[0]})") from None


def read_crds(path: Path, base: Path | None = None) -> list[Crd]:
    """The CRDs of one YAML file (others in it are ignored)."""
    try:
        text = decode_text(path.read_bytes(), str(path))
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if "CustomResourceDefinition" not in text:
        return []
    where = str(path.relative_to(base)) if base and path.is_relative_to(base) else str(path)
    out = []
    for doc in _documents(text, where):
        if isinstance(doc, dict):
            crd = crd_from_document(doc, where)
            if crd is not None:
                out.append(crd)
    return out


def crd_files(root: Path, everything: bool = False) -> list[Path]:
    """YAML files that may hold CRDs: those under a ``crds`` (or ``crd``) directory and
    ``*crd*.yaml`` files; with ``everything``, every YAML file under ``root``."""
    if root.is_file():
        return [root]
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if any(p in _SKIP_DIRS or p.startswith(".") for p in rel[:-1]):
            continue
        if path.suffix not in (".yaml", ".yml") or not path.is_file():
            continue
        dirs = set(rel[:-1])
        if everything or {"crds", "crd"} & dirs or "crd" in path.name.lower():
            out.append(path)
    return out


def collect_crds(roots: Iterable[Path], everything: bool = False) -> dict[str, Crd]:
    """Every CRD under the roots, keyed by kind (``group/kind`` when a kind repeats); see
    ``crd_files`` for which files are read."""
    out: dict[str, Crd] = {}
    for root in roots:
        base = root if root.is_dir() else root.parent
        for path in crd_files(root, everything):
            for crd in read_crds(path, base):
                first = out.get(crd.kind)
                if first is not None and first.group == crd.group:
                    continue  # the same CRD in two places (e.g. a chart and the operator)
                out.setdefault(crd.kind if first is None else f"{crd.group}/{crd.kind}", crd)
    return out


# -- diff -------------------------------------------------------------------------------------


def _topmost(paths: Iterable[str], present: Mapping[str, CrdField]) -> Iterator[str]:
    """Paths whose parent exists on the other side (children of a removed field are not
    listed again)."""
    for path in sorted(paths):
        parent = parent_path(path)
        if not parent or parent in present:
            yield path


def _field_findings(prefix: str, tier: Tier, old: CrdVersion, new: CrdVersion) -> list[Finding]:
    out: list[Finding] = []
    for path in _topmost(set(old.fields) - set(new.fields), new.fields):
        out.append(Finding("surface-removed", f"{prefix}.{path}", tier, "field removed"))
    for path in _topmost(set(new.fields) - set(old.fields), old.fields):
        f = new.fields[path]
        note = " (required)" if f.required else ""
        out.append(Finding("surface-added", f"{prefix}.{path}", tier, f"field added{note}"))
        if f.required and parent_path(path) in old.fields:
            msg = "new required field in an existing object"
            out.append(Finding("crd-required-added", f"{prefix}.{path}", tier, msg))
    for path in sorted(set(old.fields) & set(new.fields)):
        a, b = old.fields[path], new.fields[path]
        where = f"{prefix}.{path}"
        if a.type is not None and b.type is not None and a.type != b.type:
            out.append(Finding("crd-type-changed", where, tier, "type changed", a.type, b.type))
        if b.required and not a.required:
            out.append(Finding("crd-required-added", where, tier, "field became required"))
        narrowed, widened = value_changes(a.enum, b.enum, "enum values", "values")
        out.extend(Finding("crd-enum-removed", where, tier, msg) for msg in narrowed)
        out.extend(Finding("crd-enum-added", where, tier, msg) for msg in widened)
        if b.deprecated and not a.deprecated:
            out.append(Finding("deprecated", where, tier, "field marked deprecated"))
    return out


def _version_findings(kind: str, old: Crd, new: Crd) -> list[Finding]:
    out: list[Finding] = []
    for name, version in sorted(old.versions.items()):
        if not version.served:
            continue
        path = f"crd:{kind}.{name}"
        twin = new.versions.get(name)
        if twin is None or not twin.served:
            msg = "version no longer served" if twin is not None else "version removed"
            out.append(Finding("surface-removed", path, version.tier, msg, location=old.location))
            continue
        if twin.deprecated and not version.deprecated:
            msg = twin.deprecation_warning or "version marked deprecated"
            out.append(Finding("deprecated", path, version.tier, msg))
        out += _field_findings(path, version.tier, version, twin)
    for name, version in sorted(new.versions.items()):
        previous = old.versions.get(name)
        if version.served and (previous is None or not previous.served):
            out.append(
                Finding(
                    "surface-added",
                    f"crd:{kind}.{name}",
                    version.tier,
                    f"version served ({len(version.fields)} fields)",
                    location=new.location,
                )
            )
    if old.storage_version != new.storage_version and new.storage_version:
        tier = new.versions[new.storage_version].tier
        out.append(
            Finding(
                "crd-storage-changed",
                f"crd:{kind}",
                tier,
                "storage version changed",
                old.storage_version,
                new.storage_version,
            )
        )
    return out


def _crd_tier(crd: Crd) -> Tier:
    served = [v.tier for v in crd.versions.values() if v.served] or [Tier.EXPERIMENTAL]
    return max(served, key=lambda t: t.rank)


def diff_crds(old: Mapping[str, Crd], new: Mapping[str, Crd]) -> list[Finding]:
    """Every CRD change between two sets of CRDs (see the module docstring)."""
    out: list[Finding] = []
    for kind in sorted(set(old) | set(new)):
        if kind not in new:
            crd = old[kind]
            msg = f"CRD removed ({', '.join(sorted(crd.versions))})"
            out.append(Finding("surface-removed", f"crd:{kind}", _crd_tier(crd), msg))
        elif kind not in old:
            crd = new[kind]
            msg = f"CRD added ({', '.join(sorted(crd.versions))})"
            out.append(Finding("surface-added", f"crd:{kind}", _crd_tier(crd), msg))
        else:
            out += _version_findings(kind, old[kind], new[kind])
    return out


def crd_deprecations(crds: Mapping[str, Crd]) -> Iterator[str]:
    """Finding paths covered by a deprecation: deprecated versions and fields."""
    for kind, crd in crds.items():
        for name, version in crd.versions.items():
            base = f"crd:{kind}.{name}"
            if version.deprecated:
                yield base
            for path, f in version.fields.items():
                if f.deprecated:
                    yield f"{base}.{path}"
