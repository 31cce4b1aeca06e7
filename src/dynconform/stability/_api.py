"""Library entry points: snapshot a source, compare two, walk a project's release history."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import multiprocessing
import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynconform.contracts import InputError
from dynconform.stability import _extract, _markers, _model
from dynconform.stability._diff import diff_snapshots
from dynconform.stability._model import API_VERSION, Snapshot, Tier
from dynconform.stability._policy import ApiReport, DeprecationHistory, apply_policy, version_key
from dynconform.stability._sources import (
    REMOTE_KINDS,
    PipOptions,
    Tree,
    cache_dir,
    materialize,
    normalize_name,
    parse_source,
)
from dynconform.stability._tiers import TierConfig, bundled_tiers, load_tiers
from dynconform.stability._waivers import Waiver

HISTORY_KIND = "ApiHistoryReport"


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How sources are found and fetched."""

    package: str | None = None
    pip: PipOptions = field(default_factory=PipOptions)
    repo: Path | None = None
    use_cache: bool = True
    jobs: int = 2
    #: told a line for each release or repository fetched and each snapshot built
    progress: Callable[[str], None] | None = None


@dataclass(frozen=True, slots=True)
class Loaded:
    """A snapshot and whether it was read from a saved file (its tiers are then kept)."""

    snapshot: Snapshot
    saved: bool


def _code_stamp() -> str:
    files = (_extract.__file__, _markers.__file__, _model.__file__)
    return ":".join(str(Path(f).stat().st_mtime_ns) for f in files if f)


def _cache_file(tree: Tree) -> Path | None:
    if tree.fingerprint is None:
        return None
    key = hashlib.sha256(f"{tree.fingerprint}\0{API_VERSION}\0{_code_stamp()}".encode())
    return cache_dir() / "snapshots" / f"{key.hexdigest()[:32]}.json"


def _build(tree: Tree, source: str) -> Snapshot:
    return _extract.build_snapshot(
        tree.package,
        tree.search_paths,
        source=source,
        version=tree.version,
        distributions=tree.distributions,
    )


def _can_fork() -> bool:
    """Parallel builds fork; only where that is safe (POSIX, no other threads running)."""
    return "fork" in multiprocessing.get_all_start_methods() and threading.active_count() == 1


def _store(snapshot: Snapshot, path: Path | None) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    snapshot.write(tmp, compact=True)
    tmp.replace(path)


def load_snapshots(sources: Sequence[str], options: LoadOptions | None = None) -> list[Loaded]:
    """Snapshots of several sources (untiered unless saved); builds run in parallel."""
    options = options or LoadOptions()
    results: list[Loaded | None] = [None] * len(sources)
    pending: list[tuple[int, Tree, Path | None]] = []
    for i, source in enumerate(sources):
        spec = parse_source(source)
        if spec.kind == "snapshot":
            results[i] = Loaded(Snapshot.read(Path(spec.value)), saved=True)
            continue
        if options.progress is not None and spec.kind in REMOTE_KINDS:
            options.progress(f"[{i + 1}/{len(sources)}] fetching {source}")
        tree = materialize(
            spec,
            package=options.package,
            pip=options.pip,
            repo=options.repo,
            use_cache=options.use_cache,
        )
        cached = _cache_file(tree) if options.use_cache else None
        if cached is not None and cached.is_file():
            snap = Snapshot.read(cached)
            snap.source = source
            results[i] = Loaded(snap, saved=False)
            continue
        pending.append((i, tree, cached))
    if pending and options.progress is not None:
        options.progress(f"building {len(pending)} API snapshot(s)")
    if len(pending) > 1 and options.jobs > 1 and _can_fork():
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(min(options.jobs, len(pending)), mp_context=ctx) as pool:
            futures = [(i, c, pool.submit(_build, t, sources[i])) for i, t, c in pending]
            built = [(i, c, f.result()) for i, c, f in futures]
    else:
        built = [(i, c, _build(t, sources[i])) for i, t, c in pending]
    for i, cached, snap in built:
        _store(snap, cached)
        results[i] = Loaded(snap, saved=False)
    return [r for r in results if r is not None]


def bundled_config_for(*snapshots: Snapshot) -> TierConfig | None:
    """The bundled tiers file for a snapshot's distribution (e.g. ``ai-dynamo``), if any."""
    names = bundled_tiers()
    for snap in snapshots:
        for dist in sorted(snap.distributions):
            if normalize_name(dist) in names:
                return load_tiers(normalize_name(dist))
    return None


@dataclass(frozen=True, slots=True)
class Governance:
    """Tier configuration and waivers for a comparison."""

    tiers: TierConfig | None = None
    default_tier: Tier | None = None
    periods: dict[Tier, int | None] = field(default_factory=dict)
    waivers: tuple[Waiver, ...] = ()
    today: dt.date | None = None

    @property
    def explicit(self) -> bool:
        return self.tiers is not None or self.default_tier is not None

    def config(self, *snapshots: Snapshot) -> TierConfig:
        base = self.tiers or bundled_config_for(*snapshots) or TierConfig()
        return base.with_overrides(self.default_tier, self.periods)


def _tiered(loaded: Loaded, config: TierConfig, explicit: bool) -> Snapshot:
    if loaded.saved and not explicit:
        return loaded.snapshot
    return config.resolve(loaded.snapshot)


def snapshot_api(
    source: str, options: LoadOptions | None = None, governance: Governance | None = None
) -> Snapshot:
    """The tiered snapshot of one source."""
    governance = governance or Governance()
    (loaded,) = load_snapshots([source], options)
    config = governance.config(loaded.snapshot)
    return _tiered(loaded, config, governance.explicit)


def compare_snapshots(
    old: Snapshot,
    new: Snapshot,
    config: TierConfig,
    governance: Governance,
    history: DeprecationHistory | None = None,
) -> ApiReport:
    findings = diff_snapshots(old, new)
    return apply_policy(
        findings,
        old,
        new,
        config.periods,
        governance.waivers,
        today=governance.today,
        history=history,
        tiers_origin=config.origin,
    )


def compare_apis(
    old_source: str,
    new_source: str,
    options: LoadOptions | None = None,
    governance: Governance | None = None,
) -> ApiReport:
    """Compare two sources under the tier policy (library entry point of ``api diff``)."""
    governance = governance or Governance()
    old, new = load_snapshots([old_source, new_source], options)
    config = governance.config(new.snapshot, old.snapshot)
    return compare_snapshots(
        _tiered(old, config, governance.explicit),
        _tiered(new, config, governance.explicit),
        config,
        governance,
    )


# -- history ----------------------------------------------------------------------------------

_PRE = re.compile(r"\d(?:a|b|c|rc|alpha|beta)\d*|\.?dev\d*", re.IGNORECASE)


def release_versions(project: str, pip: PipOptions | None = None) -> list[str]:
    """Released versions of a project, oldest first, as ``pip index versions`` lists them."""
    cmd = [sys.executable, "-m", "pip", "index", "versions", project, "--pre"]
    cmd += ["--disable-pip-version-check", *(pip or PipOptions()).args()]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    line = next((ln for ln in proc.stdout.splitlines() if "versions:" in ln), None)
    if proc.returncode != 0 or line is None:
        detail = (proc.stderr.strip().splitlines() or ["no versions found"])[-1]
        raise InputError(f"cannot list versions of {project}: {detail}")
    versions = [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return sorted(versions, key=version_key)


def select_versions(
    versions: Sequence[str], start: str | None, end: str | None, pre: bool = False
) -> list[str]:
    """Versions between ``start`` and ``end`` (inclusive), oldest first."""
    lo = version_key(start) if start else None
    hi = version_key(end) if end else None
    out = []
    for v in sorted(set(versions), key=version_key):
        if not pre and _PRE.search(v):
            continue
        key = version_key(v)
        if (lo is None or key >= lo) and (hi is None or key <= hi):
            out.append(v)
    for bound in (start, end):
        if bound and bound not in out and bound in versions:
            out.append(bound)
    return sorted(set(out), key=version_key)


@dataclass(slots=True)
class HistoryReport:
    """Consecutive comparisons over a project's releases."""

    project: str
    steps: list[ApiReport]
    history: DeprecationHistory

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "apiVersion": API_VERSION,
            "kind": HISTORY_KIND,
            "project": self.project,
            "verdict": "pass" if self.ok else "fail",
            "releases": list(self.history.releases),
            "deprecations": dict(sorted(self.history.first_seen.items())),
            "steps": [
                {
                    "old": s.old.version,
                    "new": s.new.version,
                    "verdict": "pass" if s.ok else "fail",
                    "summary": s.summary(),
                    "findings": [f.to_dict() for f in s.findings if f.breaking],
                }
                for s in self.steps
            ],
        }


def history_api(
    project: str,
    versions: Sequence[str],
    options: LoadOptions | None = None,
    governance: Governance | None = None,
) -> HistoryReport:
    """Compare every consecutive pair of ``versions`` of a PyPI project, tracking deprecations."""
    if len(versions) < 2:
        raise InputError(f"{project}: need at least two releases to compare, got {len(versions)}")
    governance = governance or Governance()
    sources = [f"pypi:{project}=={v}" for v in versions]
    loaded = load_snapshots(sources, options)
    config = governance.config(*(item.snapshot for item in loaded))
    snaps = [config.resolve(item.snapshot) for item in loaded]
    history = DeprecationHistory()
    history.record(snaps[0])
    steps = []
    for old, new in itertools.pairwise(snaps):
        history.record(new)
        steps.append(compare_snapshots(old, new, config, governance, history))
    return HistoryReport(project, steps, history)
