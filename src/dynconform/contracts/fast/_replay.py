"""Replay a raw event-plane capture through the fast validator, with every rule on."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dynconform.contracts._io import InputError, iter_raw_frames
from dynconform.contracts._model import Violation
from dynconform.contracts.fast._engine import FastValidator, FrameRun

#: Captures up to this size are read once and replayed from memory.
PRELOAD_BYTES = 256 * 1024 * 1024
#: Frames validated between two looks at the clock.
CHUNK = 512


@dataclass(frozen=True, slots=True)
class ReplayProgress:
    """Where a replay stands: events so far, seconds spent and violations by rule."""

    events: int
    seconds: float
    violations: dict[str, int]

    @property
    def rate(self) -> float:
        """Events per second so far."""
        return self.events / self.seconds if self.seconds > 0 else 0.0


@dataclass(slots=True)
class ReplaySummary:
    """The outcome of a replay."""

    source: str
    events: int = 0
    #: complete passes over the capture
    passes: int = 0
    seconds: float = 0.0
    violations_by_rule: Counter[str] = field(default_factory=Counter)
    checked: Counter[str] = field(default_factory=Counter)
    #: the first violations found (``keep`` of them), each with its pass
    violations: list[tuple[int, Violation]] = field(default_factory=list)
    #: events that the compiled types rejected and the reference validator judged
    fallbacks: int = 0
    stopped: str = "end"

    @property
    def ok(self) -> bool:
        return not self.violations_by_rule

    @property
    def events_per_second(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "valid": self.ok,
            "events": self.events,
            "passes": self.passes,
            "seconds": round(self.seconds, 6),
            "events_per_second": round(self.events_per_second, 1),
            "stopped": self.stopped,
            "fallbacks": self.fallbacks,
            "checked": dict(sorted(self.checked.items())),
            "violation_count": sum(self.violations_by_rule.values()),
            "violations_by_rule": dict(sorted(self.violations_by_rule.items())),
            "violations": [{"pass": n, **v.to_dict()} for n, v in self.violations],
        }


class _Frames:
    """The frames of a capture: read once when small, streamed on every pass otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise InputError(f"{path}: no such file") from None
        except OSError as exc:
            raise InputError(f"{path}: cannot read ({exc.strerror})") from None
        if path.is_dir():
            raise InputError(f"{path}: is a directory")
        self.cached: list[tuple[str, bytes]] | None = None
        if size <= PRELOAD_BYTES:
            self.cached = list(self._read())
            if not self.cached:
                raise InputError(f"{path}: no frames")

    def _read(self) -> Iterator[tuple[str, bytes]]:
        with self.path.open("rb") as stream:
            for frame in iter_raw_frames(stream, str(self.path)):
                yield frame.subject, frame.data

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        return iter(self.cached) if self.cached is not None else self._read()


def _chunks(frames: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    chunk: list[tuple[str, bytes]] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == CHUNK:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def replay(
    path: str | Path,
    *,
    loops: int = 1,
    duration: float | None = None,
    keep: int = 100,
    on_progress: Callable[[ReplayProgress], None] | None = None,
    every: float = 0.25,
    validator: FastValidator | None = None,
) -> ReplaySummary:
    """Validate every frame of a raw event-plane capture with the schemas and all rules.

    Each pass over the capture is a stream of its own (its sequences start again), so stream
    rules start afresh on every pass. ``loops=0`` repeats until ``duration`` seconds have
    passed (or Ctrl-C). ``on_progress`` is called at most every ``every`` seconds. Ctrl-C
    stops the replay and returns what was validated so far (``stopped == "interrupted"``).
    """
    if loops < 0:
        raise ValueError("loops must be >= 0")
    if duration is not None and duration <= 0:
        raise ValueError("duration must be > 0")
    frames = _Frames(Path(path))
    fast = validator if validator is not None else FastValidator()
    fast.frames()  # compile the types before the clock starts
    summary = ReplaySummary(source=str(path))
    clock = _Clock(duration, every, on_progress)
    try:
        while loops == 0 or summary.passes < loops:
            run = fast.frames(keep=max(0, keep - len(summary.violations)))
            try:
                complete = _one_pass(run, frames, summary, clock)
            finally:
                _merge(summary, run, summary.passes + 1)
            if not complete:
                summary.stopped = "duration"
                break
            summary.passes += 1
    except KeyboardInterrupt:
        summary.stopped = "interrupted"
    summary.seconds = time.perf_counter() - clock.start
    return summary


class _Clock:
    def __init__(
        self,
        duration: float | None,
        every: float,
        on_progress: Callable[[ReplayProgress], None] | None,
    ) -> None:
        self.start = time.perf_counter()
        self.deadline = None if duration is None else self.start + duration
        self.every = every
        self.next_report = self.start + every
        self.on_progress = on_progress


def _one_pass(run: FrameRun, frames: _Frames, summary: ReplaySummary, clock: _Clock) -> bool:
    """Validate one pass; ``False`` when the duration ran out before its end (a pass whose
    last chunk was validated is complete, even if the time ran out during that chunk)."""
    for chunk in _chunks(frames):
        if clock.deadline is not None and time.perf_counter() >= clock.deadline:
            return False
        run.feed_all(chunk)
        now = time.perf_counter()
        if clock.on_progress is not None and now >= clock.next_report:
            clock.next_report = now + clock.every
            live = summary.violations_by_rule + run.violations
            clock.on_progress(ReplayProgress(summary.events + run.count, now - clock.start, live))
    return True


def _merge(summary: ReplaySummary, run: FrameRun, number: int) -> None:
    report = run.finish()
    summary.events += report.instances
    summary.fallbacks += run.fallbacks
    summary.checked.update(report.checked)
    summary.violations += [(number, v) for v in report.violations]
    summary.violations_by_rule.update(run.violations)
