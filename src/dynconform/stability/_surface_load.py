"""Where surface snapshots come from: sources, live expositions, ``--help``, CRD files.

``snapshot_surfaces(SOURCE)`` accepts every stability source kind (directory, wheel,
``pypi:NAME==V``, ``git:REF[:SUBDIR]``), a saved surface snapshot, an ``http(s)://`` metrics
URL (a snapshot of that exposition's metric families only), or a CRD YAML file or a tree of
CRDs without Python code (a snapshot of the CRDs only). ``SurfaceOptions`` adds a live
exposition (``metrics_url``), ``--help`` of each component run in a provisioned interpreter
(``help_from``) and extra CRD files or directories (``crd_paths``) to a source's snapshot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dynconform.contracts import InputError
from dynconform.stability._crd import Crd, collect_crds
from dynconform.stability._help_surface import help_options, merge_help
from dynconform.stability._metric_surface import fetch_exposition, parse_exposition
from dynconform.stability._sources import (
    REMOTE_KINDS,
    PipOptions,
    SourceSpec,
    git_files,
    materialize,
    parse_source,
)
from dynconform.stability._surfaces import (
    SURFACE_KIND,
    SurfaceSnapshot,
    build_surfaces,
    read_surface_snapshot,
)


@dataclass(frozen=True, slots=True)
class SurfaceOptions:
    """How a surface source is read, and what is merged into its snapshot."""

    package: str | None = None
    components: tuple[str, ...] | None = None
    pip: PipOptions = field(default_factory=PipOptions)
    repo: Path | None = None
    use_cache: bool = True
    metrics_url: str | None = None
    help_from: str | None = None
    help_timeout: float = 120.0
    crd_paths: tuple[Path, ...] = ()
    #: told a line for each release or repository fetched
    progress: Callable[[str], None] | None = None


@dataclass(slots=True)
class Loaded:
    """A surface snapshot and what could not be read into it (one line each)."""

    snapshot: SurfaceSnapshot
    problems: list[str] = field(default_factory=list)


def _is_snapshot(path: Path) -> bool:
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return SURFACE_KIND in head


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def exposition_snapshot(url: str) -> SurfaceSnapshot:
    """The metric families a live ``/metrics`` endpoint exposes now."""
    families = parse_exposition(fetch_exposition(url), url)
    host = urlsplit(url).netloc or url
    return SurfaceSnapshot(f"metrics@{host}", source=url, metric_families=families)


def _crd_snapshot(source: str, crds: dict[str, Crd]) -> SurfaceSnapshot:
    return SurfaceSnapshot("crds", source=source, crds=crds)


def _yaml_snapshot(path: Path) -> SurfaceSnapshot:
    crds = collect_crds([path])
    if not crds:
        raise InputError(f"{path}: no apiextensions.k8s.io/v1 CustomResourceDefinition")
    return _crd_snapshot(str(path), crds)


def _crd_roots(spec: SourceSpec, options: SurfaceOptions) -> list[Path]:
    """Where a directory or git source may keep CRDs (wheels and PyPI releases: nowhere)."""
    if spec.kind == "dir":
        return [Path(spec.value)]
    if spec.kind == "git":
        return git_files(spec.value, spec.extra, options.repo or Path.cwd())[1]
    return []


def _source_snapshot(source: str, options: SurfaceOptions) -> SurfaceSnapshot:
    path = Path(source)
    if is_url(source):
        return exposition_snapshot(source)
    if path.is_file() and path.suffix == ".json":
        if not _is_snapshot(path):
            raise InputError(
                f"{source}: not a surface snapshot (write one with 'surfaces snapshot')"
            )
        return read_surface_snapshot(path)
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        return _yaml_snapshot(path)
    spec = parse_source(source)
    if options.progress is not None and spec.kind in REMOTE_KINDS:
        options.progress(f"surfaces of {source}: fetching")
    try:
        tree = materialize(
            spec,
            package=options.package,
            pip=options.pip,
            repo=options.repo,
            use_cache=options.use_cache,
        )
    except InputError:
        # A tree without a Python package: a snapshot of its CRDs, if it has any.
        crds = collect_crds(_crd_roots(spec, options), everything=True)
        if not crds:
            raise
        return _crd_snapshot(source, crds)
    for root in tree.search_paths:
        if (root / tree.package).is_dir():
            snap = build_surfaces(
                root,
                tree.package,
                source=source,
                version=tree.version,
                components=options.components,
            )
            break
    else:
        raise InputError(f"{source}: package {tree.package!r} is not a directory package")
    snap.crds = collect_crds(_crd_roots(spec, options))
    return snap


def load_surfaces(source: str, options: SurfaceOptions | None = None) -> Loaded:
    """The snapshot of ``source`` with the options' additions merged in."""
    options = options or SurfaceOptions()
    if options.metrics_url and not is_url(options.metrics_url):
        raise InputError(f"{options.metrics_url}: a metrics URL starts with http:// or https://")
    snap = _source_snapshot(source, options)
    problems: list[str] = []
    if options.crd_paths:
        for path in options.crd_paths:
            if not path.exists():
                raise InputError(f"{path}: no such CRD file or directory")
        extra = collect_crds(options.crd_paths, everything=True)
        if not extra:
            names = ", ".join(str(p) for p in options.crd_paths)
            raise InputError(f"{names}: no apiextensions.k8s.io/v1 CustomResourceDefinition")
        snap.crds.update(extra)
    if options.metrics_url:
        live = exposition_snapshot(options.metrics_url)
        snap.metric_families.update(live.metric_families)
    if options.help_from:
        components = list(options.components or snap.cli)
        if not components:
            raise InputError(f"{source}: no component to run --help for; use --component")
        found, problems = help_options(options.help_from, components, options.help_timeout)
        for comp, opts in found.items():
            snap.cli[comp] = merge_help(snap.cli.get(comp, {}), opts)
    return Loaded(snap, problems)


def snapshot_surfaces(source: str, options: SurfaceOptions | None = None) -> SurfaceSnapshot:
    """The surface snapshot of a source (see the module docstring)."""
    return load_surfaces(source, options).snapshot
