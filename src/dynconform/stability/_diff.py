"""Compare two snapshots: every breaking change griffe finds, and more.

On top of griffe's checks this compares parameter, return and attribute annotations (after
normalisation, so ``Optional[int]`` equals ``int | None``; a widened parameter or a narrowed
return is compatible), ``@overload`` variants, ``async def`` against ``def``, method kinds,
``__all__`` membership, base classes, re-exported aliases and tiers. Removing a module or a
class is one finding, not one per member.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from dynconform.stability import _annotations as ann
from dynconform.stability._findings import Finding
from dynconform.stability._model import ApiObject, Param, Snapshot, Tier

_METHOD_KINDS = ("classmethod", "staticmethod")


def _covered(path: str, roots: set[str]) -> bool:
    head, dot, _ = path.rpartition(".")
    while dot:
        if head in roots:
            return True
        head, dot, _ = head.rpartition(".")
    return False


def _q(value: str | None) -> str:
    return "(none)" if value is None else value


class _Differ:
    def __init__(self, old: Snapshot, new: Snapshot) -> None:
        self.old = old
        self.new = new

    def finding(
        self,
        kind: str,
        obj: ApiObject,
        message: str,
        old: str | None = None,
        new: str | None = None,
        subject: str | None = None,
        *,
        at: ApiObject | None = None,
    ) -> Finding:
        return Finding(
            kind=kind,
            path=obj.path,
            tier=obj.tier,
            message=message,
            old=old,
            new=new,
            location=(at or obj).location,
            subject=subject,
        )

    def run(self) -> list[Finding]:
        out: list[Finding] = []
        removed: set[str] = set()
        changed_kind: set[str] = set()
        for path in sorted(self.old.objects):
            o = self.old.objects[path]
            if _covered(path, removed) or _covered(path, changed_kind):
                continue
            n = self.new.objects.get(path)
            if n is None:
                removed.add(path)
                out.append(self.removal(o))
                continue
            if o.kind != n.kind and "alias" not in (o.kind, n.kind):
                changed_kind.add(path)
                out.append(
                    self.finding(
                        "object-kind-changed",
                        o,
                        f"changed from {o.kind} to {n.kind}",
                        o.kind,
                        n.kind,
                        at=n,
                    )
                )
                continue
            out.extend(self.compare(o, n))
        added: set[str] = set()
        for path in sorted(self.new.objects):
            if path in self.old.objects or _covered(path, added):
                continue
            added.add(path)
            out.append(self.addition(self.new.objects[path]))
        out.extend(self.experimental_references())
        return sorted(_merge_aliases(out), key=Finding.sort_key)

    def removal(self, o: ApiObject) -> Finding:
        parent = self.new.get(o.parent) if o.parent else None
        if parent is not None and o.name in parent.hidden:
            text = f"{o.name!r} was dropped from __all__ (still defined, no longer public)"
            return self.finding("export-removed", o, text, old=o.kind, subject=None)
        if o.target:
            return self.finding(
                "reexport-removed", o, f"re-export of {o.target} was removed", old=o.kind
            )
        return self.finding("object-removed", o, f"{o.kind} was removed", old=o.kind)

    def addition(self, n: ApiObject) -> Finding:
        parent = self.old.get(n.parent) if n.parent else None
        if parent is not None and n.name in parent.hidden:
            return self.finding("export-added", n, f"{n.name!r} was added to __all__", new=n.kind)
        what = f"re-export of {n.target}" if n.target else n.kind
        return self.finding("object-added", n, f"{what} was added", new=n.kind)

    def compare(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        yield from self.tier_change(o, n)
        yield from self.deprecation(o, n)
        if o.kind == "module":
            yield from self.exports(o, n)
        elif o.kind == "class":
            yield from self.bases(o, n)
        elif o.kind == "function":
            yield from self.function(o, n)
        elif o.kind == "attribute":
            yield from self.attribute(o, n)

    def tier_change(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if o.tier == n.tier:
            return
        parent_o = self.old.get(o.parent) if o.parent else None
        parent_n = self.new.get(n.parent) if n.parent else None
        if parent_o and parent_n and (parent_o.tier, parent_n.tier) == (o.tier, n.tier):
            return
        kind = "tier-demoted" if n.tier.rank < o.tier.rank else "tier-promoted"
        yield self.finding(kind, o, f"tier {o.tier} -> {n.tier}", o.tier.value, n.tier.value, at=n)

    def deprecation(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if n.deprecated and not o.deprecated:
            parent = self.new.get(n.parent) if n.parent else None
            parent_old = self.old.get(n.parent) if n.parent else None
            if not (parent and parent.deprecated and not (parent_old and parent_old.deprecated)):
                text = n.deprecated.message or f"deprecated ({n.deprecated.via})"
                yield self.finding("deprecated", n, text, new=n.deprecated.via)
        if o.kind == n.kind == "function":
            old_dep = {p.name for p in o.params if p.deprecated}
            for p in n.params:
                if p.deprecated and p.name not in old_dep:
                    yield self.finding(
                        "deprecated", n, f"parameter {p.name!r} is deprecated", subject=p.name
                    )

    def exports(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if o.exports is None or n.exports is None:
            return
        old, new = set(o.exports), set(n.exports)
        for name in sorted(old - new):
            if f"{o.path}.{name}" in self.new.objects:
                yield self.finding(
                    "export-removed", o, f"{name!r} was dropped from __all__", subject=name, at=n
                )
        for name in sorted(new - old):
            if f"{o.path}.{name}" in self.old.objects:
                yield self.finding(
                    "export-added", n, f"{name!r} was added to __all__", subject=name
                )

    def bases(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        old = {ann.normalize(b): b for b in o.bases}
        new = {ann.normalize(b): b for b in n.bases}
        for key in sorted(k for k in old if k not in new and k is not None):
            yield self.finding(
                "base-removed",
                o,
                f"no longer derives from {old[key]}",
                ", ".join(o.bases),
                ", ".join(n.bases) or "(none)",
                at=n,
            )
        for key in sorted(k for k in new if k not in old and k is not None):
            yield self.finding("base-added", n, f"now derives from {new[key]}", new=new[key])

    def function(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if o.is_async != n.is_async:
            before, after = ("async", "sync") if o.is_async else ("sync", "async")
            yield self.finding(
                "async-changed", o, f"changed from {before} to {after}", before, after, at=n
            )
        o_mk = next((k for k in _METHOD_KINDS if k in o.labels), "method")
        n_mk = next((k for k in _METHOD_KINDS if k in n.labels), "method")
        if o_mk != n_mk and "." in o.path and self._in_class(o.path):
            yield self.finding(
                "decorator-kind-changed", o, f"changed from {o_mk} to {n_mk}", o_mk, n_mk, at=n
            )
        yield from self.parameters(o, n)
        yield from self.returns(o, n)
        yield from self.overloads(o, n)

    def _in_class(self, path: str) -> bool:
        head = path.rpartition(".")[0]
        parent = self.old.get(head)
        return parent is not None and parent.kind == "class"

    def parameters(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        new_params: dict[str, tuple[int, Param]] = {}
        for index, p in enumerate(n.params):
            new_params.setdefault(p.name, (index, p))
        kinds = {p.kind for p in n.params}
        var_args, var_kwargs = "var-positional" in kinds, "var-keyword" in kinds
        old_names = {p.name for p in o.params}
        for old_index, op in enumerate(o.params):
            if op.name not in new_params:
                swallowed = (
                    (op.kind == "keyword-only" and var_kwargs)
                    or (op.kind == "positional-only" and var_args)
                    or (op.kind == "positional-or-keyword" and var_args and var_kwargs)
                )
                if not swallowed:
                    yield self.finding(
                        "parameter-removed",
                        o,
                        f"parameter {op.name!r} was removed",
                        op.render(),
                        subject=op.name,
                        at=n,
                    )
                continue
            new_index, np_ = new_params[op.name]
            yield from self.parameter(o, n, op, np_, old_index, new_index, var_args, var_kwargs)
        for np_ in n.params:
            if np_.name in old_names:
                continue
            kind = "parameter-added-required" if np_.required else "parameter-added-optional"
            text = "required" if np_.required else "optional"
            yield self.finding(
                kind,
                n,
                f"{text} parameter {np_.name!r} was added",
                new=np_.render(),
                subject=np_.name,
            )

    def parameter(
        self,
        o: ApiObject,
        n: ApiObject,
        op: Param,
        np_: Param,
        old_index: int,
        new_index: int,
        var_args: bool,
        var_kwargs: bool,
    ) -> Iterator[Finding]:
        name = op.name
        if np_.required and not op.required:
            yield self.finding(
                "parameter-now-required",
                o,
                f"parameter {name!r} became required",
                op.render(),
                np_.render(),
                name,
                at=n,
            )
        if op.positional and np_.positional and old_index != new_index:
            yield self.finding(
                "parameter-moved",
                o,
                f"parameter {name!r} moved from position {old_index} to {new_index}",
                str(old_index),
                str(new_index),
                name,
                at=n,
            )
        if op.kind != np_.kind and _incompatible_kind(op.kind, np_.kind, var_args, var_kwargs):
            yield self.finding(
                "parameter-kind-changed",
                o,
                f"parameter {name!r} changed from {op.kind} to {np_.kind}",
                op.kind,
                np_.kind,
                name,
                at=n,
            )
        variadic = {"var-positional", "var-keyword"}
        if (
            not op.required
            and not np_.required
            and op.kind not in variadic
            and np_.kind not in variadic
            and op.default != np_.default
        ):
            yield self.finding(
                "parameter-default-changed",
                o,
                f"default of {name!r} changed from {_q(op.default)} to {_q(np_.default)}",
                op.default,
                np_.default,
                name,
                at=n,
            )
        if op.annotation is not None and np_.annotation is not None:
            before, after = ann.normalize(op.annotation), ann.normalize(np_.annotation)
            if before != after:
                wider = ann.widened(op.annotation, np_.annotation)
                kind = "parameter-annotation-widened" if wider else "parameter-annotation-changed"
                yield self.finding(
                    kind,
                    o,
                    f"annotation of {name!r} changed from {op.annotation} to {np_.annotation}",
                    op.annotation,
                    np_.annotation,
                    name,
                    at=n,
                )

    def returns(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if o.returns is None:
            return
        if n.returns is None:
            yield self.finding(
                "return-annotation-changed",
                o,
                f"return annotation {o.returns} was removed",
                o.returns,
                None,
                at=n,
            )
            return
        if ann.normalize(o.returns) == ann.normalize(n.returns):
            return
        narrower = ann.narrowed(o.returns, n.returns)
        kind = "return-annotation-narrowed" if narrower else "return-annotation-changed"
        yield self.finding(
            kind,
            o,
            f"return annotation changed from {o.returns} to {n.returns}",
            o.returns,
            n.returns,
            at=n,
        )

    def overloads(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        old, new = set(o.overloads), set(n.overloads)
        for sig in sorted(old - new):
            yield self.finding("overload-removed", o, f"overload {sig} was removed", sig, at=n)
        for sig in sorted(new - old):
            yield self.finding("overload-added", n, f"overload {sig} was added", new=sig)

    def attribute(self, o: ApiObject, n: ApiObject) -> Iterator[Finding]:
        if (
            o.annotation is not None
            and n.annotation is not None
            and ann.normalize(o.annotation) != ann.normalize(n.annotation)
        ):
            yield self.finding(
                "attribute-annotation-changed",
                o,
                f"annotation changed from {o.annotation} to {n.annotation}",
                o.annotation,
                n.annotation,
                at=n,
            )
        if o.value is not None and n.value is not None and o.value != n.value:
            yield self.finding(
                "attribute-value-changed",
                o,
                f"value changed from {o.value} to {n.value}",
                o.value,
                n.value,
                at=n,
            )
        if "writable" in o.labels and "writable" not in n.labels and "property" in n.labels:
            yield self.finding(
                "decorator-kind-changed",
                o,
                "property lost its setter",
                "writable",
                "read-only",
                at=n,
            )

    def experimental_references(self) -> Iterator[Finding]:
        by_target: dict[str, ApiObject] = {}
        for obj in self.new:
            if obj.target:
                by_target.setdefault(obj.target, obj)
        for obj in self.new:
            if obj.tier != Tier.STABLE or not obj.refs:
                continue
            for ref in obj.refs:
                used = self.new.get(ref) or by_target.get(ref)
                if used is not None and used.tier == Tier.EXPERIMENTAL:
                    yield self.finding(
                        "stable-references-experimental",
                        obj,
                        f"references {used.path}, which is experimental",
                        new=used.path,
                        subject=None,
                    )


def _merge_aliases(findings: list[Finding]) -> list[Finding]:
    """One finding per change of one object, even when it is public under several paths
    (a class and its re-export, an inherited method): the shortest path leads, the others
    become aliases."""
    groups: dict[tuple[object, ...], list[Finding]] = {}
    out: list[Finding] = []
    for f in findings:
        if f.location is None or f.kind == "stable-references-experimental":
            out.append(f)
            continue
        key = (
            f.kind,
            f.tier,
            f.subject,
            f.location,
            f.old,
            f.new,
            f.message,
            f.path.rpartition(".")[2],
        )
        groups.setdefault(key, []).append(f)
    for group in groups.values():
        group.sort(key=lambda f: (f.path.count("."), f.path))
        lead = group[0]
        if len(group) > 1:
            lead = replace(lead, aliases=tuple(f.path for f in group[1:]))
        out.append(lead)
    return out


def _incompatible_kind(old: str, new: str, var_args: bool, var_kwargs: bool) -> bool:
    return any(
        (
            old == "positional-only" and new == "keyword-only",
            old == "keyword-only" and new == "positional-only",
            old == "positional-or-keyword" and new in ("positional-only", "keyword-only"),
            new == "var-keyword" and old != "keyword-only" and not var_args,
            new == "var-positional" and old != "positional-only" and not var_kwargs,
        )
    )


def diff_snapshots(old: Snapshot, new: Snapshot) -> list[Finding]:
    """All changes from ``old`` to ``new``, sorted by tier (strongest first), kind and path."""
    return _Differ(old, new).run()
