"""Build a snapshot from source files with griffe, by static analysis only (nothing imported).

Public surface: a module's ``__all__`` where it has one, otherwise its names without a
leading underscore; submodules without a leading underscore, and ``__main__`` modules (which
tier as internal); class members without a leading underscore plus special methods,
inherited ones included. An alias imported with a redundant ``as`` (``from dynamo._core
import Client as Client``) or listed in ``__all__`` is a re-export: public API of the
re-exporting module, recorded with its target's full description, so a change in the target
(even in a private module such as ``dynamo._core``) shows up under the public path.
"""

from __future__ import annotations

import bisect
import builtins
import gc
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import griffe

from dynconform.contracts import InputError
from dynconform.stability import _markers as markers
from dynconform.stability._model import ApiObject, Param, Snapshot, render_signature

_PARAM_KINDS = {
    griffe.ParameterKind.positional_only: "positional-only",
    griffe.ParameterKind.positional_or_keyword: "positional-or-keyword",
    griffe.ParameterKind.var_positional: "var-positional",
    griffe.ParameterKind.keyword_only: "keyword-only",
    griffe.ParameterKind.var_keyword: "var-keyword",
}
_LABELS = frozenset(
    {"async", "classmethod", "staticmethod", "abstractmethod", "property", "writable", "final"}
)
_VALUE_LIMIT = 160


def load_module(package: str, search_paths: Sequence[Path]) -> griffe.Module:
    """Load ``package`` from ``search_paths`` with griffe (static analysis only)."""
    logging.getLogger("griffe").setLevel(logging.ERROR)
    try:
        obj = griffe.load(
            package,
            search_paths=[str(p) for p in search_paths],
            allow_inspection=False,
            force_inspection=False,
            try_relative_path=False,
            resolve_aliases=False,
            docstring_parser=None,
        )
    except (ModuleNotFoundError, griffe.LoadingError) as exc:
        where = ", ".join(str(p) for p in search_paths)
        raise InputError(f"package {package!r} not found in {where} ({exc})") from None
    if not isinstance(obj, griffe.Module):
        raise InputError(f"{package!r} is not a module")
    return obj


def _is_reexport(alias: griffe.Alias, lines: list[str]) -> bool:
    """Whether an import is written with a redundant alias: ``import X as X``."""
    if alias.alias_lineno is None:
        return False
    end = alias.alias_endlineno or alias.alias_lineno
    text = " ".join(lines[alias.alias_lineno - 1 : end])
    for sep in "(),\\":
        text = text.replace(sep, " ")
    return f" {alias.name} as {alias.name} " in f" {' '.join(text.split())} "


def _text(expr: Any) -> str | None:
    if expr is None:
        return None
    if isinstance(expr, griffe.ExprName):
        return expr.name
    text = expr if isinstance(expr, str) else str(expr)
    return " ".join(text.split()) if "\n" in text or "  " in text else text


_TYPING_NAMES = (
    "Any Optional Union List Dict Set Tuple Type Callable Iterable Iterator AsyncIterator "
    "AsyncGenerator Generator Sequence Mapping Literal Awaitable Coroutine Self TypeVar "
    "ClassVar Final Annotated"
)
_PLAIN_NAMES = frozenset([*dir(builtins), *_TYPING_NAMES.split(" ")])


_WORD = re.compile(r"[A-Za-z_]\w*")


def _names(exprs: Iterable[Any]) -> Iterator[griffe.ExprName]:
    for expr in exprs:
        if isinstance(expr, griffe.ExprName):
            yield expr
        elif isinstance(expr, griffe.Expr):
            for part in expr.iterate(flat=True):
                if isinstance(part, griffe.ExprName):
                    yield part


def _resolve_refs(exprs: Iterable[Any], wanted: frozenset[str], prefix: str) -> tuple[str, ...]:
    """Canonical paths inside the package of the names in annotations that may be types."""
    found = set()
    for part in _names(exprs):
        if part.name not in wanted:
            continue
        try:
            path = part.canonical_path
        except Exception:
            continue
        if path.startswith(prefix):
            found.add(path)
    return tuple(sorted(found))


def _decorators(obj: griffe.Function | griffe.Class) -> list[markers.Decorator]:
    out = []
    for dec in obj.decorators:
        text = _text(dec.value) or ""
        out.append(markers.Decorator(text.partition("(")[0].strip(), text))
    return out


def _value(expr: Any) -> str | None:
    text = _text(expr)
    if text is None or len(text) <= _VALUE_LIMIT:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    return f"{text[:60]}... <sha256:{digest}>"


def _docstring(obj: griffe.Object) -> str | None:
    return obj.docstring.value if obj.docstring else None


class _Walker:
    def __init__(self, package: str, roots: Sequence[Path]) -> None:
        self.package = package
        self.roots = [r.resolve() for r in roots]
        self.objects: dict[str, ApiObject] = {}
        self._active: set[int] = set()
        self._files: dict[str, str] = {}
        self._parent_files: dict[int, str] = {}
        self._enums: dict[int, bool] = {}
        self._warn_lines: dict[str, tuple[list[int], bool]] = {}
        self._pending: list[tuple[ApiObject, list[Any], str]] = []

    def location(self, obj: griffe.Object) -> str | None:
        parent = obj.parent
        key = id(parent)
        rel = self._parent_files.get(key) if parent is not None else None
        if rel is None:
            rel = self._relative(obj)
            if rel is None:
                return None
            if parent is not None and not isinstance(obj, griffe.Module):
                self._parent_files[key] = rel
        return f"{rel}:{obj.lineno}" if obj.lineno else rel

    def _relative(self, obj: griffe.Object) -> str | None:
        filepath = obj.filepath
        if not isinstance(filepath, Path):
            return None
        key = str(filepath)
        rel = self._files.get(key)
        if rel is None:
            rel = filepath.name
            resolved = filepath.resolve()
            for root in self.roots:
                if resolved.is_relative_to(root):
                    rel = resolved.relative_to(root).as_posix()
                    break
            self._files[key] = rel
        return rel

    def _is_enum(self, cls: griffe.Class) -> bool:
        key = id(cls)
        if key not in self._enums:
            self._enums[key] = any(
                str(getattr(b, "name", b)).rpartition(".")[2] in _ENUM_BASES for b in cls.bases
            )
        return self._enums[key]

    def _file_index(self, filepath: Path, lines: list[str]) -> tuple[list[int], bool]:
        key = str(filepath)
        index = self._warn_lines.get(key)
        if index is None:
            text = "\n".join(lines)
            if "Warning" not in text:
                index = ([], False)
            else:
                hits = [i for i, line in enumerate(lines, 1) if "Warning" in line]
                top = f"\n{text}"
                index = (hits, "\nwarnings.warn(" in top or "\nwarn(" in top)
            self._warn_lines[key] = index
        return index

    def _lines(self, obj: griffe.Object) -> tuple[Path, list[str]] | None:
        filepath = obj.filepath
        if not isinstance(filepath, Path):
            return None
        try:
            return filepath, obj.lines_collection[filepath]
        except KeyError:
            return None

    def source(self, obj: griffe.Object) -> str | None:
        """An object's source, only when it mentions a warning category (a cheap filter)."""
        found = self._lines(obj)
        if found is None or obj.lineno is None:
            return None
        filepath, lines = found
        hits, _ = self._file_index(filepath, lines)
        end = obj.endlineno or len(lines)
        i = bisect.bisect_left(hits, obj.lineno)
        if i == len(hits) or hits[i] > end:
            return None
        return "\n".join(lines[obj.lineno - 1 : end])

    def module_source(self, mod: griffe.Module) -> str | None:
        """A module's source, only when it calls ``warn`` at its top level."""
        found = self._lines(mod)
        if found is None:
            return None
        filepath, lines = found
        return "\n".join(lines) if self._file_index(filepath, lines)[1] else None

    def _defer_refs(self, obj: ApiObject, exprs: list[Any], texts: Iterable[str | None]) -> None:
        text = " ".join(t for t in texts if t)
        if text:
            self._pending.append((obj, exprs, text))

    def finish_refs(self) -> None:
        """Record, for each signature, the package's classes it references."""
        wanted = frozenset(o.name for o in self.objects.values() if o.kind == "class")
        prefix = self.package + "."
        for obj, exprs, text in self._pending:
            if any(word in wanted for word in _WORD.findall(text)):
                obj.refs = _resolve_refs(exprs, wanted, prefix)
        self._pending.clear()

    def add(self, obj: ApiObject) -> None:
        self.objects.setdefault(obj.path, obj)

    def walk(self, path: str, member: griffe.Object | griffe.Alias, reexport: bool) -> None:
        target: str | None = None
        if isinstance(member, griffe.Alias):
            if reexport:
                target = member.target_path
            try:
                resolved = member.final_target
            except (griffe.AliasResolutionError, griffe.CyclicAliasError):
                self.add(ApiObject(path, "alias", target=member.target_path))
                return
            if reexport:
                target = resolved.path
        else:
            resolved = member
        key = id(resolved)
        if key in self._active:
            return
        self._active.add(key)
        try:
            self._walk_object(path, resolved, target)
        finally:
            self._active.discard(key)

    def _walk_object(self, path: str, obj: griffe.Object, target: str | None) -> None:
        if isinstance(obj, griffe.Module):
            self.module(path, obj, target)
        elif isinstance(obj, griffe.Class):
            self.klass(path, obj, target)
        elif isinstance(obj, griffe.Function):
            self.add(self.function(path, obj, target))
        elif isinstance(obj, griffe.Attribute):
            self.add(self.attribute(path, obj, target))
        else:
            self.add(ApiObject(path, "attribute", location=self.location(obj), target=target))

    def module(self, path: str, mod: griffe.Module, target: str | None) -> None:
        doc = _docstring(mod)
        stability = mod.members.get("__stability__")
        marker = markers.tier_from_docstring(doc)
        if isinstance(stability, griffe.Attribute):
            marker = markers.tier_from_value(_text(stability.value)) or marker
        deprecated = markers.deprecation_from_docstring(doc)
        if deprecated is None and isinstance(mod.filepath, Path):
            deprecated = markers.module_level_deprecation(self.module_source(mod))
        exports = tuple(sorted({str(e) for e in mod.exports})) if mod.exports is not None else None
        hidden: tuple[str, ...] = ()
        if exports is not None:
            hidden = tuple(
                sorted(
                    name
                    for name, member in mod.members.items()
                    if not name.startswith("_")
                    and not member.is_alias
                    and name not in exports
                    and not member.is_module
                )
            )
        self.add(
            ApiObject(
                path,
                "module",
                location=self.location(mod),
                target=target,
                marker=marker,
                deprecated=deprecated,
                exports=exports,
                hidden=hidden,
            )
        )
        if target is not None:
            return
        names = set(exports) if exports is not None else None
        found = self._lines(mod)
        lines = found[1] if found else []
        for name, member in mod.members.items():
            if not member.is_alias and member.is_module:
                if not name.startswith("_") or name == "__main__":
                    self.walk(f"{path}.{name}", member, reexport=False)
                continue
            if names is not None:
                public = name in names
            else:
                public = not name.startswith("_") and (
                    not isinstance(member, griffe.Alias) or _is_reexport(member, lines)
                )
            if public:
                self.walk(f"{path}.{name}", member, reexport=member.is_alias)

    def klass(self, path: str, cls: griffe.Class, target: str | None) -> None:
        decorators = _decorators(cls)
        doc = _docstring(cls)
        stability = cls.members.get("__stability__")
        marker = markers.tier_from_decorators(decorators) or markers.tier_from_docstring(doc)
        if marker is None and isinstance(stability, griffe.Attribute):
            marker = markers.tier_from_value(_text(stability.value))
        deprecated = markers.deprecation_from_decorators(
            decorators
        ) or markers.deprecation_from_docstring(doc)
        init = cls.members.get("__init__")
        if deprecated is None and isinstance(init, griffe.Function):
            deprecated = markers.deprecations_in_body(self.source(init), ()).whole
        self.add(
            ApiObject(
                path,
                "class",
                location=self.location(cls),
                target=target,
                marker=marker,
                deprecated=deprecated,
                bases=tuple(_base(b) for b in cls.bases),
                decorators=tuple(d.text for d in decorators),
                labels=tuple(sorted(cls.labels & _LABELS)),
            )
        )
        try:
            members = cls.all_members
        except Exception:
            members = cls.members
        for name, member in members.items():
            if name.startswith("_"):
                special = name.startswith("__") and name.endswith("__")
                if not special or name in ("__stability__", "__slots__", "__all__"):
                    continue
                if not _is_function(member):
                    continue
            self.walk(f"{path}.{name}", member, reexport=False)

    def function(self, path: str, func: griffe.Function, target: str | None) -> ApiObject:
        decorators = [d for d in _decorators(func) if d.name != "overload"]
        doc = _docstring(func)
        names = [p.name for p in func.parameters]
        body = markers.deprecations_in_body(self.source(func), names)
        dep_params = body.params | markers.deprecated_params_from_docstring(doc)
        deprecated = (
            markers.deprecation_from_decorators(decorators)
            or markers.deprecation_from_docstring(doc)
            or body.whole
        )
        annotations = [p.annotation for p in func.parameters] + [func.returns]
        overloads = tuple(
            sorted({_signature(o) for o in func.overloads or () if isinstance(o, griffe.Function)})
        )
        obj = ApiObject(
            path,
            "function",
            location=self.location(func),
            target=target,
            marker=markers.tier_from_decorators(decorators) or markers.tier_from_docstring(doc),
            deprecated=deprecated,
            decorators=tuple(d.text for d in decorators),
            labels=tuple(sorted(func.labels & _LABELS)),
            params=_params(func, dep_params),
            returns=_text(func.returns),
            overloads=overloads,
        )
        self._defer_refs(obj, annotations, [*(p.annotation for p in obj.params), obj.returns])
        return obj

    def attribute(self, path: str, attr: griffe.Attribute, target: str | None) -> ApiObject:
        doc = _docstring(attr)
        parent = attr.parent
        constant = attr.name.isupper() or (
            isinstance(parent, griffe.Class) and self._is_enum(parent)
        )
        obj = ApiObject(
            path,
            "attribute",
            location=self.location(attr),
            target=target,
            marker=markers.tier_from_docstring(doc),
            deprecated=markers.deprecation_from_docstring(doc)
            or markers.deprecation_from_value(_text(attr.value)),
            labels=tuple(sorted(attr.labels & _LABELS)),
            annotation=_text(attr.annotation),
            value=_value(attr.value) if constant else None,
        )
        self._defer_refs(obj, [attr.annotation], [obj.annotation])
        return obj


def _is_function(member: griffe.Object | griffe.Alias) -> bool:
    try:
        return member.is_function
    except (griffe.AliasResolutionError, griffe.CyclicAliasError):
        return False


_ENUM_BASES = frozenset({"Enum", "IntEnum", "StrEnum", "Flag", "IntFlag"})


def _base(expr: Any) -> str:
    if isinstance(expr, griffe.ExprName):
        try:
            return expr.canonical_path
        except Exception:
            return expr.name
    return _text(expr) or ""


def _default(param: griffe.Parameter) -> str | None:
    if param.kind in (griffe.ParameterKind.var_positional, griffe.ParameterKind.var_keyword):
        return None
    return _text(param.default)


def _params(func: griffe.Function, deprecated: frozenset[str]) -> tuple[Param, ...]:
    out = []
    for p in func.parameters:
        default = _default(p)
        out.append(
            Param(
                name=p.name,
                kind=_PARAM_KINDS[p.kind],
                annotation=_text(p.annotation),
                default=default,
                deprecated=p.name in deprecated or markers.is_deprecated_marker(default),
            )
        )
    return tuple(out)


def _signature(func: griffe.Function) -> str:
    return render_signature(_params(func, frozenset()), _text(func.returns))


def build_snapshot(
    package: str,
    search_paths: Sequence[Path],
    *,
    source: str = "",
    version: str | None = None,
    distributions: dict[str, str] | None = None,
) -> Snapshot:
    """Load ``package`` from ``search_paths`` and describe its public API."""
    # griffe builds hundreds of thousands of objects: the cyclic collector would rescan them
    # many times over while nothing can be freed yet.
    collecting = gc.isenabled()
    gc.disable()
    try:
        module = load_module(package, search_paths)
        walker = _Walker(package, search_paths)
        walker.walk(package, module, reexport=False)
        walker.finish_refs()
    finally:
        if collecting:
            gc.enable()
    return Snapshot(package, walker.objects, source, version, dict(distributions or {}))
