"""``DYN_*`` names of compiled extension modules (the Rust runtime's ``_core*.so``)."""

from __future__ import annotations

import os
import random
import textwrap
import zipfile
from pathlib import Path

import pytest
from stability_helpers import build_wheel
from surfaces_helpers import V1, write_tree

from dynconform.stability import (
    PipOptions,
    SurfaceOptions,
    SurfaceSnapshot,
    Tier,
    diff_surfaces,
    judge_surfaces,
    scan_binary,
    snapshot_surfaces,
)
from dynconform.stability._native import NATIVE_INDEX

# The user's cache, read before the hermetic fixture points DYNCONFORM_CACHE at tmp_path.
USER_CACHE = os.environ.get("DYNCONFORM_CACHE") or str(Path.home() / ".cache" / "dynconform")


def _blob(*literals: bytes, seed: int = 7) -> bytes:
    """A fake binary: seeded noise, then Rust-style string literals laid end to end."""
    rng = random.Random(seed)
    noise = bytes(rng.randrange(256) for _ in range(4096)).replace(b"DYN_", b"dyn_")
    return noise + b"".join(literals) + noise[::-1]


BLOB = _blob(
    b"\x00\x00DYN_SYSTEM_PORT\x00",  # bounded: a name
    b"event /opt/a.rs\x00event /opt/b.rs\x00",  # 'event' starts many words
    b"DYN_HTTP_BODY_LIMIT_MBevent /opt/c.rs",  # keeps its B: 'Bevent' is no word
    b"DYN_DISAGGREGATION_MODEDeclare an upstream\x00",  # drops the D of 'Declare'
    b"DYN_CONTEXT_WINDOWDYN_MAX_OUTPUT_TOKENS\x01",  # two literals back to back
    b"tenable-rlDYN_ENABLE_RL\x00DYN_ENABLE_RLCLI flags\x00",  # a glued upper-case word
    b"DYN_ROUTE_TO_ENCODERENABLE_RL\x00",  # glued to the tail of DYN_ENABLE_RL
    b"\x00DYN_RUNTIME_\x00",  # a prefix completed at run time
    b"DYN_OLD_KNOB is deprecated; use DYN_NEW_KNOB\x00",
    b"\x00DYN_ROUTER_TEMPERATURE\x00\xc4\x9a\x10DYN_ROUTER_TEMPE\x81\x80",  # 16-byte fragment
    b"DYN_EXPERIMENTAL_TURBO\x00",
)


def test_scan_binary_splits_trims_and_marks() -> None:
    found = scan_binary(BLOB)
    assert found.names == [
        "DYN_CONTEXT_WINDOW",
        "DYN_DISAGGREGATION_MODE",
        "DYN_ENABLE_RL",
        "DYN_EXPERIMENTAL_TURBO",
        "DYN_HTTP_BODY_LIMIT_MB",
        "DYN_MAX_OUTPUT_TOKENS",
        "DYN_NEW_KNOB",
        "DYN_OLD_KNOB",
        "DYN_ROUTER_TEMPERATURE",
        "DYN_ROUTE_TO_ENCODER",
        "DYN_RUNTIME_*",
        "DYN_SYSTEM_PORT",
    ]
    assert found.deprecated == ["DYN_OLD_KNOB"]
    assert scan_binary(b"\x00" * 64).names == []


def _wheel(tmp_path: Path, version: str, blob: bytes) -> Path:
    wheel = tmp_path / f"demo-{version}-cp310-abi3-manylinux_2_28_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(f"demo-{version}.dist-info/METADATA", f"Name: demo\nVersion: {version}\n")
        for rel, text in V1.items():
            zf.writestr(rel, textwrap.dedent(text))
        zf.writestr("demo/_core.abi3.so", blob)
    return wheel


def test_wheel_source_env_origin_and_diff(tmp_path: Path) -> None:
    old = snapshot_surfaces(str(_wheel(tmp_path, "1.0", BLOB)))
    env = old.to_dict()["env"]
    assert env["DYN_SYSTEM_PORT"] == {
        "tier": "stable",
        "files": ["demo/_core.abi3.so"],
        "origin": "rust",
    }
    assert env["DYN_EXPERIMENTAL_TURBO"]["tier"] == "experimental"
    assert env["DYN_OLD_KNOB"]["deprecated"] is True
    assert "origin" not in env["DYN_HTTP_TIMEOUT"]  # read by Python code only
    assert old.to_dict()["summary"]["envRust"] == 12
    # The binary is not kept, its names are: the tree holds an index instead.
    extracted = list((tmp_path / "cache").rglob("*.so"))
    assert not extracted
    assert list((tmp_path / "cache").rglob(NATIVE_INDEX))
    newer = BLOB.replace(b"DYN_SYSTEM_PORT", b"DYN_SYSTEM_HOST").replace(
        b"DYN_OLD_KNOB is", b"DYN_OLDER_KN is"
    )
    new = snapshot_surfaces(str(_wheel(tmp_path, "2.0", newer)))
    removed = {f.path: f for f in diff_surfaces(old, new) if f.kind == "surface-removed"}
    assert set(removed) == {"env:DYN_SYSTEM_PORT", "env:DYN_OLD_KNOB"}
    assert removed["env:DYN_SYSTEM_PORT"].message.endswith("[rust]")
    report = judge_surfaces(old, new, periods={Tier.STABLE: 1})
    status = {f.path: f.status.value for f in report.findings if f.kind == "surface-removed"}
    assert status == {"env:DYN_SYSTEM_PORT": "violation", "env:DYN_OLD_KNOB": "allowed"}


def test_cached_tree_without_index_is_extracted_again(tmp_path: Path) -> None:
    """A wheel extracted before native indexes existed: its names are not lost."""
    wheel = _wheel(tmp_path, "1.0", BLOB)
    first = snapshot_surfaces(str(wheel))
    (index,) = (tmp_path / "cache").rglob(NATIVE_INDEX)
    index.unlink()
    again = snapshot_surfaces(str(wheel))
    assert index.is_file()
    assert again.to_dict() == first.to_dict()
    assert again.env["DYN_SYSTEM_PORT"] == ["demo/_core.abi3.so"]


def test_installed_tree_is_scanned(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "site", V1)
    (root / "demo" / "_core.cpython-311-x86_64-linux-gnu.so").write_bytes(BLOB)
    snap = snapshot_surfaces(str(root))
    assert snap.env["DYN_ROUTE_TO_ENCODER"] == ["demo/_core.cpython-311-x86_64-linux-gnu.so"]
    saved = tmp_path / "s.json"
    saved.write_text(snap.to_json())
    again = snapshot_surfaces(str(saved))
    assert again.env_deprecated == {"DYN_OLD_KNOB"}
    assert again.to_dict() == snap.to_dict()
    assert isinstance(again, SurfaceSnapshot)


@pytest.mark.real_pypi
@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("DYNCONFORM_REAL_PYPI"),
    reason="set DYNCONFORM_REAL_PYPI=1 to download ai-dynamo-runtime 1.6.1 (75 MB)",
)
def test_real_runtime_1_6_1(monkeypatch: pytest.MonkeyPatch) -> None:
    """The released runtime: its ``_core.abi3.so`` names, downloaded once into the user's
    cache (``$DYNCONFORM_CACHE`` as set outside the test, else ``~/.cache/dynconform``)."""
    monkeypatch.setenv("DYNCONFORM_CACHE", USER_CACHE)
    monkeypatch.delenv("PIP_CONFIG_FILE", raising=False)
    snap = snapshot_surfaces("pypi:ai-dynamo-runtime==1.6.1")
    rust = {n for n, files in snap.env.items() if "dynamo/_core.abi3.so" in files}
    assert len(rust) > 200
    assert {"DYN_SYSTEM_PORT", "DYN_REQUEST_PLANE", "DYN_TCP_RPC_PORT", "DYN_RUNTIME_*"} <= rust
    assert {"DYN_SYSTEM_ENABLED", "DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS"} <= snap.env_deprecated
    assert all(n.startswith("DYN_") and " " not in n for n in rust)


def test_fetching_a_release_is_told(tmp_path: Path) -> None:
    links = tmp_path / "wheels"
    build_wheel(links, "demo", "1.0", {"demo/__init__.py": "import os\nos.environ.get('DYN_X')\n"})
    told: list[str] = []
    pip = PipOptions(None, (str(links),), True)
    snap = snapshot_surfaces("pypi:demo==1.0", SurfaceOptions(pip=pip, progress=told.append))
    assert "DYN_X" in snap.env
    assert told == ["surfaces of pypi:demo==1.0: fetching"]
    snapshot_surfaces(str(_wheel(tmp_path, "1.0", BLOB)), SurfaceOptions(progress=told.append))
    assert len(told) == 1  # a local file is not fetched
