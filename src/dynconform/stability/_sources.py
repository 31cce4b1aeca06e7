"""Where an API comes from: a directory, wheels, a PyPI release, a git ref, or a snapshot.

Source specs:

- ``PATH/TO/DIR``: a source tree (the package, its parent, or a project with ``src/``), or a
  directory of wheels (all of them form one tree, e.g. ``pip download`` output);
- ``PATH/TO/FILE.whl``: one wheel;
- ``pypi:NAME==VERSION``: a release, fetched with ``pip download --no-deps``; requirements
  the release pins exactly (``ai-dynamo`` pins ``ai-dynamo-runtime==X``) are fetched too and
  kept when they add modules to the same package, so a namespace package split over several
  distributions is complete;
- ``git:REF[:SUBDIR[,SUBDIR...]]``: a commit of the git repository in the working directory;
- ``PATH/TO/api.json``: a snapshot written by ``dynconform api snapshot``.

Nothing is installed or imported. Files are extracted under the cache directory
(``$DYNCONFORM_CACHE``, else ``$XDG_CACHE_HOME/dynconform``, else ``~/.cache/dynconform``).
"""

from __future__ import annotations

import email.parser
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dynconform.contracts import InputError
from dynconform.stability._native import (
    NATIVE_INDEX,
    NativeNames,
    is_extension,
    scan_binary,
    write_index,
)

_KEEP_SUFFIXES = (".py", ".pyi", "py.typed")
_SKIP_DIRS = frozenset({"tests", "test", "docs", "examples", "benchmarks", "build", "dist"})
_WHEEL_NAME = re.compile(
    r"^(?P<name>[^-]+)-(?P<version>[^-]+)(?:-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$"
)
_PIN = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([^\s;,]+)\s*$")
_FALLBACK_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64", "any")


def cache_dir() -> Path:
    """The dynconform cache directory."""
    explicit = os.environ.get("DYNCONFORM_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dynconform"


def normalize_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True, slots=True)
class PipOptions:
    """Index options passed to ``pip download`` (pip's own config and env also apply)."""

    index_url: str | None = None
    find_links: tuple[str, ...] = ()
    no_index: bool = False

    def args(self) -> list[str]:
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for link in self.find_links:
            out += ["--find-links", link]
        if self.no_index:
            out.append("--no-index")
        return out


@dataclass(slots=True)
class Tree:
    """Source files ready for static analysis."""

    search_paths: list[Path]
    package: str
    version: str | None = None
    distributions: dict[str, str] = field(default_factory=dict)
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class SourceSpec:
    """A parsed source spec."""

    kind: str  # dir | wheel | pypi | git | snapshot
    value: str
    extra: tuple[str, ...] = ()

    @property
    def project(self) -> str | None:
        """The distribution name a PyPI spec or wheel names, if any."""
        if self.kind == "pypi":
            return self.value.partition("==")[0]
        if self.kind == "wheel":
            match = _WHEEL_NAME.match(Path(self.value).name)
            return match.group("name") if match else None
        return None


def parse_source(spec: str) -> SourceSpec:
    """Classify a source spec (see the module docstring)."""
    if spec.startswith("pypi:"):
        req = spec[5:].strip()
        match = _PIN.match(req)
        if not match:
            raise InputError(f"bad PyPI source {spec!r}: expected pypi:NAME==VERSION")
        return SourceSpec("pypi", f"{match.group(1)}=={match.group(2)}")
    if spec.startswith("git:"):
        ref, _, subdirs = spec[4:].partition(":")
        if not ref:
            raise InputError(f"bad git source {spec!r}: expected git:REF[:SUBDIR[,SUBDIR]]")
        parts = tuple(s.strip().strip("/") for s in subdirs.split(",") if s.strip())
        return SourceSpec("git", ref, parts)
    path = Path(spec)
    if path.suffix == ".whl":
        if not path.is_file():
            raise InputError(f"{spec}: no such wheel file")
        return SourceSpec("wheel", spec)
    if path.is_dir():
        return SourceSpec("dir", spec)
    if path.is_file():
        return SourceSpec("snapshot", spec)
    raise InputError(f"{spec}: no such file or directory (or use pypi:NAME==VERSION, git:REF)")


# -- wheels ---------------------------------------------------------------------------------


def _wheel_meta(wheel: Path) -> tuple[str, str, list[str], set[str]]:
    """Name, version, Requires-Dist entries and top-level names of a wheel."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            names = zf.namelist()
            meta_name = next(
                (n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")),
                None,
            )
            if meta_name is None:
                raise InputError(f"{wheel}: not a wheel (no .dist-info/METADATA)")
            meta = email.parser.Parser().parsestr(zf.read(meta_name).decode("utf-8", "replace"))
    except zipfile.BadZipFile:
        raise InputError(f"{wheel}: not a wheel (bad zip file)") from None
    tops = {
        n.split("/", 1)[0].removesuffix(".py").removesuffix(".pyi")
        for n in names
        if not n.split("/", 1)[0].endswith((".dist-info", ".data")) and n.endswith((".py", ".pyi"))
    }
    return str(meta["Name"]), str(meta["Version"]), meta.get_all("Requires-Dist") or [], tops


def _extract_wheel(wheel: Path, dest: Path) -> None:
    """Extract the Python files; extension modules are scanned for ``DYN_*`` names instead
    (the names go to the tree's native index, the binaries are not kept)."""
    found: dict[str, NativeNames] = {}
    with zipfile.ZipFile(wheel) as zf:
        for info in zf.infolist():
            name = info.filename
            top = name.split("/", 1)[0]
            if top.endswith((".dist-info", ".data")):
                continue
            if not name.endswith(_KEEP_SUFFIXES):
                if is_extension(name):
                    found[name] = scan_binary(zf.read(info))
                continue
            target = (dest / name).resolve()
            if not target.is_relative_to(dest.resolve()):
                raise InputError(f"{wheel}: unsafe path {name!r} in archive")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(info))
    write_index(dest, found)


def _extracted(slot: Path, site: Path) -> bool:
    """Whether a cache slot holds a complete extraction, native index in ``site`` included
    (trees extracted before native indexes existed are extracted again)."""
    return (slot / ".complete").exists() and (site / NATIVE_INDEX).is_file()


def _stat_fingerprint(paths: Iterable[Path], *extra: str) -> str:
    digest = hashlib.sha256("\0".join(extra).encode())
    for path in sorted(paths):
        st = path.stat()
        digest.update(f"{path.name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:24]


def _pick_package(tops: set[str], package: str | None, where: str) -> str:
    if package:
        return package
    tops = {t for t in tops if t.isidentifier() and not t.startswith("_")}
    if len(tops) == 1:
        return next(iter(tops))
    found = ", ".join(sorted(tops)) or "none"
    raise InputError(f"{where}: cannot tell which package to read (found: {found}); use --package")


def _wheels_tree(wheels: Sequence[Path], package: str | None, use_cache: bool) -> Tree:
    metas = [_wheel_meta(w) for w in wheels]
    tops = set.intersection(*(m[3] for m in metas)) if metas else set()
    chosen = _pick_package(tops or set().union(*(m[3] for m in metas)), package, str(wheels[0]))
    key = _stat_fingerprint(wheels, "wheels")
    dest = cache_dir() / "extract" / key
    if not _extracted(dest, dest) or not use_cache:
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        for wheel in wheels:
            _extract_wheel(wheel, dest)
        (dest / ".complete").write_text("")
    dists = {normalize_name(m[0]): m[1] for m in metas}
    main = metas[0]
    return Tree([dest], chosen, main[1], dists, f"{key}:{chosen}")


# -- PyPI -------------------------------------------------------------------------------------


def _pip_download(requirement: str, dest: Path, options: PipOptions) -> Path:
    """Download one wheel (no dependencies); return its path."""
    base = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    base += ["--only-binary=:all:", "--dest", str(dest), requirement, *options.args()]
    before = set(dest.glob("*.whl"))
    proc = subprocess.run(base, capture_output=True, text=True, check=False)
    if proc.returncode != 0 and "No matching distribution" in proc.stderr:
        platforms = [a for p in _FALLBACK_PLATFORMS for a in ("--platform", p)]
        proc = subprocess.run(base + platforms, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip().startswith("ERROR")]
        detail = lines[-1] if lines else (proc.stderr.strip().splitlines() or ["failed"])[-1]
        raise InputError(f"pip download {requirement}: {detail}")
    name = normalize_name(requirement.partition("==")[0])
    fresh = sorted(set(dest.glob("*.whl")) - before) or sorted(dest.glob("*.whl"))
    for wheel in fresh:
        match = _WHEEL_NAME.match(wheel.name)
        if match and normalize_name(match.group("name")) == name:
            return wheel
    raise InputError(f"pip download {requirement}: no wheel was downloaded (sdist only?)")


def _exact_pins(requires: Iterable[str]) -> list[str]:
    pins = []
    for req in requires:
        if ";" in req or "[" in req:
            continue
        match = _PIN.match(req)
        if match:
            pins.append(f"{match.group(1)}=={match.group(2)}")
    return pins


def _pypi_tree(requirement: str, package: str | None, options: PipOptions, use_cache: bool) -> Tree:
    name, _, version = requirement.partition("==")
    slot = cache_dir() / "pypi" / f"{normalize_name(name)}-{version}"
    info = slot / "dists.json"
    if use_cache and _extracted(slot, slot / "site"):
        data = json.loads(info.read_text(encoding="utf-8"))
        chosen = _pick_package(set(data["packages"]), package, requirement)
        cached = {str(k): str(v) for k, v in data["distributions"].items()}
        return Tree([slot / "site"], chosen, version, cached, f"pypi:{requirement}:{chosen}")
    shutil.rmtree(slot, ignore_errors=True)
    (slot / "site").mkdir(parents=True)
    with tempfile.TemporaryDirectory(prefix="dynconform-pip-") as tmp:
        main = _pip_download(requirement, Path(tmp), options)
        _, real_version, requires, tops = _wheel_meta(main)
        wheels = [main]
        for pin in _exact_pins(requires):
            pin_name, _, pin_version = pin.partition("==")
            family = normalize_name(pin_name).startswith(normalize_name(name) + "-")
            try:
                extra = _pip_download(pin, Path(tmp), options)
            except InputError:
                if family or pin_version == real_version:
                    raise  # a sibling distribution (ai-dynamo-runtime): the tree needs it
                continue
            if _wheel_meta(extra)[3] & tops:
                wheels.append(extra)
        dists: dict[str, str] = {}
        for wheel in wheels:
            meta = _wheel_meta(wheel)
            dists[normalize_name(meta[0])] = meta[1]
            _extract_wheel(wheel, slot / "site")
    info.write_text(
        json.dumps({"distributions": dists, "packages": sorted(tops)}, indent=1), encoding="utf-8"
    )
    (slot / ".complete").write_text("")
    chosen = _pick_package(tops, package, requirement)
    return Tree([slot / "site"], chosen, real_version, dists, f"pypi:{requirement}:{chosen}")


# -- directories and git ------------------------------------------------------------------------


def _package_dirs(root: Path) -> set[str]:
    out = set()
    for entry in root.iterdir():
        if entry.name.startswith((".", "_")) or entry.name in _SKIP_DIRS:
            continue
        if entry.is_dir() and entry.name.isidentifier():
            if any(entry.glob("*.py")) or any(entry.glob("*.pyi")):
                out.add(entry.name)
        elif (
            entry.suffix in (".py", ".pyi")
            and entry.stem.isidentifier()
            and entry.stem not in ("setup", "conftest", "noxfile")
        ):
            out.add(entry.stem)
    return out


def _search_root(root: Path, package: str | None) -> tuple[Path, str]:
    """The search path and package name for a source tree."""
    root = root.resolve()
    if package:
        for base in (root, root / "src", root.parent):
            if (base / package).is_dir() or (base / f"{package}.py").is_file():
                return base, package
        if root.name == package:
            return root.parent, package
        raise InputError(f"{root}: package {package!r} not found")
    if (root / "__init__.py").is_file() or (root / "__init__.pyi").is_file():
        return root.parent, root.name
    for base in (root / "src", root):
        if base.is_dir():
            found = _package_dirs(base)
            if found:
                return base, _pick_package(found, None, str(root))
    raise InputError(f"{root}: no Python package found; use --package")


def _tree_fingerprint(base: Path, package: str) -> str:
    files = []
    target = base / package
    if target.is_dir():
        files = [p for p in target.rglob("*") if p.suffix in (".py", ".pyi")]
    for single in (base / f"{package}.py", base / f"{package}.pyi"):
        if single.is_file():
            files.append(single)
    digest = hashlib.sha256(str(base).encode())
    for path in sorted(files):
        st = path.stat()
        digest.update(f"{path.relative_to(base)}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
    return digest.hexdigest()[:24]


def _dir_tree(root: Path, package: str | None, use_cache: bool) -> Tree:
    wheels = sorted(root.glob("*.whl"))
    if wheels and not _package_dirs(root):
        return _wheels_tree(wheels, package, use_cache)
    base, chosen = _search_root(root, package)
    return Tree([base], chosen, fingerprint=f"dir:{_tree_fingerprint(base, chosen)}:{chosen}")


def _git(args: Sequence[str], repo: Path) -> subprocess.CompletedProcess[bytes]:
    try:
        return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, check=False)
    except FileNotFoundError:
        raise InputError("git is not installed") from None


def git_files(ref: str, subdirs: Sequence[str], repo: Path) -> tuple[str, list[Path]]:
    """Extract ``ref`` (only ``subdirs`` when given) under the cache; return the cache key
    and the extracted roots."""
    proc = _git(["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], repo)
    if proc.returncode != 0:
        raise InputError(f"git: unknown revision {ref!r} in {repo}")
    sha = proc.stdout.decode().strip()
    key = hashlib.sha256(f"{sha}\0{','.join(subdirs)}".encode()).hexdigest()[:24]
    dest = cache_dir() / "git" / key
    if not (dest / ".complete").exists():
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        archive = _git(["archive", "--format=tar", sha, "--", *subdirs], repo)
        if archive.returncode != 0:
            detail = archive.stderr.decode(errors="replace").strip().splitlines() or ["failed"]
            raise InputError(f"git archive {ref}: {detail[-1]}")
        with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
            tar.extractall(dest, filter="data")
        (dest / ".complete").write_text("")
    roots = [dest / s for s in subdirs] if subdirs else [dest]
    for root in roots:
        if not root.is_dir():
            raise InputError(f"git:{ref}: no directory {root.relative_to(dest)}")
    return key, roots


def _git_tree(ref: str, subdirs: Sequence[str], package: str | None, repo: Path) -> Tree:
    key, roots = git_files(ref, subdirs, repo)
    if len(roots) == 1:
        base, chosen = _search_root(roots[0], package)
        paths = [base]
    else:
        found = set().union(*(_package_dirs(r) for r in roots))
        chosen = _pick_package(found, package, f"git:{ref}")
        paths = roots
    return Tree(paths, chosen, None, {}, f"git:{key}:{chosen}")


#: source kinds fetched before they can be read (from a package index, or out of git): slow
REMOTE_KINDS = frozenset({"pypi", "git"})


def materialize(
    spec: SourceSpec,
    *,
    package: str | None = None,
    pip: PipOptions | None = None,
    repo: Path | None = None,
    use_cache: bool = True,
) -> Tree:
    """Turn a (non-snapshot) source into files on disk."""
    if spec.kind == "pypi":
        return _pypi_tree(spec.value, package, pip or PipOptions(), use_cache)
    if spec.kind == "wheel":
        return _wheels_tree([Path(spec.value)], package, use_cache)
    if spec.kind == "git":
        return _git_tree(spec.value, spec.extra, package, repo or Path.cwd())
    if spec.kind == "dir":
        return _dir_tree(Path(spec.value), package, use_cache)
    raise InputError(
        f"{spec.value}: not a wheel (.whl), a source directory, pypi:NAME==VERSION or git:REF"
    )
