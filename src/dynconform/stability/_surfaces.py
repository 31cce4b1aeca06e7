"""Surface snapshots: CLI flags, environment variables, metrics and CRDs, read statically.

From any stability source (directory, wheel, ``pypi:NAME==V``, ``git:REF``) and without
importing anything:

- CLI: every ``parser.add_argument("--flag", ...)`` call and Dynamo's
  ``add_argument(parser, flag_name=..., env_var=...)`` / ``add_negatable_bool_argument``
  helpers, with aliases, type, choices, default, env-var fallback, help and a tier from an
  ``[EXPERIMENTAL]`` / ``[BETA]`` help tag (or a ``DYN_EXPERIMENTAL_`` env var). A
  component (a subpackage with ``__main__.py``, e.g. ``dynamo.frontend``) owns the options
  defined in the modules it imports, transitively, inside the package;
- env: every ``DYN_*`` string constant in the package's code, with the files using it, and
  every ``DYN_*`` name in its compiled extension modules (origin ``rust``, located by the
  binary's file name); tier experimental for the ``DYN_EXPERIMENTAL_`` prefix;
- metrics: the string constants of ``prometheus_names.py`` (nested classes give dotted paths)
  and, as metric families, the type and labels its comments state;
- CRDs: see ``_crd``.

A live ``/metrics`` exposition (metric families only) and ``--help`` output (extra CLI
options, origin ``help``) can be merged in; see ``_metric_surface`` and ``_help_surface``.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynconform.contracts import InputError, decode_text
from dynconform.stability._crd import Crd
from dynconform.stability._markers import tier_from_tag
from dynconform.stability._metric_surface import MetricFamily, families_from_names
from dynconform.stability._model import Tier
from dynconform.stability._native import is_extension, native_names

SURFACE_API_VERSION = "dynconform.dev/v1"
SURFACE_KIND = "SurfaceSnapshot"
_ENV = re.compile(r"^DYN_[A-Z0-9_]*[A-Z0-9]$")
_SKIP = frozenset({"tests", "test", "examples", "benchmarks", "docs"})
_HELPERS = frozenset({"add_argument", "add_negatable_bool_argument"})


@dataclass(slots=True)
class CliOption:
    """One option of a component's command line."""

    name: str
    aliases: tuple[str, ...] = ()
    type: str | None = None
    choices: tuple[str, ...] | None = None
    default: str | None = None
    env: str | None = None
    action: str | None = None
    help: str = ""
    dest: str | None = None
    tier: Tier = Tier.STABLE
    deprecated: bool = False
    location: str = ""
    origin: str = "source"  # source | help | source+help

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)

    @property
    def target(self) -> str:
        """The argparse ``dest``, explicit or derived from the first long name."""
        return self.dest or self.name.lstrip("-").replace("-", "_")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tier": self.tier.value, "location": self.location}
        for key in ("type", "default", "env", "action", "dest"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        if self.aliases:
            out["aliases"] = list(self.aliases)
        if self.choices is not None:
            out["choices"] = list(self.choices)
        if self.deprecated:
            out["deprecated"] = True
        if self.origin != "source":
            out["origin"] = self.origin
        out["help"] = self.help
        return out

    @classmethod
    def from_dict(cls, name: str, data: Mapping[str, Any]) -> CliOption:
        choices = data.get("choices")
        return cls(
            name=name,
            aliases=tuple(data.get("aliases", ())),
            type=data.get("type"),
            choices=tuple(choices) if choices is not None else None,
            default=data.get("default"),
            env=data.get("env"),
            action=data.get("action"),
            help=str(data.get("help", "")),
            dest=data.get("dest"),
            tier=Tier.parse(str(data.get("tier", "stable"))),
            deprecated=bool(data.get("deprecated", False)),
            location=str(data.get("location", "")),
            origin=str(data.get("origin", "source")),
        )


def env_origin(files: Iterable[str]) -> str:
    """``python``, ``rust`` (read by a compiled extension) or ``python+rust``."""
    kinds = {"rust" if is_extension(f) else "python" for f in files}
    return "+".join(k for k in ("python", "rust") if k in kinds) or "python"


@dataclass(slots=True)
class SurfaceSnapshot:
    """The CLI, env, metric and CRD surfaces of one package at one version."""

    package: str
    source: str = ""
    version: str | None = None
    cli: dict[str, dict[str, CliOption]] = field(default_factory=dict)
    env: dict[str, list[str]] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)  # constant path -> metric name
    # constant path (prometheus_names.py) or exposed name (a live exposition) -> family
    metric_families: dict[str, MetricFamily] = field(default_factory=dict)
    crds: dict[str, Crd] = field(default_factory=dict)
    env_deprecated: set[str] = field(default_factory=set)

    def deprecated_env(self) -> set[str]:
        """Env names marked deprecated, or the env fallback of a deprecated flag."""
        out = set(self.env_deprecated)
        for opts in self.cli.values():
            out.update(o.env for o in opts.values() if o.deprecated and o.env)
        return out

    def to_dict(self) -> dict[str, Any]:
        deprecated_env = self.env_deprecated
        env: dict[str, Any] = {}
        for name, files in sorted(self.env.items()):
            entry: dict[str, Any] = {"tier": env_tier(name).value, "files": files}
            origin = env_origin(files)
            if origin != "python":
                entry["origin"] = origin
            if name in deprecated_env:
                entry["deprecated"] = True
            env[name] = entry
        out: dict[str, Any] = {
            "apiVersion": SURFACE_API_VERSION,
            "kind": SURFACE_KIND,
            "package": self.package,
            "source": self.source,
            "version": self.version,
            "summary": {
                "components": len(self.cli),
                "options": sum(len(v) for v in self.cli.values()),
                "env": len(self.env),
                "envRust": sum(1 for f in self.env.values() if "rust" in env_origin(f)),
                "metrics": len(self.metrics),
                "metricFamilies": len(self.metric_families),
                "crds": len(self.crds),
            },
            "cli": {
                comp: {n: opts[n].to_dict() for n in sorted(opts)}
                for comp, opts in sorted(self.cli.items())
            },
            "env": env,
            "metrics": dict(sorted(self.metrics.items())),
        }
        if self.metric_families:
            out["metricFamilies"] = {
                k: self.metric_families[k].to_dict() for k in sorted(self.metric_families)
            }
        if self.crds:
            out["crds"] = {k: self.crds[k].to_dict() for k in sorted(self.crds)}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], origin: str = "snapshot") -> SurfaceSnapshot:
        if data.get("kind") != SURFACE_KIND:
            raise InputError(f"{origin}: not a surface snapshot (kind is {data.get('kind')!r})")
        try:
            cli = {
                str(c): {str(n): CliOption.from_dict(str(n), o) for n, o in opts.items()}
                for c, opts in data.get("cli", {}).items()
            }
            env = {str(k): list(v.get("files", [])) for k, v in data.get("env", {}).items()}
            deprecated = {str(k) for k, v in data.get("env", {}).items() if v.get("deprecated")}
            metrics = {str(k): str(v) for k, v in data.get("metrics", {}).items()}
            families = {
                str(k): MetricFamily.from_dict(v) for k, v in data.get("metricFamilies", {}).items()
            }
            crds = {str(k): Crd.from_dict(str(k), v) for k, v in data.get("crds", {}).items()}
        except (AttributeError, TypeError, KeyError) as exc:
            raise InputError(f"{origin}: malformed surface snapshot ({exc})") from None
        return cls(
            str(data.get("package", "")),
            str(data.get("source", "")),
            data.get("version"),
            cli,
            env,
            metrics,
            families,
            crds,
            deprecated,
        )


def env_tier(name: str) -> Tier:
    return Tier.EXPERIMENTAL if name.startswith("DYN_EXPERIMENTAL_") else Tier.STABLE


# -- modules ------------------------------------------------------------------------------------


def _modules(root: Path, package: str) -> dict[str, Path]:
    """Module name -> file for every .py file of the package (tests skipped)."""
    out: dict[str, Path] = {}
    base = root / package
    if not base.is_dir():
        return out
    for path in sorted(base.rglob("*.py")):
        rel = path.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if any(p in _SKIP or p.startswith("test_") for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8", errors="replace"), str(path))
    except (SyntaxError, ValueError):
        return None


def _imports(tree: ast.Module, module: str, is_pkg: bool, known: Mapping[str, Path]) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_pkg else 0)
                base = ".".join(parts[:keep] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            while name and name not in known:
                name = name.rpartition(".")[0]
            if name:
                out.add(name)
    return out


# -- CLI ----------------------------------------------------------------------------------------


def _text(node: ast.AST | None) -> str | None:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return ast.unparse(node)
    return value if isinstance(value, str) else repr(value)


def _flag(node: ast.AST) -> str | None:
    """A flag spelling; computed parts (f-strings, concatenation) become ``*``."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "*"
            for v in node.values
        )
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _flag(node.left), _flag(node.right)
        return f"{left or '*'}{right or '*'}" if left or right else None
    return None


def _help(node: ast.AST | None) -> str:
    if node is None:
        return ""
    if isinstance(node, ast.JoinedStr):
        return "".join(
            v.value if isinstance(v, ast.Constant) and isinstance(v.value, str) else "{...}"
            for v in node.values
        )
    text = _text(node) or ""
    return " ".join(text.split())


def _choices(node: ast.AST | None) -> tuple[str, ...] | None:
    if node is None:
        return None
    try:
        value = ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return (ast.unparse(node),)
    if isinstance(value, list | tuple | set | frozenset):
        return tuple(str(v) for v in value)
    return (str(value),)


def _option(call: ast.Call, location: str) -> CliOption | None:
    kw = {k.arg: k.value for k in call.keywords if k.arg}
    func = call.func
    fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if "flag_name" in kw and fname in _HELPERS:
        primary = _text(kw["flag_name"])
        if not primary or not primary.startswith("-"):
            return None
        names = [primary]
        obsolete = _text(kw.get("obsolete_flag"))
        if obsolete and obsolete.startswith("-"):
            names.append(obsolete)
        boolean = fname == "add_negatable_bool_argument" or (
            _text(kw.get("action")) or ""
        ).endswith("BooleanOptionalAction")
        arg_type = None if boolean else _text(kw["arg_type"]) if "arg_type" in kw else "str"
        if arg_type == "None":
            arg_type = None
        action = "BooleanOptionalAction" if boolean else _text(kw.get("action"))
        env = _text(kw.get("env_var"))
    elif fname == "add_argument":
        flags = [_flag(a) for a in call.args]
        names = [f for f in flags if f and f.startswith("-")]
        if not names:
            return None
        names.sort(key=lambda n: (not n.startswith("--"),))
        arg_type = _text(kw.get("type"))
        action = _text(kw.get("action"))
        boolean = bool(action and action.endswith("BooleanOptionalAction"))
        env = None
    else:
        return None
    if action:
        action = action.rpartition(".")[2]
    if boolean:
        names += [f"--no-{n[2:]}" for n in list(names) if n.startswith("--")]
    help_text = _help(kw.get("help"))
    env_ok = env if env and _ENV.match(env) else None
    tier = tier_from_tag(help_text) or (env_tier(env_ok) if env_ok else Tier.STABLE)
    if help_text in ("argparse.SUPPRESS", "SUPPRESS", "==SUPPRESS=="):
        tier, help_text = Tier.INTERNAL, ""  # accepted but hidden from --help
    return CliOption(
        name=names[0],
        aliases=tuple(dict.fromkeys(n for n in names[1:] if n != names[0])),
        type=arg_type,
        choices=_choices(kw.get("choices")),
        default=_text(kw.get("default")),
        env=env_ok,
        action=action,
        help=help_text,
        dest=_text(kw.get("dest")),
        tier=tier,
        deprecated="deprecated" in kw or "deprecated" in help_text.lower(),
        location=location,
    )


def _options(tree: ast.Module, location: str) -> list[CliOption]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            opt = _option(node, f"{location}:{node.lineno}")
            if opt is not None:
                out.append(opt)
    return out


# -- env and metrics ----------------------------------------------------------------------------


def _env_names(tree: ast.Module) -> set[str]:
    """``DYN_*`` constants; computed names (``"DYN_X_" + name``) become ``DYN_X_*``."""
    out = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and _ENV.match(n.value):
            out.add(n.value)
        elif isinstance(n, ast.BinOp | ast.JoinedStr):
            text = _flag(n)
            if text and text.startswith("DYN_") and "*" in text and " " not in text:
                out.add(text)
    return out


# -- snapshot -----------------------------------------------------------------------------------


def components_of(modules: Mapping[str, Path]) -> list[str]:
    """Subpackages (and the package itself) that have a ``__main__`` module."""
    return sorted(
        name.removesuffix(".__main__")
        for name in modules
        if name.endswith(".__main__") and name.count(".") <= 2
    )


def build_surfaces(
    root: Path,
    package: str,
    *,
    source: str = "",
    version: str | None = None,
    components: Iterable[str] | None = None,
) -> SurfaceSnapshot:
    """Read the surfaces of ``package`` under the search path ``root``."""
    modules = _modules(root, package)
    if not modules:
        raise InputError(f"{root}: package {package!r} has no Python modules")
    trees = {m: t for m, p in modules.items() if (t := _parse(p)) is not None}
    rel = {m: str(p.relative_to(root)) for m, p in modules.items()}
    defined = {m: _options(t, rel[m]) for m, t in trees.items()}
    graph = {m: _imports(t, m, modules[m].name == "__init__.py", modules) for m, t in trees.items()}
    snap = SurfaceSnapshot(package, source, version)
    chosen = list(components) if components is not None else components_of(modules)
    for comp in chosen:
        start = [m for m in trees if m == comp or m.startswith(comp + ".")]
        if not start:
            raise InputError(f"{package}: no component module {comp!r}")
        seen: set[str] = set()
        stack = list(start)
        while stack:
            mod = stack.pop()
            if mod in seen:
                continue
            seen.add(mod)
            stack.extend(graph.get(mod, set()) - seen)
        opts: dict[str, CliOption] = {}
        for mod in sorted(seen):
            for opt in defined.get(mod, ()):
                opts.setdefault(opt.name, opt)
        if opts:
            snap.cli[comp] = opts
    for mod, tree in trees.items():
        for name in _env_names(tree):
            snap.env.setdefault(name, []).append(rel[mod])
    for location, found in native_names([root], package).items():
        for name in found.names:
            snap.env.setdefault(name, []).append(location)
        snap.env_deprecated.update(found.deprecated)
    for files in snap.env.values():
        files.sort()
    names_mod = f"{package}.prometheus_names"
    if names_mod in trees:
        text = modules[names_mod].read_text(encoding="utf-8", errors="replace")
        snap.metric_families = families_from_names(trees[names_mod], text)
        snap.metrics = {path: fam.name for path, fam in snap.metric_families.items()}
    return snap


def read_surface_snapshot(path: Path) -> SurfaceSnapshot:
    try:
        data = json.loads(decode_text(path.read_bytes(), str(path)))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: not a surface snapshot ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not a surface snapshot")
    return SurfaceSnapshot.from_dict(data, str(path))
