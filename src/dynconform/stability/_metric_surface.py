"""Metric families: name, type, label names and help, from a live exposition or from the
comments of ``prometheus_names.py``.

A live ``/metrics`` body is parsed with prometheus-client's text parser: every family with
at least one sample, its type, the union of its samples' label names (``le`` and
``quantile`` belong to the type, not to the family) and its HELP text, under the name its
``# TYPE`` line gives (counters keep the ``_total`` clients query). In
``prometheus_names.py`` a type or labels are known only where the comment above a constant
states them (``(histogram)``, ``gauge``, ``(labels: stage, phase)``, ``labeled by model``);
elsewhere they are unknown (``None``) and never compared. Constants whose comment starts
with "Prefix" or "Label" name no metric and get neither.

Deprecation: a HELP or comment that says ``deprecated`` / ``[DEPRECATED]``.
"""

from __future__ import annotations

import ast
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from dynconform.contracts import InputError
from dynconform.stability._markers import says_deprecated, tier_from_tag
from dynconform.stability._model import Tier

_TYPES = ("counter", "gauge", "histogram", "summary")
_TYPE_WORD = re.compile(r"\b(counter|gauge|histogram|summary)s?\b", re.IGNORECASE)
_LABELS = re.compile(r"\(labels?:\s*([^)]*)\)", re.IGNORECASE)
_LABELED_BY = re.compile(r"\blabell?ed by ([a-z_][a-z0-9_ ,]*?)(?:\)|;|\.|$)", re.IGNORECASE)
_TYPE_LABELS = frozenset({"le", "quantile"})
_TYPE_LINE = re.compile(r"^#\s*TYPE\s+(\S+)\s+(\S+)", re.MULTILINE)


@dataclass(slots=True)
class MetricFamily:
    """One metric: its exposed name, type, label names and help.

    ``type`` and ``labels`` are ``None`` where the source does not show them.
    """

    name: str
    type: str | None = None
    labels: tuple[str, ...] | None = None
    help: str = ""
    deprecated: bool = False
    tier: Tier = Tier.STABLE
    origin: str = "source"  # source (prometheus_names.py) | exposition
    location: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "tier": self.tier.value, "origin": self.origin}
        if self.type is not None:
            out["type"] = self.type
        if self.labels is not None:
            out["labels"] = list(self.labels)
        if self.deprecated:
            out["deprecated"] = True
        if self.location:
            out["location"] = self.location
        out["help"] = self.help
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricFamily:
        labels = data.get("labels")
        return cls(
            name=str(data["name"]),
            type=data.get("type"),
            labels=tuple(str(x) for x in labels) if labels is not None else None,
            help=str(data.get("help", "")),
            deprecated=bool(data.get("deprecated", False)),
            tier=Tier.parse(str(data.get("tier", "stable"))),
            origin=str(data.get("origin", "source")),
            location=str(data.get("location", "")),
        )


# -- live exposition ----------------------------------------------------------------------------


def parse_exposition(text: str, origin: str = "exposition") -> dict[str, MetricFamily]:
    """Families of a Prometheus text exposition, keyed by exposed name."""
    out: dict[str, MetricFamily] = {}
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, TypeError, IndexError) as exc:
        detail = str(exc) or "a line does not parse"
        raise InputError(f"{origin}: not a Prometheus text exposition ({detail})") from None
    written: dict[str, str] = {}  # the parser drops a counter's _total; keep it as written
    for m in _TYPE_LINE.finditer(text):
        name, kind = m.group(1), m.group(2)
        written[name.removesuffix("_total") if kind == "counter" else name] = name
    for fam in families:
        if not fam.samples:
            continue
        name = written.get(fam.name, fam.name)
        labels = sorted({k for s in fam.samples for k in s.labels} - _TYPE_LABELS)
        kind = fam.type if fam.type in _TYPES else None
        help_text = " ".join(fam.documentation.split())
        out[name] = MetricFamily(
            name=name,
            type=kind,
            labels=tuple(labels),
            help=help_text,
            deprecated=says_deprecated(help_text),
            tier=tier_from_tag(help_text) or Tier.STABLE,
            origin="exposition",
            location=origin,
        )
    return out


def fetch_exposition(url: str, timeout: float = 10.0) -> str:
    """The body of a ``/metrics`` endpoint (http or https)."""
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{url}: a metrics URL starts with http:// or https://")
    request = urllib.request.Request(url, headers={"Accept": "text/plain; version=0.0.4"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body: bytes = response.read()
            charset = response.headers.get_content_charset() or "utf-8"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise InputError(f"{url}: cannot read metrics ({reason})") from None
    return body.decode(charset, errors="replace")


# -- prometheus_names.py ------------------------------------------------------------------------


def _comment_above(lines: list[str], lineno: int) -> str:
    """The ``#`` comment block right above line ``lineno`` (1-based)."""
    out: list[str] = []
    i = lineno - 2
    while i >= 0 and lines[i].strip().startswith("#"):
        out.append(lines[i].strip().lstrip("#").strip())
        i -= 1
    return " ".join(reversed(out))


def _type_of(comment: str) -> str | None:
    found = {m.group(1).lower() for m in _TYPE_WORD.finditer(comment)}
    return found.pop() if len(found) == 1 else None


def _labels_of(comment: str) -> tuple[str, ...] | None:
    names: set[str] = set()
    for m in _LABELS.finditer(comment):
        for part in m.group(1).split(","):
            head = part.split("=")[0].strip().split(" ")[0]
            if re.fullmatch(r"[a-zA-Z_][a-zA-Z0-9_]*", head):
                names.add(head)
    for m in _LABELED_BY.finditer(comment):
        for phrase in re.split(r",| and ", m.group(1)):
            words = phrase.strip().split()
            if words:
                names.add("_".join(words).lower())
    return tuple(sorted(names)) if names else None


def families_from_names(tree: ast.Module, source: str) -> dict[str, MetricFamily]:
    """Families of a ``prometheus_names.py`` module (parsed ``tree`` of ``source``), keyed by
    constant path.

    Every string constant of a class is listed (the module mixes metric names and label
    values); help, type and labels come from the comment above it.
    """
    lines = source.splitlines()
    families: dict[str, MetricFamily] = {}
    for path, lineno, value in class_string_constants(tree):
        comment = _comment_above(lines, lineno)
        naming = comment.lower().startswith(("prefix", "label"))  # not a metric
        families[path] = MetricFamily(
            name=value,
            type=None if naming else _type_of(comment),
            labels=None if naming else _labels_of(comment),
            help=comment,
            deprecated=says_deprecated(comment),
            tier=tier_from_tag(comment) or Tier.STABLE,
            origin="source",
            location=path,
        )
    return families


def class_string_constants(tree: ast.Module) -> Iterator[tuple[str, int, str]]:
    """``Class.CONSTANT`` string assignments of a module (nested classes too): their dotted
    path, line number and value."""

    def walk(body: list[ast.stmt], prefix: str) -> Iterator[tuple[str, int, str]]:
        for node in body:
            if isinstance(node, ast.ClassDef):
                yield from walk(node.body, f"{prefix}{node.name}.")
            elif (
                isinstance(node, ast.Assign)
                and prefix
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id.isupper()
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
            ):
                yield f"{prefix}{node.targets[0].id}", node.lineno, node.value.value

    yield from walk(tree.body, "")
