"""In-code stability markers and deprecation markers, read from source text only.

Tier markers: a decorator named ``experimental``, ``beta`` or ``stable`` (or
``stability("beta")``), a ``__stability__ = "beta"`` attribute, a docstring line
``Stability: beta``; in help texts (CLI flags, metrics), an ``[EXPERIMENTAL]`` or ``[BETA]``
tag.

Deprecation markers: PEP 702 ``@deprecated(...)`` (``warnings`` or ``typing_extensions``), a
docstring ``.. deprecated:: VERSION`` directive or a summary line starting with
"Deprecated", ``warnings.warn(..., DeprecationWarning)`` in a body (unconditional: the
object is deprecated; under an ``if`` that tests a parameter: that parameter is), and
Dynamo's ``Deprecated(replacement, remove_in=...)`` marker as a parameter default or an
attribute value; in CRD descriptions and metric help, the word "deprecated".
"""

from __future__ import annotations

import ast
import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from dynconform.stability._model import Deprecation, Tier

_TIER_DECORATORS = {"experimental": Tier.EXPERIMENTAL, "beta": Tier.BETA, "stable": Tier.STABLE}
_TIER_CALLS = frozenset({"stability", "api_tier", "tier"})
_DOC_TIER = re.compile(r"^\s*Stability\s*:\s*(\w+)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_DOC_DIRECTIVE = re.compile(r"^\s*\.\.\s+deprecated::[ \t]*(\S*)[ \t]*\n?(.*)$", re.MULTILINE)
_DOC_PARAM = re.compile(
    r"^\s+\*{0,2}(\w+)(?:\s*\([^)]*\))?\s*:\s*(?:\*\*)?Deprecated\b", re.MULTILINE
)
_WARNINGS = frozenset({"DeprecationWarning", "PendingDeprecationWarning", "FutureWarning"})
_MARKER = re.compile(r"^(?:[\w.]+\.)?Deprecated\(")
_STRING = re.compile(r"""^\s*[rbuf]*(['"]{1,3})(.*?)\1""", re.DOTALL | re.IGNORECASE)
_DEPRECATED_WORD = re.compile(r"\bdeprecated\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Decorator:
    """A decorator as written: its resolved callable path and its full text."""

    callable_path: str
    text: str

    @property
    def name(self) -> str:
        return self.callable_path.rpartition(".")[2]


def _first_string(text: str) -> str:
    """The first string literal in a call's text, best effort."""
    _, paren, rest = text.partition("(")
    if not paren:
        return ""
    match = _STRING.match(rest)
    return " ".join(match.group(2).split()) if match else ""


def _tier_name(value: str) -> Tier | None:
    try:
        return Tier(value.strip().strip("'\"").lower())
    except ValueError:
        return None


def tier_from_decorators(decorators: Iterable[Decorator]) -> Tier | None:
    for dec in decorators:
        if dec.name in _TIER_DECORATORS:
            return _TIER_DECORATORS[dec.name]
        if dec.name in _TIER_CALLS:
            tier = _tier_name(_first_string(dec.text))
            if tier is not None:
                return tier
    return None


def tier_from_value(value: str | None) -> Tier | None:
    """The tier named by a ``__stability__`` attribute's value expression."""
    return _tier_name(value) if value else None


def tier_from_docstring(doc: str | None) -> Tier | None:
    if not doc or "tability" not in doc:
        return None
    match = _DOC_TIER.search(doc)
    return _tier_name(match.group(1)) if match else None


def tier_from_tag(text: str) -> Tier | None:
    """The tier an ``[EXPERIMENTAL]`` or ``[BETA]`` tag in a help text names."""
    upper = text.upper()
    if "[EXPERIMENTAL]" in upper:
        return Tier.EXPERIMENTAL
    if "[BETA]" in upper:
        return Tier.BETA
    return None


def says_deprecated(text: str) -> bool:
    """Whether a description or metric help calls its item deprecated (the word, or a
    ``[DEPRECATED]`` tag)."""
    return _DEPRECATED_WORD.search(text) is not None


def deprecation_from_decorators(decorators: Iterable[Decorator]) -> Deprecation | None:
    for dec in decorators:
        if dec.name == "deprecated":
            return Deprecation("decorator", _first_string(dec.text))
    return None


def is_deprecated_marker(value: str | None) -> bool:
    """Whether a default or value expression is a ``Deprecated(...)`` marker."""
    return bool(value) and _MARKER.match(value or "") is not None


def deprecation_from_value(value: str | None) -> Deprecation | None:
    """``X = Deprecated("--new-flag", remove_in="v2.0")`` deprecates ``X``."""
    if not is_deprecated_marker(value):
        return None
    remove_in = re.search(r"remove_in\s*=\s*['\"]([^'\"]+)", value or "")
    text = f"remove in {remove_in.group(1)}" if remove_in else ""
    return Deprecation("marker", text)


def deprecation_from_docstring(doc: str | None) -> Deprecation | None:
    if not doc or "eprecated" not in doc:
        return None
    match = _DOC_DIRECTIVE.search(doc)
    if match:
        return Deprecation("docstring", " ".join(match.group(2).split()), match.group(1) or None)
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    if first.lower().startswith("deprecated"):
        return Deprecation("docstring", first.strip())
    return None


def deprecated_params_from_docstring(doc: str | None) -> frozenset[str]:
    """Parameters whose docstring entry starts with "Deprecated" (Google/NumPy style)."""
    if not doc or "eprecated" not in doc:
        return frozenset()
    return frozenset(_DOC_PARAM.findall(doc))


def _is_deprecation_warn(node: ast.Call) -> bool:
    """``warn(..., DeprecationWarning)``; a ``FutureWarning`` only when its literal message
    speaks of deprecation or removal (helpers that forward any message are not markers)."""
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
    if name != "warn":
        return False
    args = [*node.args[1:], *(k.value for k in node.keywords if k.arg == "category")]
    for arg in args:
        cat = arg.attr if isinstance(arg, ast.Attribute) else getattr(arg, "id", None)
        if cat in _WARNINGS:
            if cat != "FutureWarning":
                return True
            text = _warn_message(node).lower()
            return "deprecat" in text or "removed" in text
    return False


def _warn_message(node: ast.Call) -> str:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return " ".join(node.args[0].value.split())
    if node.args and isinstance(node.args[0], ast.JoinedStr):
        return " ".join(
            str(v.value)
            for v in node.args[0].values
            if isinstance(v, ast.Constant) and isinstance(v.value, str)
        ).strip()
    return ""


def _names_in(node: ast.AST) -> set[str]:
    """Names tested directly (``legacy is not None``), not through attributes (``self.x``)."""
    bases = {id(n.value) for n in ast.walk(node) if isinstance(n, ast.Attribute)}
    return {
        n.id
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and id(n) not in bases and n.id not in ("self", "cls")
    }


@dataclass(frozen=True, slots=True)
class BodyDeprecations:
    """What ``warnings.warn`` calls in a body deprecate."""

    whole: Deprecation | None
    params: frozenset[str]


_NONE = BodyDeprecations(None, frozenset())


def _statements(body: list[ast.stmt]) -> Iterable[tuple[ast.stmt, set[str] | None]]:
    """Statements of a body with the names tested by enclosing ``if``s (None: unconditional)."""
    for stmt in body:
        yield stmt, None
        if isinstance(stmt, ast.If):
            tested = _names_in(stmt.test)
            for branch in (stmt.body, stmt.orelse):
                for inner, outer in _statements(branch):
                    yield inner, tested | (outer or set())


def deprecations_in_body(source: str | None, params: Iterable[str]) -> BodyDeprecations:
    """Read ``warnings.warn(..., DeprecationWarning)`` calls in a function's source."""
    if not source or "Warning" not in source:
        return _NONE
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return _NONE
    func = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)), None
    )
    if func is None or "warn" in func.name.lower() or "deprecat" in func.name.lower():
        return _NONE  # a helper that emits warnings for others
    names = set(params)
    whole: Deprecation | None = None
    deprecated: set[str] = set()
    for stmt, tested in _statements(func.body):
        if not isinstance(stmt, ast.Expr) or not isinstance(stmt.value, ast.Call):
            continue
        if not _is_deprecation_warn(stmt.value):
            continue
        if tested is None:
            whole = whole or Deprecation("warning", _warn_message(stmt.value))
        else:
            deprecated |= tested & names
    return BodyDeprecations(whole, frozenset(deprecated))


def module_level_deprecation(source: str | None) -> Deprecation | None:
    """A module that warns on import, at its top level, is deprecated."""
    if not source or "Warning" not in source:
        return None
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for stmt in tree.body:
        if (
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Call)
            and _is_deprecation_warn(stmt.value)
        ):
            return Deprecation("warning", _warn_message(stmt.value))
    return None
