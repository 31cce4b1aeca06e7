"""The public surface, in-code markers and the snapshot format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

import dynconform.stability as stability
from dynconform.contracts import InputError
from dynconform.stability import Snapshot, Tier, build_snapshot

Snap = Callable[..., Snapshot]

CORE = {
    "pkg/__init__.py": "",
    "pkg/_core.pyi": """
        class Client:
            async def generate(self, request: str, timeout: float = 1.0) -> str: ...
        class Hidden: ...
        def helper(x: int) -> int: ...
    """,
    "pkg/runtime.py": """
        from pkg._core import Client as Client
        from pkg._core import Hidden
        from typing import Any
    """,
}


def test_reexport_with_redundant_alias_is_public_with_its_target_members(snap: Snap) -> None:
    s = snap(CORE)
    client = s.objects["pkg.runtime.Client"]
    assert client.kind == "class"
    assert client.target == "pkg._core.Client"
    assert client.location == "pkg/_core.pyi:1"
    method = s.objects["pkg.runtime.Client.generate"]
    assert method.is_async
    assert [p.name for p in method.params] == ["self", "request", "timeout"]
    assert method.params[2].default == "1.0"
    assert "pkg.runtime.Hidden" not in s.objects
    assert "pkg.runtime.Any" not in s.objects
    assert not any(p.startswith("pkg._core") for p in s.objects)


def test_all_decides_module_members_including_underscore_names(snap: Snap) -> None:
    s = snap(
        {
            "pkg/__init__.py": """
                from pkg._impl import thing
                __all__ = ["thing", "_special", "visible"]
                def visible() -> None: ...
                def not_listed() -> None: ...
                def _special() -> None: ...
            """,
            "pkg/_impl.py": "def thing(a: int) -> int: ...\n",
        }
    )
    assert {"pkg.thing", "pkg._special", "pkg.visible"} <= set(s.objects)
    assert "pkg.not_listed" not in s.objects
    assert s.objects["pkg"].exports == ("_special", "thing", "visible")
    assert s.objects["pkg.thing"].target == "pkg._impl.thing"
    assert s.objects["pkg._special"].tier is Tier.INTERNAL


def test_private_modules_are_skipped_and_main_modules_are_internal(snap: Snap) -> None:
    s = snap(
        {
            "pkg/__init__.py": "",
            "pkg/_internal/__init__.py": "def secret() -> None: ...\n",
            "pkg/__main__.py": "def main() -> None: ...\n",
        }
    )
    assert "pkg._internal" not in s.objects
    assert s.objects["pkg.__main__.main"].tier is Tier.INTERNAL


def test_class_members_special_methods_inheritance_properties(snap: Snap) -> None:
    s = snap(
        {
            "pkg/__init__.py": """
                import enum
                from typing import overload

                class Base:
                    def inherited(self, x: int = 1) -> None: ...

                class Thing(Base):
                    LIMIT: int = 3
                    __slots__ = ("a",)
                    def __init__(self, a: int) -> None:
                        self.a = a
                    def __eq__(self, other: object) -> bool: ...
                    def _private(self) -> None: ...
                    @property
                    def size(self) -> int: ...
                    @classmethod
                    def make(cls) -> "Thing": ...
                    @overload
                    def get(self, k: int) -> int: ...
                    @overload
                    def get(self, k: str) -> str: ...
                    def get(self, k): ...

                class Color(enum.Enum):
                    red = 1
            """
        }
    )
    o = s.objects
    assert "pkg.Thing.inherited" in o
    assert "pkg.Thing.__init__" in o
    assert "pkg.Thing.__eq__" in o
    assert "pkg.Thing._private" not in o
    assert "pkg.Thing.__slots__" not in o
    assert o["pkg.Thing.size"].kind == "attribute"
    assert "property" in o["pkg.Thing.size"].labels
    assert o["pkg.Thing.make"].labels == ("classmethod",)
    assert o["pkg.Thing.get"].overloads == ("(self, k: int) -> int", "(self, k: str) -> str")
    assert o["pkg.Thing.LIMIT"].value == "3"
    assert o["pkg.Thing.a"].kind == "attribute"
    assert o["pkg.Color.red"].value == "1"
    assert o["pkg.Thing"].bases == ("pkg.Base",)


@pytest.mark.parametrize(
    ("source", "path", "tier"),
    [
        (
            "from x import experimental\n@experimental\ndef f() -> None: ...\n",
            "pkg.f",
            "experimental",
        ),
        ("from x import beta\n@beta\nclass C: ...\n", "pkg.C", "beta"),
        ("from x import stability\n@stability('beta')\ndef f() -> None: ...\n", "pkg.f", "beta"),
        ('__stability__ = "experimental"\ndef f() -> None: ...\n', "pkg", "experimental"),
        ('class C:\n    __stability__ = "beta"\n', "pkg.C", "beta"),
        ('def f() -> None:\n    """Do it.\n\n    Stability: Beta\n    """\n', "pkg.f", "beta"),
    ],
)
def test_tier_marker_forms(snap: Snap, source: str, path: str, tier: str) -> None:
    obj = snap({"pkg/__init__.py": source}).objects[path]
    assert obj.marker == Tier(tier)
    assert obj.tier == Tier(tier)


DEPRECATIONS = '''
import warnings
from typing_extensions import deprecated

@deprecated("use g")
def pep702() -> None: ...

@warnings.deprecated("gone soon")
class Old: ...

def directive() -> None:
    """Do it.

    .. deprecated:: 1.4
       Use other().
    """

def summary() -> None:
    """Deprecated method."""

def legacy_call() -> None:
    warnings.warn("legacy_call is deprecated", DeprecationWarning, stacklevel=2)

def param(a: int, legacy: bool | None = None) -> None:
    if legacy is not None:
        warnings.warn("legacy is deprecated", category=FutureWarning)

def documented(a: int, old: int = 0) -> None:
    """Do it.

    Args:
        a: The value.
        old: Deprecated; ignored.
    """

class Warned:
    def __init__(self) -> None:
        warnings.warn("Warned is deprecated", DeprecationWarning)

def fine() -> None:
    warnings.warn("just a note", UserWarning)

def warn_deprecated(message: str) -> None:
    warnings.warn(message, DeprecationWarning)

def future(message: str) -> None:
    warnings.warn(message, FutureWarning)

class Runner:
    def run(self) -> None:
        if self.config.use_events:
            warnings.warn("use_events is deprecated", DeprecationWarning)

class Deprecated:
    def __init__(self, replacement: str, remove_in: str) -> None: ...

def flagged(a: int, load_aware: object = Deprecated("--policy", remove_in="v1.7")) -> None: ...

LOAD_AWARE = Deprecated("--policy", remove_in="v1.7")
'''


def test_deprecation_marker_forms(snap: Snap) -> None:
    o = snap({"pkg/__init__.py": DEPRECATIONS}).objects
    assert o["pkg.pep702"].deprecated is not None
    assert o["pkg.pep702"].deprecated.message == "use g"
    assert o["pkg.Old"].deprecated is not None
    directive = o["pkg.directive"].deprecated
    assert directive is not None
    assert directive.since == "1.4"
    assert directive.message == "Use other()."
    assert o["pkg.summary"].deprecated is not None
    warns = o["pkg.legacy_call"].deprecated
    assert warns is not None
    assert warns.via == "warning"
    assert o["pkg.param"].deprecated is None
    assert [p.name for p in o["pkg.param"].params if p.deprecated] == ["legacy"]
    assert [p.name for p in o["pkg.documented"].params if p.deprecated] == ["old"]
    assert o["pkg.Warned"].deprecated is not None
    assert o["pkg.fine"].deprecated is None
    assert o["pkg.warn_deprecated"].deprecated is None
    assert o["pkg.future"].deprecated is None
    assert not any(p.deprecated for p in o["pkg.Runner.run"].params)
    assert [p.name for p in o["pkg.flagged"].params if p.deprecated] == ["load_aware"]
    flag = o["pkg.LOAD_AWARE"].deprecated
    assert flag is not None
    assert (flag.via, flag.message) == ("marker", "remove in v1.7")


def test_module_that_warns_on_import_is_deprecated(snap: Snap) -> None:
    s = snap(
        {
            "pkg/__init__.py": "",
            "pkg/old.py": "import warnings\nwarnings.warn('old', DeprecationWarning)\nX = 1\n",
        }
    )
    assert s.objects["pkg.old"].deprecated is not None
    assert s.objects["pkg"].deprecated is None


def test_snapshot_json_is_sorted_versioned_and_round_trips(snap: Snap, tmp_path: Path) -> None:
    s = snap(CORE)
    text = s.to_json()
    data = json.loads(text)
    assert data["apiVersion"] == "dynconform.dev/v1"
    assert data["kind"] == "ApiSnapshot"
    assert list(data["objects"]) == sorted(data["objects"])
    again = Snapshot.from_dict(data)
    assert again.to_json() == text
    assert Snapshot.from_dict(json.loads(s.to_json(compact=True))).to_json() == text


def test_snapshot_is_deterministic(snap: Snap) -> None:
    assert snap(CORE).to_json() == snap(CORE).to_json()


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"kind": "Other"}, "not an API snapshot"),
        ({"kind": "ApiSnapshot", "apiVersion": "x/v9"}, "unsupported snapshot apiVersion"),
        ({"kind": "ApiSnapshot", "apiVersion": "dynconform.dev/v1"}, "needs 'package'"),
    ],
)
def test_bad_snapshots_are_input_errors(doc: dict[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        Snapshot.from_dict(doc)


def test_missing_package_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        build_snapshot("nothere", [tmp_path])


def test_stability_public_api_is_exactly_its_all() -> None:
    """dynconform keeps its own public API deliberate: the snapshot lists only ``__all__``."""
    src = Path(stability.__file__).parents[2]
    s = build_snapshot("dynconform.stability", [src])
    names = {p.rpartition(".")[2] for p in s.objects if p.count(".") == 2}
    assert names == set(stability.__all__)
