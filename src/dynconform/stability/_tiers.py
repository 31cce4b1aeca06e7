"""Tier configuration: globs over object paths, a default tier, per-tier deprecation periods.

A tiers file is YAML::

    default: beta                 # tier of objects nothing else names (default: stable)
    deprecation:                  # releases a deprecation must precede a breaking change
      beta: 1                     # null: changes are reported, never failed
      stable: 2
    tiers:
      dynamo.runtime.**: stable
      "**.tests.**": internal     # quote patterns that start with '*'

Patterns match dotted paths: ``*`` is any part of one segment, ``**`` any number of segments
(``a.**`` matches ``a`` itself too). When several patterns match, the most specific wins
(most literal characters, then the later entry), whether it matches the object itself or one
of its containers. Precedence: an in-code marker on the object or its nearest marked
container, then the tiers file, then the default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from dynconform.contracts import InputError, decode_text
from dynconform.stability._model import Snapshot, Tier

DEFAULT_PERIODS: dict[Tier, int | None] = {
    Tier.INTERNAL: None,
    Tier.EXPERIMENTAL: None,
    Tier.BETA: 1,
    Tier.STABLE: 2,
}


def _segment(seg: str) -> str:
    return "".join("[^.]*" if c == "*" else "[^.]" if c == "?" else re.escape(c) for c in seg)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a dotted-path glob (``*`` within a segment, ``**`` across segments)."""
    segs = pattern.strip().split(".")
    if not pattern.strip() or any(not s for s in segs):
        raise InputError(f"bad path pattern {pattern!r}")
    out: list[str] = []
    for i, seg in enumerate(segs):
        first, last = i == 0, i == len(segs) - 1
        if seg == "**":
            if first and last:
                out.append(".*")
            elif first:
                out.append(r"(?:.+\.)?")
            elif last:
                out.append(r"(?:\..+)?")
            else:
                out.append(r"\.(?:.+\.)?")
            continue
        prev_star = i > 0 and segs[i - 1] == "**"
        out.append(("" if first or prev_star else r"\.") + _segment(seg))
    return re.compile("^" + "".join(out) + "$")


@dataclass(frozen=True)
class TierRule:
    pattern: str
    tier: Tier
    order: int

    @cached_property
    def regex(self) -> re.Pattern[str]:
        return glob_regex(self.pattern)

    @cached_property
    def prefix(self) -> str:
        """The literal text every matching path starts with."""
        return re.split(r"[*?]", self.pattern, maxsplit=1)[0].rstrip(".")

    @property
    def specificity(self) -> tuple[int, int]:
        return (len(self.pattern.replace("*", "").replace("?", "")), self.order)


@dataclass(slots=True)
class TierConfig:
    """Where tiers come from, and how long each tier's deprecations must run."""

    rules: tuple[TierRule, ...] = ()
    default: Tier = Tier.STABLE
    periods: dict[Tier, int | None] = field(default_factory=lambda: dict(DEFAULT_PERIODS))
    origin: str = "defaults"

    def match(self, path: str) -> TierRule | None:
        best: TierRule | None = None
        for rule in self.rules:
            if (
                path.startswith(rule.prefix)
                and rule.regex.match(path)
                and (best is None or rule.specificity > best.specificity)
            ):
                best = rule
        return best

    def resolve(self, snapshot: Snapshot) -> Snapshot:
        """Resolve every object's tier under this configuration (in place; returns it)."""
        marker: dict[str, Tier | None] = {}
        filed: dict[str, TierRule | None] = {}

        def inherited(table: dict[str, Any], path: str) -> Any:
            head, dot, _ = path.rpartition(".")
            while dot:
                if head in table:
                    return table[head]
                head, dot, _ = head.rpartition(".")
            return None

        tiers: dict[str, Tier] = {}
        for path in sorted(snapshot.objects):
            obj = snapshot.objects[path]
            marker[path] = obj.marker or inherited(marker, path)
            own, above = self.match(path), inherited(filed, path)
            if own is None or (above is not None and above.specificity > own.specificity):
                own = above
            filed[path] = own
            if _internal_path(path):
                tiers[path] = Tier.INTERNAL
            else:
                tiers[path] = marker[path] or (own.tier if own else None) or self.default
        return snapshot.set_tiers(tiers)

    def with_overrides(
        self, default: Tier | None = None, periods: Mapping[Tier, int | None] | None = None
    ) -> TierConfig:
        merged = dict(self.periods)
        merged.update(periods or {})
        return TierConfig(self.rules, default or self.default, merged, self.origin)


def _internal_path(path: str) -> bool:
    """Underscore names and ``__main__`` modules are internal (special methods are not)."""
    return any(
        part == "__main__" or (part.startswith("_") and not part.endswith("__"))
        for part in path.split(".")
    )


def _period(tier: Tier, value: Any, origin: str) -> int | None:
    if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InputError(f"{origin}: deprecation period for {tier} must be an integer >= 0")
    return value


def parse_config(data: Any, origin: str) -> TierConfig:
    """Build a configuration from a tiers file's parsed YAML."""
    if data is None:
        return TierConfig(origin=origin)
    if not isinstance(data, dict):
        raise InputError(f"{origin}: a tiers file is a mapping")
    known = {"default", "deprecation", "tiers"}
    if "tiers" in data:
        unknown = set(data) - known
        if unknown:
            raise InputError(f"{origin}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        table = data.get("tiers") or {}
    else:
        table = {k: v for k, v in data.items() if k not in known}
    if not isinstance(table, dict):
        raise InputError(f"{origin}: 'tiers' must map path patterns to tiers")
    rules = []
    for i, (pattern, tier) in enumerate(table.items()):
        rule = TierRule(str(pattern), Tier.parse(str(tier)), i)
        glob_regex(rule.pattern)
        rules.append(rule)
    periods = dict(DEFAULT_PERIODS)
    raw_periods = data.get("deprecation") or {}
    if not isinstance(raw_periods, dict):
        raise InputError(f"{origin}: 'deprecation' must map tiers to numbers of releases")
    for name, value in raw_periods.items():
        tier = Tier.parse(str(name))
        periods[tier] = _period(tier, value, origin)
    default = Tier.parse(str(data["default"])) if data.get("default") else Tier.STABLE
    return TierConfig(tuple(rules), default, periods, origin)


def bundled_tiers() -> dict[str, str]:
    """Names of the tiers files shipped with dynconform (``ai-dynamo`` -> file name)."""
    folder = resources.files("dynconform.stability") / "tiers"
    return {
        entry.name.removesuffix(".yaml"): entry.name
        for entry in folder.iterdir()
        if entry.name.endswith(".yaml")
    }


def load_tiers(spec: str) -> TierConfig:
    """Load a tiers file by path, or a bundled one by name (e.g. ``ai-dynamo``)."""
    path = Path(spec)
    if path.is_file():
        text, origin = decode_text(path.read_bytes(), str(path)), str(path)
    elif spec in bundled_tiers():
        entry = resources.files("dynconform.stability") / "tiers" / bundled_tiers()[spec]
        text, origin = entry.read_text(encoding="utf-8"), f"bundled:{spec}"
    else:
        names = ", ".join(sorted(bundled_tiers())) or "none"
        raise InputError(f"tiers file {spec!r} not found (bundled: {names})")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InputError(f"{origin}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_config(data, origin)
