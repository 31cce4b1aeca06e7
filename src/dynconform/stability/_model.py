"""The API snapshot: a deterministic, serialisable description of a package's public surface."""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynconform.contracts import InputError, decode_text

API_VERSION = "dynconform.dev/v1"
SNAPSHOT_KIND = "ApiSnapshot"


class Tier(enum.StrEnum):
    """A stability tier. The order is the strength of the compatibility promise."""

    INTERNAL = "internal"
    EXPERIMENTAL = "experimental"
    BETA = "beta"
    STABLE = "stable"

    @property
    def rank(self) -> int:
        return list(Tier).index(self)

    @classmethod
    def parse(cls, value: str) -> Tier:
        try:
            return cls(value.strip().lower())
        except ValueError:
            names = ", ".join(t.value for t in cls)
            raise InputError(f"unknown tier {value!r} (expected one of: {names})") from None


OBJECT_KINDS = ("module", "class", "function", "attribute", "alias")
PARAM_KINDS = (
    "positional-only",
    "positional-or-keyword",
    "var-positional",
    "keyword-only",
    "var-keyword",
)


@dataclass(frozen=True, slots=True)
class Deprecation:
    """Why and since when an object is deprecated."""

    via: str
    message: str = ""
    since: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"via": self.via}
        if self.message:
            out["message"] = self.message
        if self.since:
            out["since"] = self.since
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Deprecation:
        return cls(str(data["via"]), str(data.get("message", "")), data.get("since"))


@dataclass(frozen=True, slots=True)
class Param:
    """One parameter of a function signature."""

    name: str
    kind: str
    annotation: str | None = None
    default: str | None = None
    deprecated: bool = False

    @property
    def required(self) -> bool:
        return self.default is None and self.kind not in ("var-positional", "var-keyword")

    @property
    def positional(self) -> bool:
        return self.kind in ("positional-only", "positional-or-keyword")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.annotation is not None:
            out["annotation"] = self.annotation
        if self.default is not None:
            out["default"] = self.default
        if self.deprecated:
            out["deprecated"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Param:
        return cls(
            name=str(data["name"]),
            kind=str(data["kind"]),
            annotation=data.get("annotation"),
            default=data.get("default"),
            deprecated=bool(data.get("deprecated", False)),
        )

    def render(self) -> str:
        prefix = {"var-positional": "*", "var-keyword": "**"}.get(self.kind, "")
        text = prefix + self.name
        if self.annotation is not None:
            text += f": {self.annotation}"
        if self.default is not None:
            text += f" = {self.default}" if self.annotation is not None else f"={self.default}"
        return text


def render_signature(params: tuple[Param, ...], returns: str | None) -> str:
    """``(a: int, /, b=1, *, c) -> str`` for a parameter list."""
    parts: list[str] = []
    star_done = False
    for i, p in enumerate(params):
        if p.kind == "keyword-only" and not star_done:
            parts.append("*")
            star_done = True
        if p.kind == "var-positional":
            star_done = True
        parts.append(p.render())
        nxt = params[i + 1].kind if i + 1 < len(params) else None
        if p.kind == "positional-only" and nxt != "positional-only":
            parts.append("/")
    text = f"({', '.join(parts)})"
    return f"{text} -> {returns}" if returns is not None else text


@dataclass(slots=True)
class ApiObject:
    """One public object, keyed by the path users import it from (only ``tier`` changes)."""

    path: str
    kind: str
    tier: Tier = Tier.STABLE
    location: str | None = None
    target: str | None = None
    marker: Tier | None = None
    deprecated: Deprecation | None = None
    exports: tuple[str, ...] | None = None
    hidden: tuple[str, ...] = ()
    bases: tuple[str, ...] = ()
    decorators: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    params: tuple[Param, ...] = ()
    returns: str | None = None
    overloads: tuple[str, ...] = ()
    annotation: str | None = None
    value: str | None = None
    refs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.path.rpartition(".")[2]

    @property
    def parent(self) -> str | None:
        head, dot, _ = self.path.rpartition(".")
        return head if dot else None

    @property
    def is_async(self) -> bool:
        return "async" in self.labels

    @property
    def signature(self) -> str:
        return render_signature(self.params, self.returns)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "tier": self.tier.value}
        optional: dict[str, Any] = {
            "location": self.location,
            "target": self.target,
            "marker": self.marker.value if self.marker else None,
            "deprecated": self.deprecated.to_dict() if self.deprecated else None,
            "returns": self.returns,
            "annotation": self.annotation,
            "value": self.value,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        if self.exports is not None:
            out["exports"] = list(self.exports)
        for key in ("hidden", "bases", "decorators", "labels", "overloads", "refs"):
            items = getattr(self, key)
            if items:
                out[key] = list(items)
        if self.kind == "function":
            out["params"] = [p.to_dict() for p in self.params]
        return out

    @classmethod
    def from_dict(cls, path: str, data: Mapping[str, Any]) -> ApiObject:
        kind = data.get("kind", "")
        if kind not in OBJECT_KINDS:
            raise InputError(f"snapshot object {path}: unknown kind {kind!r}")
        get = data.get
        deprecated = get("deprecated")
        exports = get("exports")
        marker = get("marker")
        params = get("params")
        return cls(
            path,
            kind,
            _TIERS.get(get("tier", "stable")) or Tier.parse(str(get("tier"))),
            get("location"),
            get("target"),
            Tier.parse(marker) if marker else None,
            Deprecation.from_dict(deprecated) if deprecated else None,
            tuple(exports) if exports is not None else None,
            tuple(get("hidden", ())),
            tuple(get("bases", ())),
            tuple(get("decorators", ())),
            tuple(get("labels", ())),
            tuple(Param.from_dict(p) for p in params) if params else (),
            get("returns"),
            tuple(get("overloads", ())),
            get("annotation"),
            get("value"),
            tuple(get("refs", ())),
        )


_TIERS = {t.value: t for t in Tier}


@dataclass(slots=True)
class Snapshot:
    """The public API of one package at one version."""

    package: str
    objects: dict[str, ApiObject]
    source: str = ""
    version: str | None = None
    distributions: dict[str, str] = field(default_factory=dict)

    def __iter__(self) -> Iterator[ApiObject]:
        return iter(self.objects.values())

    def __len__(self) -> int:
        return len(self.objects)

    def get(self, path: str) -> ApiObject | None:
        return self.objects.get(path)

    def set_tiers(self, tiers: Mapping[str, Tier]) -> Snapshot:
        """Set the tiers of the objects named (in place); return the snapshot."""
        for path, tier in tiers.items():
            obj = self.objects.get(path)
            if obj is not None:
                obj.tier = tier
        return self

    def tier_counts(self) -> dict[str, int]:
        counts = dict.fromkeys((t.value for t in Tier), 0)
        for obj in self.objects.values():
            counts[obj.tier.value] += 1
        return counts

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": SNAPSHOT_KIND,
            "package": self.package,
            "source": self.source,
            "version": self.version,
            "distributions": dict(sorted(self.distributions.items())),
            "summary": {"objects": len(self.objects), "tiers": self.tier_counts()},
            "objects": {p: self.objects[p].to_dict() for p in sorted(self.objects)},
        }

    def to_json(self, *, compact: bool = False) -> str:
        """Sorted JSON; indented for review unless ``compact`` (much faster to write)."""
        if compact:
            return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False)
        return json.dumps(self.to_dict(), indent=1, sort_keys=True, ensure_ascii=False) + "\n"

    def write(self, path: Path, *, compact: bool = False) -> None:
        path.write_text(self.to_json(compact=compact), encoding="utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "snapshot") -> Snapshot:
        if data.get("kind") != SNAPSHOT_KIND:
            raise InputError(f"{origin}: not an API snapshot (kind is {data.get('kind')!r})")
        if data.get("apiVersion") != API_VERSION:
            raise InputError(
                f"{origin}: unsupported snapshot apiVersion {data.get('apiVersion')!r} "
                f"(this dynconform reads {API_VERSION})"
            )
        raw = data.get("objects")
        if not isinstance(raw, dict) or not isinstance(data.get("package"), str):
            raise InputError(f"{origin}: snapshot needs 'package' and an 'objects' mapping")
        try:
            objects = {str(p): ApiObject.from_dict(str(p), o) for p, o in raw.items()}
        except (KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{origin}: malformed snapshot object ({exc})") from None
        return cls(
            package=data["package"],
            objects=objects,
            source=str(data.get("source", "")),
            version=data.get("version"),
            distributions={str(k): str(v) for k, v in (data.get("distributions") or {}).items()},
        )

    @classmethod
    def read(cls, path: Path) -> Snapshot:
        text = decode_text(path.read_bytes(), str(path))
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
        if not isinstance(data, dict):
            raise InputError(f"{path}: not an API snapshot")
        return cls.from_dict(data, str(path))
