"""``dynconform tap``: validate every event of a stream with the contracts and all rules."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from dynconform.cli._common import COMMANDS, UsageError, fail, nonempty
from dynconform.conformance import (
    DEFAULT_SCOPE,
    LiveProgress,
    LiveTap,
    LiveTapConfig,
    LiveTapError,
)
from dynconform.contracts import InputError
from dynconform.contracts.fast import ReplayProgress, ReplaySummary, replay
from dynconform.reports import TapReport, redact, report_json, write_tap_report

EXIT_OK, EXIT_INVALID, EXIT_INTERRUPTED = 0, 1, 130


def add_tap(sub: Any) -> None:
    p = sub.add_parser(
        "tap",
        help=COMMANDS["tap"].summary,
        description=(
            "Validate every event-plane message against the events contracts and all their "
            "rules (sequence gaps and duplicates, hash chains, removed-before-stored, ...) at "
            "line rate. Live: attach to a running deployment through its discovery store "
            "(--discovery), which announces the ZMQ publishers and NATS subjects, and "
            "validate every event and every discovery record put until --duration or Ctrl-C; "
            "--report writes a TapReport (JSON, or YAML for .yaml). --replay reads a raw "
            "event-plane capture instead; each pass over it is a stream of its own. Live "
            "rates and violation counts go to stderr: one line rewritten in place on a "
            "terminal, a line every --every seconds otherwise. Exit 0 no violation, "
            "1 violations, 2 usage or input error, 130 interrupted (the report is written)."
        ),
        epilog=(
            "examples:\n"
            "  dynconform tap --discovery file:///tmp/dynamo_store_kv --duration 60\n"
            "  dynconform tap --discovery etcd://127.0.0.1:2379 --nats nats://127.0.0.1:4222 \\\n"
            "      --report tap.yaml\n"
            "  dynconform tap --zmq tcp://127.0.0.1:5557 --scope dynamo/backend/generate --json\n"
            "  dynconform tap --replay event_plane_raw.bin\n"
            "  dynconform tap --replay event_plane_raw.bin --loop 0 --duration 60 --json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--replay",
        type=nonempty,
        metavar="FILE",
        help="raw event-plane capture (u16 subject length, subject, u32 data length, data)",
    )
    p.add_argument(
        "--discovery",
        metavar="URI",
        help="discovery store to watch: etcd://HOST:PORT or file://DIR (DYN_FILE_KV)",
    )
    p.add_argument("--nats", metavar="URL", help="NATS server of the event plane: nats://HOST:PORT")
    p.add_argument(
        "--zmq",
        metavar="ENDPOINT",
        nargs="+",
        action="extend",
        default=[],
        help="ZMQ publishers to connect besides those discovery announces (tcp://HOST:PORT)",
    )
    p.add_argument(
        "--scope",
        default=DEFAULT_SCOPE,
        metavar="NS/COMPONENT/ENDPOINT",
        help=f"subject scope of --zmq publishers without a discovery record "
        f"(default {DEFAULT_SCOPE})",
    )
    p.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this many seconds")
    p.add_argument(
        "--report", type=nonempty, metavar="FILE", help="write the TapReport here (live)"
    )
    p.add_argument(
        "--every",
        type=float,
        metavar="SECONDS",
        help="progress interval (default 1 on a terminal, 5 otherwise)",
    )
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


class _StatusLine:
    """Progress on stderr: one line rewritten in place on a terminal, lines otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.terminal = stream.isatty()
        self.shown = False

    def _line(self, text: str, *, keep: bool) -> None:
        if self.terminal:
            self.stream.write(f"\r{text}\x1b[K" + ("\n" if keep else ""))
            self.shown = not keep
        else:
            self.stream.write(f"dynconform tap: {text}\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.terminal and self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


class _Progress(_StatusLine):
    """Replay counts (shown on a terminal only)."""

    def __call__(self, progress: ReplayProgress) -> None:
        violations = sum(progress.violations.values())
        self._line(
            f"{progress.events:,} events  {progress.rate:,.0f} events/s  "
            f"{violations:,} violation{'s' if violations != 1 else ''}",
            keep=False,
        )


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
    live = bool(args.nats or args.zmq or args.discovery)
    if args.duration is not None and not (math.isfinite(args.duration) and args.duration > 0):
        return fail("--duration must be a number of seconds > 0")
    if args.max < 0:
        return fail("--max must be >= 0")
    if args.every is not None and not (math.isfinite(args.every) and args.every > 0):
        return fail("--every must be a number of seconds > 0")
    if live and args.replay is not None:
        return fail("--replay reads a capture; it does not go with --discovery/--nats/--zmq")
    if live:
        return _live(args)
    if args.replay is None:
        return fail("give --discovery URI, --nats URL or --zmq ENDPOINT, or --replay FILE")
    if args.report is not None:
        return fail("--report goes with a live tap (--discovery/--nats/--zmq)")
    if args.loop < 0:
        return fail("--loop must be >= 0")
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


class _LiveProgress(_StatusLine):
    """Live counts, and the channels a live tap attached to."""

    def attached(self, tap: LiveTap) -> None:
        channels = len(tap.zmq.handshaken) if tap.zmq is not None else 0
        parts = [f"{channels} ZMQ publisher{'s' if channels != 1 else ''}"]
        if tap.nats is not None:
            parts.append(f"NATS {tap.config.nats}")
        if tap.discovery is not None:
            parts.append(f"discovery {tap.config.discovery}")
        self._line("attached: " + redact(", ".join(parts)), keep=True)

    def __call__(self, progress: LiveProgress) -> None:
        n = progress.violations
        self._line(
            f"{progress.seconds:,.0f} s  {progress.events:,} events  {progress.rate:,.0f} "
            f"events/s  {progress.records:,} records  {n:,} violation{'s' if n != 1 else ''}",
            keep=False,
        )


def format_live(report: TapReport, limit: int) -> str:
    """The report of a live tap for people."""
    total = report.violation_count
    verdict = "valid" if report.passed else f"INVALID, {total:,} violation(s)"
    where = redact(
        ", ".join(
            f"{k} {v if isinstance(v, str) else ' '.join(v)}" for k, v in report.source.items()
        )
    )
    records = report.record_puts + report.record_deletes
    lines = [
        f"{where}: {report.events:,} events and {records:,} discovery records in "
        f"{report.seconds:.1f} s ({report.events_per_second:,.0f} events/s): {verdict}"
    ]
    if report.stopped != "end":
        lines.append(f"  stopped: {report.stopped}")
    for publisher in report.by_publisher:
        first = publisher.first_sequence
        since = "" if first is None else f" from sequence {first}"
        lines.append(
            f"  publisher {publisher.publisher_id} {publisher.topic}: "
            f"{publisher.events:,} events{since}"
        )
    kinds = ", ".join(
        f"{kind} {counts.get('puts', 0)} put/{counts.get('deletes', 0)} deleted"
        for kind, counts in sorted(report.by_record_type.items())
    )
    if kinds:
        lines.append(f"  records: {kinds}")
    checked = ", ".join(f"{name} {n:,}" for name, n in sorted(report.by_contract.items()))
    lines.append(f"  checked: {checked or 'nothing'}")
    for rule, n in sorted(report.violations_by_rule.items()):
        lines.append(f"  {rule}: {n:,}")
    for v in report.violations[:limit]:
        at = f" {v.where}" if v.where else ""
        number = "" if v.index is None else f" #{v.index}"
        lines.append(
            f"  - {v.source}{number}{at}: [{v.contract}] {v.rule} {v.pointer}: {v.message}"
        )
    hidden = total - min(limit, len(report.violations))
    if hidden > 0:
        lines.append(f"  ... {hidden:,} more (see --report or --json)")
    lines += [f"  note: {note}" for note in report.notes]
    return "\n".join(lines)


def _report_path(value: str) -> Path:
    """The ``--report`` file, checked before a tap starts (so that a long tap does not end
    unable to write it); its directory is created."""
    path = Path(value)
    if path.is_dir():
        raise UsageError(f"--report {value}: is a directory")
    for parent in path.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"--report {value}: {parent} is not a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"--report {value}: cannot create its directory ({exc.strerror})"
        ) from None
    if not os.access(path.parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(f"--report {value}: not writable")
    return path


def _live(args: argparse.Namespace) -> int:
    try:
        report_path = _report_path(args.report) if args.report is not None else None
    except UsageError as exc:
        return fail(str(exc))
    config = LiveTapConfig(
        discovery=args.discovery,
        nats=args.nats,
        zmq=tuple(args.zmq),
        scope=args.scope,
        keep=max(args.max, 100),
    )
    progress = _LiveProgress(sys.stderr)
    every = args.every if args.every is not None else (1.0 if progress.terminal else 5.0)
    try:
        tap = LiveTap(config)
        report = tap.run(
            args.duration, on_progress=progress, every=every, on_attached=progress.attached
        )
    except LiveTapError as exc:
        return fail(str(exc))
    finally:
        progress.clear()
    if args.json:
        sys.stdout.write(report_json(report))
    else:
        print(format_live(report, args.max))
    if report_path is not None:
        try:
            write_tap_report(report, report_path)
        except OSError as exc:
            return fail(f"--report {args.report}: cannot write it ({exc.strerror})")
    if report.stopped == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_OK if report.passed else EXIT_INVALID
