"""``dynconform tap``: validate every event of a stream with the contracts and all rules."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from dynconform.cli._common import fail
from dynconform.contracts import InputError
from dynconform.contracts.fast import ReplayProgress, ReplaySummary, replay

EXIT_OK, EXIT_INVALID = 0, 1
LIVE_NOT_YET = "live attach (--nats/--zmq/--discovery) is not available yet; use --replay FILE"


def add_tap(sub: Any) -> None:
    p = sub.add_parser(
        "tap",
        help="validate every event of a capture with the contracts and all stream rules",
        description=(
            "Validate every event-plane message against the events contracts and all their "
            "rules (sequence gaps and duplicates, hash chains, removed-before-stored, ...) at "
            "line rate. --replay reads a raw event-plane capture; each pass over it is a "
            "stream of its own. Live rates and violation counts go to stderr when it is a "
            "terminal. Exit 0 no violation, 1 violations, 2 usage or input error."
        ),
        epilog=(
            "examples:\n"
            "  dynconform tap --replay event_plane_raw.bin\n"
            "  dynconform tap --replay event_plane_raw.bin --loop 0 --duration 60 --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--replay",
        metavar="FILE",
        help="raw event-plane capture (u16 subject length, subject, u32 data length, data)",
    )
    p.add_argument("--nats", metavar="URL", help="attach to NATS (not available yet)")
    p.add_argument(
        "--zmq", metavar="ENDPOINT", help="attach to a ZMQ event plane (not available yet)"
    )
    p.add_argument(
        "--discovery", metavar="URI", help="etcd://... or file://DIR (not available yet)"
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument(
        "--loop",
        type=int,
        default=1,
        metavar="N",
        help="replay the capture N times (default 1; 0: until --duration or Ctrl-C)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--max", type=int, default=20, metavar="N", help="violations to show (default 20)"
    )
    p.set_defaults(func=cmd_tap)


class _Progress:
    """One status line on a terminal, rewritten in place."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.shown = False

    def __call__(self, progress: ReplayProgress) -> None:
        violations = sum(progress.violations.values())
        line = (
            f"{progress.events:,} events  {progress.rate:,.0f} events/s  "
            f"{violations:,} violation{'s' if violations != 1 else ''}"
        )
        self.stream.write(f"\r{line}\x1b[K")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def format_summary(summary: ReplaySummary, limit: int) -> str:
    """The summary of a replay for people."""
    total = sum(summary.violations_by_rule.values())
    verdict = "valid" if summary.ok else f"INVALID, {total:,} violation(s)"
    passes = f"{summary.passes} pass{'es' if summary.passes != 1 else ''}"
    lines = [
        f"{summary.source}: {summary.events:,} events in {summary.seconds:.2f} s "
        f"({summary.events_per_second:,.0f} events/s), {passes}: {verdict}"
    ]
    if summary.stopped != "end":
        lines.append(f"  stopped: {summary.stopped}")
    if summary.fallbacks:
        lines.append(f"  judged by the reference validator: {summary.fallbacks:,} event(s)")
    checked = ", ".join(f"{name} {n:,}" for name, n in sorted(summary.checked.items()))
    lines.append(f"  checked: {checked}")
    for rule, n in sorted(summary.violations_by_rule.items()):
        lines.append(f"  {rule}: {n:,}")
    for number, violation in summary.violations[:limit]:
        lines.append(f"  - pass {number}: {violation}")
    hidden = total - min(limit, len(summary.violations))
    if hidden > 0:
        lines.append(f"  ... {hidden:,} more (use --max or --json)")
    return "\n".join(lines)


def cmd_tap(args: argparse.Namespace) -> int:
    if args.nats or args.zmq or args.discovery:
        return fail(LIVE_NOT_YET)
    if args.replay is None:
        return fail("give --replay FILE (" + LIVE_NOT_YET.split(";")[0] + ")")
    if args.loop < 0:
        return fail("--loop must be >= 0")
    if args.duration is not None and args.duration <= 0:
        return fail("--duration must be > 0")
    if args.max < 0:
        return fail("--max must be >= 0")
    progress = _Progress(sys.stderr) if sys.stderr.isatty() else None
    try:
        summary = replay(
            args.replay,
            loops=args.loop,
            duration=args.duration,
            keep=args.max,
            on_progress=progress,
        )
    except InputError as exc:
        return fail(str(exc))
    finally:
        if progress is not None:
            progress.clear()
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(format_summary(summary, args.max))
    return EXIT_OK if summary.ok else EXIT_INVALID
