"""Each change kind on a small fixture package, and the comparison with plain griffe."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import griffe
import pytest
from stability_helpers import Files, kinds, write_tree

from dynconform.stability import BREAKING, KINDS, Finding, build_snapshot, diff_snapshots

Changes = Callable[..., list[Finding]]


def core(client: str, runtime: str = "from pkg._core import Client as Client\n") -> Files:
    return {"pkg/__init__.py": "", "pkg/_core.pyi": client, "pkg/runtime.py": runtime}


CLIENT = "class Client:\n    def send(self, data: str, retries: int = 3) -> bool: ...\n"

BREAKING_CASES: list[tuple[str, str | Files, str | Files, tuple[str, str]]] = [
    ("object-removed", "def f() -> None: ...\n", "", ("object-removed", "pkg.f")),
    (
        "reexport-removed",
        core(CLIENT),
        core(CLIENT, runtime=""),
        ("reexport-removed", "pkg.runtime.Client"),
    ),
    ("kind", "def f() -> None: ...\n", "f = 1\n", ("object-kind-changed", "pkg.f")),
    ("removed", "def f(a, b=1): ...\n", "def f(a): ...\n", ("parameter-removed", "pkg.f(b)")),
    ("moved", "def f(a, b): ...\n", "def f(b, a): ...\n", ("parameter-moved", "pkg.f(a)")),
    ("kind", "def f(a): ...\n", "def f(*, a): ...\n", ("parameter-kind-changed", "pkg.f(a)")),
    (
        "default",
        "def f(a=1): ...\n",
        "def f(a=2): ...\n",
        ("parameter-default-changed", "pkg.f(a)"),
    ),
    ("required", "def f(a=1): ...\n", "def f(a): ...\n", ("parameter-now-required", "pkg.f(a)")),
    ("added", "def f(): ...\n", "def f(a): ...\n", ("parameter-added-required", "pkg.f(a)")),
    (
        "param-annotation",
        "def f(a: int): ...\n",
        "def f(a: str): ...\n",
        ("parameter-annotation-changed", "pkg.f(a)"),
    ),
    (
        "narrowed-param",
        "def f(a: int | None): ...\n",
        "def f(a: int): ...\n",
        ("parameter-annotation-changed", "pkg.f(a)"),
    ),
    (
        "return",
        "def f() -> int: ...\n",
        "def f() -> str: ...\n",
        ("return-annotation-changed", "pkg.f"),
    ),
    (
        "widened-return",
        "def f() -> int: ...\n",
        "def f() -> Optional[int]: ...\n",
        ("return-annotation-changed", "pkg.f"),
    ),
    (
        "attribute",
        "x: int = 1\n",
        "x: str = '1'\n",
        ("attribute-annotation-changed", "pkg.x"),
    ),
    ("constant", "LIMIT = 1\n", "LIMIT = 2\n", ("attribute-value-changed", "pkg.LIMIT")),
    (
        "overload",
        "from typing import overload\n@overload\ndef f(a: int) -> int: ...\n"
        "@overload\ndef f(a: str) -> str: ...\ndef f(a): ...\n",
        "from typing import overload\n@overload\ndef f(a: int) -> int: ...\ndef f(a): ...\n",
        ("overload-removed", "pkg.f"),
    ),
    ("async", "async def f() -> None: ...\n", "def f() -> None: ...\n", ("async-changed", "pkg.f")),
    ("sync", "def f() -> None: ...\n", "async def f() -> None: ...\n", ("async-changed", "pkg.f")),
    (
        "all",
        "__all__ = ['f', 'g']\ndef f(): ...\ndef g(): ...\n",
        "__all__ = ['f']\ndef f(): ...\ndef g(): ...\n",
        ("export-removed", "pkg.g"),
    ),
    (
        "base",
        "class B: ...\nclass C(B): ...\n",
        "class B: ...\nclass C: ...\n",
        ("base-removed", "pkg.C"),
    ),
    (
        "staticmethod",
        "class C:\n    def m(self): ...\n",
        "class C:\n    @staticmethod\n    def m(): ...\n",
        ("decorator-kind-changed", "pkg.C.m"),
    ),
    (
        "setter",
        "class C:\n    @property\n    def p(self) -> int: ...\n    @p.setter\n"
        "    def p(self, v: int) -> None: ...\n",
        "class C:\n    @property\n    def p(self) -> int: ...\n",
        ("decorator-kind-changed", "pkg.C.p"),
    ),
    (
        "tier",
        "from x import stable\n@stable\ndef f(): ...\n",
        "from x import experimental\n@experimental\ndef f(): ...\n",
        ("tier-demoted", "pkg.f"),
    ),
    (
        "core-signature",
        core(CLIENT),
        core("class Client:\n    def send(self, data: str) -> bool: ...\n"),
        ("parameter-removed", "pkg.runtime.Client.send(retries)"),
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in BREAKING_CASES],
    ids=[case[0] for case in BREAKING_CASES],
)
def test_breaking_change_kinds(
    changes: Changes, old: str | Files, new: str | Files, expected: tuple[str, str]
) -> None:
    found = changes(old, new)
    assert expected in kinds(found)
    assert expected[0] in BREAKING
    hit = next(f for f in found if (f.kind, f.display_path) == expected)
    assert hit.breaking
    assert hit.message
    assert hit.location


def test_every_breaking_kind_has_a_case() -> None:
    covered = {case[3][0] for case in BREAKING_CASES}
    assert covered == set(BREAKING)


COMPATIBLE_CASES: list[tuple[str, str, str, tuple[str, str]]] = [
    ("added", "", "def f(): ...\n", ("object-added", "pkg.f")),
    (
        "optional",
        "def f(a): ...\n",
        "def f(a, b=1): ...\n",
        ("parameter-added-optional", "pkg.f(b)"),
    ),
    (
        "widened",
        "def f(a: int): ...\n",
        "def f(a: int | str): ...\n",
        ("parameter-annotation-widened", "pkg.f(a)"),
    ),
    (
        "narrowed",
        "def f() -> int | None: ...\n",
        "def f() -> int: ...\n",
        ("return-annotation-narrowed", "pkg.f"),
    ),
    (
        "overload",
        "from typing import overload\n@overload\ndef f(a: int) -> int: ...\ndef f(a): ...\n",
        "from typing import overload\n@overload\ndef f(a: int) -> int: ...\n"
        "@overload\ndef f(a: str) -> str: ...\ndef f(a): ...\n",
        ("overload-added", "pkg.f"),
    ),
    (
        "export",
        "__all__ = ['f']\ndef f(): ...\ndef g(): ...\n",
        "__all__ = ['f', 'g']\ndef f(): ...\ndef g(): ...\n",
        ("export-added", "pkg.g"),
    ),
    (
        "base",
        "class B: ...\nclass C: ...\n",
        "class B: ...\nclass C(B): ...\n",
        ("base-added", "pkg.C"),
    ),
    (
        "deprecated",
        "def f(): ...\n",
        "from typing_extensions import deprecated\n@deprecated('x')\ndef f(): ...\n",
        ("deprecated", "pkg.f"),
    ),
    (
        "promoted",
        "from x import beta\n@beta\ndef f(): ...\n",
        "from x import stable\n@stable\ndef f(): ...\n",
        ("tier-promoted", "pkg.f"),
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [case[1:] for case in COMPATIBLE_CASES],
    ids=[case[0] for case in COMPATIBLE_CASES],
)
def test_compatible_change_kinds(
    changes: Changes, old: str, new: str, expected: tuple[str, str]
) -> None:
    found = changes(old, new)
    assert expected in kinds(found)
    assert not [f for f in found if f.breaking], "a compatible change reported as breaking"


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "from typing import Optional\ndef f(a: Optional[int]) -> Optional[str]: ...\n",
            "def f(a: int | None) -> str | None: ...\n",
        ),
        ("from typing import List\nX: List[int] = []\n", "X: list[int] = []\n"),
        ("def f(a: 'C') -> None: ...\nclass C: ...\n", "def f(a: C) -> None: ...\nclass C: ...\n"),
        ("def f(a): ...\n", "def f(a: int): ...\n"),
        ("def f(*, a, **kw): ...\n", "def f(**kw): ...\n"),
    ],
)
def test_spelling_changes_are_not_findings(changes: Changes, old: str, new: str) -> None:
    assert changes(old, new) == []


def test_removing_a_class_is_one_finding(changes: Changes) -> None:
    old = "class C:\n    def a(self): ...\n    def b(self): ...\n    X = 1\n"
    assert kinds(changes(old, "")) == {("object-removed", "pkg.C")}


def test_one_change_under_several_public_paths_is_one_finding(changes: Changes) -> None:
    def files(sig: str) -> Files:
        return {
            "pkg/__init__.py": "from pkg.impl import Worker as Worker\n",
            "pkg/impl.py": f"class Worker:\n    def run(self, {sig}) -> None: ...\n",
        }

    found = [f for f in changes(files("a: int, b: int = 0"), files("a: int")) if f.breaking]
    assert len(found) == 1
    assert found[0].path == "pkg.Worker.run"
    assert found[0].aliases == ("pkg.impl.Worker.run",)


def test_stable_signature_referencing_experimental_type_warns(changes: Changes) -> None:
    src = (
        "from x import experimental\n@experimental\nclass Draft: ...\n"
        "def use(d: Draft) -> None: ...\n"
    )
    found = changes(src, src)
    assert kinds(found) == {("stable-references-experimental", "pkg.use")}
    assert found[0].new == "pkg.Draft"


def test_every_kind_is_catalogued_with_a_summary() -> None:
    assert all(k.summary and k.id == key for key, k in KINDS.items())


def _griffe_breakages(old_root: Path, new_root: Path) -> list[griffe.Breakage]:
    kw = {"allow_inspection": False, "force_inspection": False}
    old = griffe.load("pkg", search_paths=[str(old_root)], **kw)
    new = griffe.load("pkg", search_paths=[str(new_root)], **kw)
    return list(griffe.find_breaking_changes(old, new))


@pytest.mark.parametrize(
    ("old", "new"),
    [case[1:3] for case in BREAKING_CASES],
    ids=[case[0] for case in BREAKING_CASES],
)
def test_superset_of_plain_griffe(tmp_path: Path, old: str | Files, new: str | Files) -> None:
    """Everything griffe's find_breaking_changes reports is reported here, same kind and path."""

    def tree(name: str, src: str | Files) -> Path:
        return write_tree(
            tmp_path / name, {"pkg/__init__.py": src} if isinstance(src, str) else src
        )

    old_root, new_root = tree("old", old), tree("new", new)
    ours = diff_snapshots(build_snapshot("pkg", [old_root]), build_snapshot("pkg", [new_root]))
    have = {(KINDS[f.kind].griffe, p) for f in ours for p in f.paths}
    theirs = _griffe_breakages(old_root, new_root)
    for b in theirs:
        assert (b.kind.name.lower().replace("_", "-"), b.obj.path) in have


def test_reexported_binding_breakage_that_plain_griffe_misses(tmp_path: Path) -> None:
    old_root = write_tree(tmp_path / "old", core(CLIENT))
    new_root = write_tree(
        tmp_path / "new", core("class Client:\n    def send(self, data: bytes) -> bool: ...\n")
    )
    assert _griffe_breakages(old_root, new_root) == []
    ours = diff_snapshots(build_snapshot("pkg", [old_root]), build_snapshot("pkg", [new_root]))
    assert kinds([f for f in ours if f.breaking]) == {
        ("parameter-removed", "pkg.runtime.Client.send(retries)"),
        ("parameter-annotation-changed", "pkg.runtime.Client.send(data)"),
    }
