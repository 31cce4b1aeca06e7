"""Tiered API verdict time against plain griffe, on the same extracted wheels.

    python benchmarks/stability_verdict.py pypi:ai-dynamo==1.5.1 pypi:ai-dynamo==1.6.1

Both sides read the same files: PyPI releases are fetched and extracted once (dynconform's
cache), then timed are (1) griffe ``load`` of both trees plus ``find_breaking_changes``,
(2) ``dynconform.stability.compare_apis`` with an empty snapshot cache (snapshots, tiers,
diff, policy), (3) the same again with the snapshots cached. Wall and CPU seconds are
reported; targets: (2) <= 1.25x (1), (3) <= 0.15x (2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import griffe

from dynconform.stability import LoadOptions, compare_apis, parse_source
from dynconform.stability._sources import materialize


def _timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    best_wall, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(runs):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_wall = min(best_wall, time.perf_counter() - wall)
        best_cpu = min(best_cpu, time.process_time() - cpu)
    return best_wall, best_cpu, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old")
    parser.add_argument("new")
    parser.add_argument("--runs", type=int, default=1, help="best of N (default 1)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel snapshot builds")
    args = parser.parse_args()

    trees = [materialize(parse_source(s)) for s in (args.old, args.new)]
    dirs = [str(t.search_paths[0]) for t in trees]
    package = trees[0].package

    def plain() -> int:
        kw: dict[str, Any] = {"allow_inspection": False, "force_inspection": False}
        old = griffe.load(package, search_paths=[dirs[0]], **kw)
        new = griffe.load(package, search_paths=[dirs[1]], **kw)
        return len(list(griffe.find_breaking_changes(old, new)))

    options = LoadOptions(package=package, jobs=args.jobs)
    with tempfile.TemporaryDirectory() as cache:
        os.environ["DYNCONFORM_CACHE"] = cache

        def first() -> Any:
            for f in Path(cache).glob("snapshots/*.json"):
                f.unlink()
            return compare_apis(dirs[0], dirs[1], options)

        g_wall, g_cpu, g_count = _timed(plain, args.runs)
        f_wall, f_cpu, report = _timed(first, args.runs)
        c_wall, c_cpu, _ = _timed(lambda: compare_apis(dirs[0], dirs[1], options), args.runs)
    result = {
        "old": args.old,
        "new": args.new,
        "griffe": {"wall_s": round(g_wall, 3), "cpu_s": round(g_cpu, 3), "breakages": g_count},
        "dynconform_first": {"wall_s": round(f_wall, 3), "cpu_s": round(f_cpu, 3)},
        "dynconform_cached": {"wall_s": round(c_wall, 3), "cpu_s": round(c_cpu, 3)},
        "ratio_first_vs_griffe": round(f_wall / g_wall, 3),
        "ratio_cached_vs_first": round(c_wall / f_wall, 3),
        "findings": len(report.findings),
        "breaking": sum(1 for f in report.findings if f.breaking),
        "note": "first-run CPU counts this process only; parallel builds run in children",
    }
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
