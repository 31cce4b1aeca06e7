"""Surface snapshots (CLI flags, env variables, metric names) read statically."""

from __future__ import annotations

import json
import re
import textwrap
import zipfile
from fnmatch import fnmatchcase
from pathlib import Path

import pytest
from surfaces_helpers import V1, write_tree

from dynconform.contracts import InputError
from dynconform.stability import (
    SurfaceOptions,
    SurfaceSnapshot,
    Tier,
    build_surfaces,
    snapshot_surfaces,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture
def v1(tmp_path: Path) -> SurfaceSnapshot:
    root = write_tree(tmp_path / "v1", V1)
    return build_surfaces(root, "demo", source="v1", version="1.0")


def test_components_and_import_closure(v1: SurfaceSnapshot) -> None:
    assert sorted(v1.cli) == ["demo.frontend", "demo.mocker"]
    assert set(v1.cli["demo.mocker"]) == {"--speedup-ratio"}
    front = v1.cli["demo.frontend"]
    assert {"--http-port", "--router-mode", "--kv-events", "--kv-block-size"} <= set(front)


def test_argparse_option_details(v1: SurfaceSnapshot) -> None:
    front = v1.cli["demo.frontend"]
    port = front["--http-port"]
    assert port.aliases == ("-p",)
    assert (port.type, port.default, port.tier) == ("int", "8000", Tier.STABLE)
    assert port.location == "demo/frontend/__main__.py:6"
    mode = front["--mode"]
    assert mode.choices == ("a", "b")
    assert mode.tier is Tier.EXPERIMENTAL
    assert "--*-bandwidth" in front  # computed spelling kept as a pattern
    assert front["--old-flag"].deprecated
    assert front["--old-flag"].dest == "target"
    assert front["--legacy"].tier is Tier.INTERNAL


def test_helper_options_with_env_fallback(v1: SurfaceSnapshot) -> None:
    front = v1.cli["demo.frontend"]
    router = front["--router-mode"]
    assert router.env == "DYN_ROUTER_MODE"
    assert router.choices == ("round-robin", "random", "kv")
    assert router.default == "round-robin"
    assert router.type == "str"
    events = front["--kv-events"]
    assert events.aliases == ("--no-kv-events",)
    assert events.action == "BooleanOptionalAction"
    block = front["--kv-block-size"]
    assert block.aliases == ("--block-size",)
    assert block.type == "int"
    assert block.tier is Tier.BETA


def test_env_and_metrics(v1: SurfaceSnapshot) -> None:
    assert v1.env["DYN_HTTP_TIMEOUT"] == ["demo/common/utils.py"]
    assert "DYN_EXPERIMENTAL_FAST" in v1.env
    assert "DYN_TEST_ONLY" not in v1.env
    data = v1.to_dict()
    assert data["env"]["DYN_EXPERIMENTAL_FAST"]["tier"] == "experimental"
    assert data["env"]["DYN_ROUTER_MODE"]["tier"] == "stable"
    assert v1.metrics == {
        "frontend_service.REQUESTS_TOTAL": "requests_total",
        "frontend_service.operation.TOKENIZE": "tokenize",
        "kvbm.HITS": "kvbm_hits",
    }


def test_roundtrip_and_sources(
    tmp_path: Path, v1: SurfaceSnapshot, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = tmp_path / "surf.json"
    saved.write_text(v1.to_json(), encoding="utf-8")
    again = snapshot_surfaces(str(saved))
    assert again.to_dict() == v1.to_dict()
    wheel = tmp_path / "demo-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("demo-1.0.dist-info/METADATA", "Name: demo\nVersion: 1.0\n")
        for rel, text in V1.items():
            zf.writestr(rel, textwrap.dedent(text))
    monkeypatch.setenv("DYNCONFORM_CACHE", str(tmp_path / "cache"))
    from_wheel = snapshot_surfaces(str(wheel), SurfaceOptions(components=("demo.mocker",)))
    assert from_wheel.version == "1.0"
    assert list(from_wheel.cli) == ["demo.mocker"]
    assert from_wheel.metrics == v1.metrics


def test_bad_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "x.json"
    bad.write_text("{}", encoding="utf-8")
    with pytest.raises(InputError, match="not a surface snapshot"):
        snapshot_surfaces(str(bad))
    root = write_tree(tmp_path / "t", V1)
    with pytest.raises(InputError, match="no component module"):
        build_surfaces(root, "demo", components=["demo.nothing"])


def _help_options(text: str) -> set[str]:
    names: set[str] = set()
    for line in text.splitlines():
        m = re.match(r"^\s{2,}(-[-\w]+.*?)(?:\s{2,}|$)", line)
        if not m:
            continue
        for part in m.group(1).split(", "):
            flag = part.split(" ")[0]
            if re.fullmatch(r"--?[A-Za-z][\w-]*", flag):
                names.add(flag)
    return names - {"-h", "--help"}


@pytest.mark.parametrize("component", ["frontend", "mocker"])
def test_cli_snapshot_matches_real_help(component: str) -> None:
    """The static 1.6.1 snapshot holds every option its real ``--help`` lists."""
    snap = snapshot_surfaces(str(FIXTURES / "surfaces" / "ai-dynamo-1.6.1-cli.json"))
    options = snap.cli[f"dynamo.{component}"]
    ours = {n for o in options.values() for n in o.names}
    text = (FIXTURES / "ai-dynamo-1.6.1" / "cli_help" / f"dynamo.{component}.txt").read_text()
    real = _help_options(text)
    assert len(real) > 100
    # Custom argparse actions (a BooleanOptionalAction subclass) add spellings that static
    # reading cannot see; they are the only ones allowed to be missing.
    missing = {h for h in real if not any(fnmatchcase(h, o) for o in ours)}
    assert missing <= {"--no-enforce-disagg"}, sorted(missing)
    visible = {n for o in options.values() if o.tier is not Tier.INTERNAL for n in o.names}
    extra = {n for n in visible - real if "*" not in n}
    assert len(extra) <= len(real) // 10, sorted(extra)
    for opt in options.values():
        usage = re.search(re.escape(opt.name) + r" \{([^}]*)\}", text)
        if usage and opt.choices:
            assert tuple(usage.group(1).split(",")) == opt.choices, opt.name


def test_saved_snapshot_is_json() -> None:
    data = json.loads((FIXTURES / "surfaces" / "ai-dynamo-1.6.1-cli.json").read_text())
    assert data["kind"] == "SurfaceSnapshot"
    assert data["version"] == "1.6.1"
