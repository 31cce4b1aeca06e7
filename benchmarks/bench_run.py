"""Wall time of a conformance run (core + streaming + kv-routing), system start included.

    python benchmarks/bench_run.py                          # the reference, median of 3
    python benchmarks/bench_run.py --dynamo-version 1.6.1   # also real Dynamo (file topology)

Each run is a fresh process (``dynconform run`` through its library entry point), so the
time covers interpreter start, starting the system under test, the taps, every check and
the report. Targets on a 2-core machine: 30 s on the reference, 60 s on real Dynamo.
Results go to ``--out`` (``run.json`` and ``run.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"reference": 30.0, "dynamo": 60.0}
PROGRAM = """
import sys
from pathlib import Path
from dynconform.conformance import RunConfig, run_suite
backend, version, report = sys.argv[1], sys.argv[2] or None, Path(sys.argv[3])
outcome = run_suite(
    RunConfig(backend=backend, dynamo_version=version, report_dir=report), progress=False
)
sys.exit(outcome.exit_code)
"""


PROVISION = (
    "import sys; from dynconform.conformance._provision import provision_dynamo; "
    "provision_dynamo(sys.argv[1])"
)


def one_run(backend: str, version: str) -> tuple[float, int]:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", PROGRAM, backend, version, tmp],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"{backend} run failed ({done.returncode}): {done.stderr[-500:]}")
    return elapsed, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dynamo-version", help="also time real Dynamo (file topology)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    backends = [("reference", "")]
    if args.dynamo_version:
        backends.append(("dynamo", args.dynamo_version))
    rows = []
    for backend, version in backends:
        if backend == "dynamo":  # provision the environment first, untimed
            subprocess.run(
                [sys.executable, "-c", PROVISION, version], check=True, capture_output=True
            )
        times, codes = [], []
        for _ in range(args.rounds):
            elapsed, code = one_run(backend, version)
            times.append(elapsed)
            codes.append(code)
        median = statistics.median(times)
        rows.append(
            {
                "backend": backend,
                "version": version or None,
                "seconds": [round(t, 2) for t in times],
                "median": round(median, 2),
                "exit_codes": codes,
                "target": TARGETS[backend],
                "met": median <= TARGETS[backend],
            }
        )
    result = {
        "date": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "profiles": ["core", "streaming", "kv-routing"],
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "run.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = ["| backend | runs (s) | median (s) | target (s) | met |", "|---|---|---|---|---|"]
    for row in rows:
        runs = ", ".join(f"{t:.1f}" for t in row["seconds"])
        lines.append(
            f"| {row['backend']} {row['version'] or ''} | {runs} | {row['median']:.1f} "
            f"| {row['target']:.0f} | {'yes' if row['met'] else 'no'} |"
        )
    table = "\n".join(lines) + "\n"
    (args.out / "run.md").write_text(table)
    sys.stdout.write(table)
    return 0 if all(row["met"] for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
