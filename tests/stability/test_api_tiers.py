"""Tier globs, precedence, inheritance and the bundled Dynamo tiers file."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from dynconform.contracts import InputError
from dynconform.stability import Snapshot, Tier, TierConfig, bundled_tiers, load_tiers, parse_config
from dynconform.stability._tiers import glob_regex

Snap = Callable[..., Snapshot]


@pytest.mark.parametrize(
    ("pattern", "path", "hit"),
    [
        ("a.b", "a.b", True),
        ("a.b", "a.b.c", False),
        ("a.**", "a", True),
        ("a.**", "a.b.c", True),
        ("a.**", "ab", False),
        ("**.tests", "a.b.tests", True),
        ("**.tests", "tests", True),
        ("**.tests", "a.b.tests_x", False),
        ("a.**.z", "a.z", True),
        ("a.**.z", "a.b.c.z", True),
        ("a.*.c", "a.b.c", True),
        ("a.*.c", "a.b.x.c", False),
        ("a.test_*", "a.test_one", True),
        ("**", "anything.at.all", True),
    ],
)
def test_glob_semantics(pattern: str, path: str, hit: bool) -> None:
    assert bool(glob_regex(pattern).match(path)) is hit


@pytest.mark.parametrize("pattern", ["", "a..b", ".a", "a."])
def test_bad_patterns_are_rejected(pattern: str) -> None:
    with pytest.raises(InputError, match="bad path pattern"):
        glob_regex(pattern)


PKG = {
    "pkg/__init__.py": "",
    "pkg/runtime.py": """
        from x import experimental

        class Client:
            def send(self) -> None: ...

        @experimental
        class Draft:
            def poke(self) -> None: ...
    """,
    "pkg/planner/__init__.py": "def plan() -> None: ...\n",
    "pkg/planner/core.py": '__stability__ = "beta"\ndef step() -> None: ...\n',
    "pkg/misc.py": "def util() -> None: ...\n",
    "pkg/tests/__init__.py": "",
    "pkg/tests/test_x.py": "def test_it() -> None: ...\n",
}

CONFIG = """
default: beta
tiers:
  pkg.runtime: stable
  pkg.runtime.Draft.poke: stable
  pkg.planner.**: experimental
  "**.tests": internal
"""


def test_precedence_marker_then_file_then_default_with_inheritance(snap: Snap) -> None:
    config = parse_config(yaml.safe_load(CONFIG), "test")
    s = snap(PKG, config=config)
    tier = {p: o.tier for p, o in s.objects.items()}
    assert tier["pkg.runtime.Client"] is Tier.STABLE  # inherits the file's pkg.runtime
    assert tier["pkg.runtime.Client.send"] is Tier.STABLE
    assert tier["pkg.runtime.Draft"] is Tier.EXPERIMENTAL  # in-code marker beats the file
    assert tier["pkg.runtime.Draft.poke"] is Tier.EXPERIMENTAL  # even a more specific glob
    assert tier["pkg.planner.plan"] is Tier.EXPERIMENTAL
    assert tier["pkg.planner.core.step"] is Tier.BETA  # __stability__ beats the file
    assert tier["pkg.misc.util"] is Tier.BETA  # the default
    assert tier["pkg.tests.test_x.test_it"] is Tier.INTERNAL


def test_most_specific_pattern_wins(snap: Snap) -> None:
    config = parse_config(
        {"tiers": {"pkg.**": "experimental", "pkg.misc": "stable", "pkg.*": "beta"}}, "t"
    )
    s = snap(PKG, config=config)
    assert s.objects["pkg.misc.util"].tier is Tier.STABLE
    assert s.objects["pkg.runtime.Client"].tier is Tier.BETA
    assert s.objects["pkg"].tier is Tier.EXPERIMENTAL


def test_flat_mapping_form_and_default_config(snap: Snap) -> None:
    config = parse_config({"pkg.misc": "experimental", "default": "beta"}, "t")
    s = snap(PKG, config=config)
    assert s.objects["pkg.misc.util"].tier is Tier.EXPERIMENTAL
    assert s.objects["pkg.runtime.Client"].tier is Tier.BETA
    plain = snap(PKG)
    assert plain.objects["pkg.misc.util"].tier is Tier.STABLE


def test_deprecation_periods_are_configurable() -> None:
    config = parse_config({"deprecation": {"beta": 2, "stable": None}}, "t")
    assert config.periods[Tier.BETA] == 2
    assert config.periods[Tier.STABLE] is None
    assert config.periods[Tier.EXPERIMENTAL] is None
    assert TierConfig().periods == {
        Tier.INTERNAL: None,
        Tier.EXPERIMENTAL: None,
        Tier.BETA: 1,
        Tier.STABLE: 2,
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["a"], "a tiers file is a mapping"),
        ({"tiers": {"a": "gold"}}, "unknown tier 'gold'"),
        ({"tiers": {"a": "beta"}, "extra": 1}, "unknown key"),
        ({"deprecation": {"beta": -1}}, "must be an integer"),
        ({"default": "nope"}, "unknown tier"),
    ],
)
def test_bad_tiers_files_are_input_errors(data: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_config(data, "t")


def test_load_tiers_by_path_and_by_bundled_name(tmp_path: Path) -> None:
    path = tmp_path / "tiers.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    assert load_tiers(str(path)).default is Tier.BETA
    with pytest.raises(InputError, match="not found"):
        load_tiers(str(tmp_path / "missing.yaml"))
    path.write_text("tiers: [", encoding="utf-8")
    with pytest.raises(InputError, match="not valid YAML"):
        load_tiers(str(path))


def test_bundled_ai_dynamo_tiers() -> None:
    assert "ai-dynamo" in bundled_tiers()
    config = load_tiers("ai-dynamo")
    assert config.origin == "bundled:ai-dynamo"
    assert config.default is Tier.EXPERIMENTAL
    assert config.periods[Tier.BETA] == 1
    assert config.periods[Tier.STABLE] == 2
    expect = {
        "dynamo.runtime": Tier.STABLE,
        "dynamo.llm": Tier.STABLE,
        "dynamo.planner": Tier.EXPERIMENTAL,
        "dynamo.experimental": Tier.EXPERIMENTAL,
        "dynamo.nixl_connect": Tier.BETA,
        "dynamo.common.tests": Tier.INTERNAL,
    }
    for path, tier in expect.items():
        rule = config.match(path)
        assert rule is not None, path
        assert rule.tier is tier, path
