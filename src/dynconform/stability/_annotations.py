"""Normalise type annotations so that spelling changes are not reported as API changes.

``Optional[int]``, ``Union[int, None]``, ``typing.Optional[int]`` and ``None | int`` all
normalise to ``int | None``; ``List[str]`` to ``list[str]``; string forward references are
parsed. Union members are sorted, so a widening or narrowing can be told apart from a change.
"""

from __future__ import annotations

import ast
import functools

_PREFIXES = frozenset({"typing", "typing_extensions", "t", "collections.abc", "builtins"})
_BUILTIN_ALIASES = {
    "List": "list",
    "Dict": "dict",
    "Set": "set",
    "FrozenSet": "frozenset",
    "Tuple": "tuple",
    "Type": "type",
    "Text": "str",
}


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        head = _dotted(node.value)
        return f"{head}.{node.attr}" if head else None
    return None


def _name(node: ast.expr) -> str | None:
    dotted = _dotted(node)
    if dotted is None:
        return None
    head, dot, tail = dotted.rpartition(".")
    if dot and head in _PREFIXES:
        dotted = tail
    return _BUILTIN_ALIASES.get(dotted, dotted)


def _members(node: ast.expr) -> list[str]:
    """The normalised members of a union (a single member when it is not a union)."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _members(node.left) + _members(node.right)
    if isinstance(node, ast.Subscript):
        name = _name(node.value)
        if name == "Optional":
            return [*_members(node.slice), "None"]
        if name == "Union":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return [m for e in elts for m in _members(e)]
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            inner = ast.parse(node.value.strip(), mode="eval").body
        except SyntaxError:
            return [node.value]
        return _members(inner)
    return [_render(node)]


def _render(node: ast.expr) -> str:
    members = None
    if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)) or (
        isinstance(node, ast.Subscript) and _name(node.value) in ("Optional", "Union")
    ):
        members = _members(node)
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        members = _members(node)
    if members is not None:
        return _join(members)
    if isinstance(node, ast.Constant) and node.value is None:
        return "None"
    name = _name(node)
    if name is not None:
        return name
    if isinstance(node, ast.Subscript):
        head = _render(node.value)
        if head == "Literal":
            elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            return f"{head}[{', '.join(ast.unparse(e) for e in elts)}]"
        if head == "Annotated" and isinstance(node.slice, ast.Tuple) and node.slice.elts:
            first, *meta = node.slice.elts
            return f"{head}[{', '.join([_render(first), *map(ast.unparse, meta)])}]"
        if isinstance(node.slice, ast.Tuple):
            inner = ", ".join(_render(e) for e in node.slice.elts)
        else:
            inner = _render(node.slice)
        return f"{head}[{inner}]"
    if isinstance(node, ast.List):
        return "[" + ", ".join(_render(e) for e in node.elts) + "]"
    if isinstance(node, ast.Tuple):
        return ", ".join(_render(e) for e in node.elts)
    return ast.unparse(node)


def _join(members: list[str]) -> str:
    unique = sorted(set(members), key=lambda m: (m == "None", m))
    return " | ".join(unique)


@functools.lru_cache(maxsize=8192)
def normalize(text: str | None) -> str | None:
    """The canonical spelling of an annotation (``None`` stays ``None``)."""
    if text is None:
        return None
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return " ".join(text.split())
    return _render(node)


def members(text: str) -> frozenset[str]:
    """The set of union members of an annotation, normalised."""
    try:
        node = ast.parse(text.strip(), mode="eval").body
    except SyntaxError:
        return frozenset({" ".join(text.split())})
    return frozenset(_members(node))


def widened(old: str, new: str) -> bool:
    """Whether ``new`` accepts everything ``old`` did (its union members are a superset)."""
    return members(new) >= members(old) or "Any" in members(new)


def narrowed(old: str, new: str) -> bool:
    """Whether ``new`` promises no more than ``old`` (its union members are a subset)."""
    return members(new) <= members(old) or "Any" in members(old)
