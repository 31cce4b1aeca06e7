"""Each source kind: directories, wheels, PyPI (through a local file index), git refs,
saved snapshots; and the snapshot cache."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from stability_helpers import build_wheel, kinds, write_tree

from dynconform.contracts import InputError
from dynconform.stability import (
    LoadOptions,
    PipOptions,
    cache_dir,
    compare_apis,
    load_snapshots,
    parse_source,
    snapshot_api,
)

MAIN_V1 = {"ns/runtime/__init__.py": "from ns._core import Client as Client\n"}
CORE_V1 = {
    "ns/_core.pyi": "class Client:\n    def send(self, data: str, retries: int = 3) -> bool: ...\n"
}
CORE_V2 = {"ns/_core.pyi": "class Client:\n    def send(self, data: str) -> bool: ...\n"}


def test_parse_source_kinds(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, "demo", "1.0", {"demo/__init__.py": ""})
    snap = tmp_path / "api.json"
    snap.write_text("{}", encoding="utf-8")
    assert parse_source(str(tmp_path)).kind == "dir"
    assert parse_source(str(wheel)).kind == "wheel"
    assert parse_source(str(wheel)).project == "demo"
    assert parse_source(str(snap)).kind == "snapshot"
    spec = parse_source("pypi:ai-dynamo==1.5.1")
    assert (spec.kind, spec.value, spec.project) == ("pypi", "ai-dynamo==1.5.1", "ai-dynamo")
    git = parse_source("git:v1.2:components/src, lib/src")
    assert (git.kind, git.value, git.extra) == ("git", "v1.2", ("components/src", "lib/src"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("pypi:ai-dynamo", "expected pypi:NAME==VERSION"),
        ("pypi:ai-dynamo>=1", "expected pypi:NAME==VERSION"),
        ("git:", "expected git:REF"),
        ("no/such/path", "no such file or directory"),
        ("missing.whl", "no such wheel"),
    ],
)
def test_bad_source_specs(spec: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_source(spec)


@pytest.mark.parametrize(
    ("layout", "point_at"),
    [
        ({"mylib/__init__.py": "def f() -> None: ...\n"}, "."),
        ({"mylib/__init__.py": "def f() -> None: ...\n"}, "mylib"),
        ({"src/mylib/__init__.py": "def f() -> None: ...\n", "tests/test_a.py": ""}, "."),
    ],
)
def test_directory_layouts_are_detected(
    tmp_path: Path, layout: dict[str, str], point_at: str
) -> None:
    root = write_tree(tmp_path / "proj", layout)
    snap = snapshot_api(str(root / point_at))
    assert snap.package == "mylib"
    assert "mylib.f" in snap.objects


def test_directory_with_two_packages_needs_package(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "proj", {"a/__init__.py": "", "b/__init__.py": "X = 1\n"})
    with pytest.raises(InputError, match="use --package"):
        snapshot_api(str(root))
    assert "b.X" in snapshot_api(str(root), LoadOptions(package="b")).objects


def test_wheel_file(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "dist", "demo-lib", "2.3", {"demo/__init__.py": "def f() -> None: ...\n"}
    )
    snap = snapshot_api(str(wheel))
    assert (snap.package, snap.version) == ("demo", "2.3")
    assert snap.distributions == {"demo-lib": "2.3"}
    assert "demo.f" in snap.objects


def test_directory_of_wheels_forms_one_namespace_package(tmp_path: Path) -> None:
    build_wheel(tmp_path / "v1", "nsmain", "1.0", MAIN_V1)
    build_wheel(tmp_path / "v1", "nsmain-runtime", "1.0", CORE_V1)
    build_wheel(tmp_path / "v2", "nsmain", "2.0", MAIN_V1)
    build_wheel(tmp_path / "v2", "nsmain-runtime", "2.0", CORE_V2)
    report = compare_apis(str(tmp_path / "v1"), str(tmp_path / "v2"))
    assert ("parameter-removed", "ns.runtime.Client.send(retries)") in kinds(report.findings)
    assert report.exit_code == 1


def _index(tmp_path: Path) -> Path:
    links = tmp_path / "index"
    for version, core in (("1.0", CORE_V1), ("2.0", CORE_V2)):
        build_wheel(
            links,
            "nsmain",
            version,
            MAIN_V1,
            requires=(
                f"nsmain-runtime=={version}",
                "unrelated==9.9",
                "gpu-only==1.0; sys_platform == 'never'",
                "loose>=1",
            ),
        )
        build_wheel(links, "nsmain-runtime", version, core)
    return links


def test_pypi_release_through_a_local_file_index(tmp_path: Path) -> None:
    pip = PipOptions(find_links=(str(_index(tmp_path)),), no_index=True)
    options = LoadOptions(pip=pip)
    report = compare_apis("pypi:nsmain==1.0", "pypi:nsmain==2.0", options)
    assert report.old.distributions == {"nsmain": "1.0", "nsmain-runtime": "1.0"}
    assert report.new.version == "2.0"
    assert ("parameter-removed", "ns.runtime.Client.send(retries)") in kinds(report.findings)
    assert (cache_dir() / "pypi" / "nsmain-2.0" / ".complete").is_file()
    again = snapshot_api("pypi:nsmain==2.0", LoadOptions(pip=PipOptions(no_index=True)))
    assert again.objects.keys() == report.new.objects.keys()


def test_pypi_missing_release_is_an_input_error(tmp_path: Path) -> None:
    pip = PipOptions(find_links=(str(_index(tmp_path)),), no_index=True)
    with pytest.raises(InputError, match=r"pip download nsmain==3\.0"):
        snapshot_api("pypi:nsmain==3.0", LoadOptions(pip=pip))


def _git(repo: Path, *args: str) -> None:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": "/dev/null",
    }
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, env=env)


def test_git_refs_with_subdirectories(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    write_tree(repo, {"components/src/" + k: v for k, v in MAIN_V1.items()})
    write_tree(repo, {"bindings/src/" + k: v for k, v in CORE_V1.items()})
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "v1")
    _git(repo, "tag", "v1")
    write_tree(repo, {"bindings/src/" + k: v for k, v in CORE_V2.items()})
    _git(repo, "commit", "-q", "-am", "v2")
    options = LoadOptions(repo=repo)
    report = compare_apis(
        "git:v1:components/src,bindings/src", "git:HEAD:components/src,bindings/src", options
    )
    assert report.new.package == "ns"
    assert ("parameter-removed", "ns.runtime.Client.send(retries)") in kinds(report.findings)
    with pytest.raises(InputError, match="unknown revision"):
        snapshot_api("git:nope", options)
    with pytest.raises(InputError, match=r"pathspec .missing. did not match"):
        snapshot_api("git:v1:components/src,missing", options)


def test_saved_snapshot_is_a_source(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"mylib/__init__.py": "def f(a: int) -> None: ...\n"})
    path = tmp_path / "api.json"
    snapshot_api(str(root)).write(path)
    write_tree(root, {"mylib/__init__.py": "def f() -> None: ...\n"})
    report = compare_apis(str(path), str(root))
    assert kinds([f for f in report.findings if f.breaking]) == {
        ("parameter-removed", "mylib.f(a)")
    }


def test_snapshots_are_cached_and_invalidated_by_changes(tmp_path: Path) -> None:
    root = write_tree(tmp_path / "p", {"mylib/__init__.py": "def f() -> None: ...\n"})
    (first,) = load_snapshots([str(root)])
    cached = list((cache_dir() / "snapshots").glob("*.json"))
    assert len(cached) == 1
    (second,) = load_snapshots([str(root)])
    assert second.snapshot.objects.keys() == first.snapshot.objects.keys()
    assert list((cache_dir() / "snapshots").glob("*.json")) == cached
    write_tree(root, {"mylib/__init__.py": "def f() -> None: ...\ndef g() -> None: ...\n"})
    (third,) = load_snapshots([str(root)])
    assert "mylib.g" in third.snapshot.objects
    (fresh,) = load_snapshots([str(root)], LoadOptions(use_cache=False))
    assert "mylib.g" in fresh.snapshot.objects
