"""``dynconform tap --replay``: summaries, JSON, loops, progress and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import msgpack
import pytest

from dynconform.cli._common import Parser
from dynconform.cli.tap_cmd import add_tap
from dynconform.contracts._io import iter_raw_frames

RAW = Path(__file__).parent / "fixtures" / "ai-dynamo-1.6.1" / "etcd_nats" / "event_plane_raw.bin"
FRAMES = 3444


def tap(*argv: str) -> int:
    parser = Parser(prog="dynconform")
    add_tap(parser.add_subparsers(dest="command", parser_class=Parser))
    args = parser.parse_args(["tap", *argv])
    code: int = args.func(args)
    return code


def _write(path: Path, frames: list[tuple[str, bytes]]) -> Path:
    with path.open("wb") as out:
        for subject, data in frames:
            raw = subject.encode()
            out.write(len(raw).to_bytes(2, "big") + raw + len(data).to_bytes(4, "big") + data)
    return path


def _broken_capture(tmp_path: Path) -> Path:
    """The capture with one forward-pass-metrics envelope's sequence pushed ahead by 5."""
    with RAW.open("rb") as stream:
        frames = [(f.subject, f.data) for f in iter_raw_frames(stream)]
    for i, (subject, data) in enumerate(frames):
        envelope = msgpack.unpackb(data)
        if envelope["topic"] == "forward-pass-metrics" and envelope["sequence"] == 10:
            envelope["sequence"] += 5
            frames[i] = (subject, msgpack.packb(envelope))
            break
    return _write(tmp_path / "broken.bin", frames)


def test_replay_of_the_real_capture_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    assert tap("--replay", str(RAW)) == 0
    captured = capsys.readouterr()
    first = captured.out.splitlines()[0]
    assert first.startswith(f"{RAW}: {FRAMES:,} events in ")
    assert first.endswith("1 pass: valid")
    assert "events.kv-events 496" in captured.out
    assert captured.err == ""  # no progress line when stderr is not a terminal


def test_json_summary_counts_events_rates_and_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert tap("--replay", str(RAW), "--loop", "3", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["events"] == 3 * FRAMES
    assert summary["passes"] == 3
    assert summary["events_per_second"] > 0
    assert summary["violations_by_rule"] == {}
    assert summary["checked"]["events.message"] == 3 * FRAMES
    assert summary["fallbacks"] == 0
    assert summary["stopped"] == "end"


def test_violations_exit_1_and_are_counted_by_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = _broken_capture(tmp_path)
    assert tap("--replay", str(broken), "--loop", "2", "--json", "--max", "1") == 1
    summary = json.loads(capsys.readouterr().out)
    # one jump ahead, then one step back, in each of the two passes
    assert summary["violations_by_rule"] == {"kv.sequence-monotonic": 4}
    assert len(summary["violations"]) == 1
    assert summary["violations"][0]["pass"] == 1
    assert summary["violations"][0]["pointer"] == "/decoded/sequence"
    assert tap("--replay", str(broken), "--max", "1") == 1
    text = capsys.readouterr().out
    assert "INVALID, 2 violation(s)" in text
    assert "kv.sequence-monotonic: 2" in text
    assert "... 1 more" in text


def test_duration_stops_an_endless_loop(capsys: pytest.CaptureFixture[str]) -> None:
    assert tap("--replay", str(RAW), "--loop", "0", "--duration", "0.3", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["stopped"] == "duration"
    assert summary["events"] > 0
    assert summary["events"] == summary["passes"] * FRAMES + summary["events"] % FRAMES


def test_a_pass_whose_last_chunk_ran_is_counted(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One chunk per pass: the time runs out while a chunk is validated, and that pass is
    # complete (its events are counted, so the pass must be too).
    monkeypatch.setattr("dynconform.contracts.fast._replay.CHUNK", FRAMES + 1)
    assert tap("--replay", str(RAW), "--loop", "0", "--duration", "0.3", "--json") == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["passes"] > 0
    assert summary["events"] == summary["passes"] * FRAMES


def test_progress_goes_to_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    monkeypatch.setattr("dynconform.contracts.fast._replay.CHUNK", 64)
    assert tap("--replay", str(RAW), "--loop", "0", "--duration", "0.6") == 0
    written = terminal.getvalue()
    assert "events/s" in written
    assert written.startswith("\r")
    assert written.endswith("\r\x1b[K")  # the status line is cleared before the summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--replay", "x.bin", "--discovery", "etcd://127.0.0.1:2379"], "does not go with"),
        ([], "give --discovery URI, --nats URL or --zmq ENDPOINT, or --replay FILE"),
        (["--replay", str(RAW), "--report", "r.json"], "--report goes with a live tap"),
        (["--discovery", "redis://x"], "expected file:///DIR or etcd://HOST:PORT"),
        (["--discovery", "file:///no/such/dir"], "is not a directory"),
        (["--nats", "localhost:4222"], "expected nats://HOST:PORT"),
        (["--zmq", "127.0.0.1:5555"], "expected tcp://HOST:PORT"),
        (["--zmq", "tcp://127.0.0.1:5555", "--scope", "a//b"], "expected NAMESPACE"),
        (["--zmq", "tcp://127.0.0.1:5555", "--every", "0"], "--every must be a number"),
        (["--zmq", "tcp://127.0.0.1:5555", "--every", "inf"], "--every must be a number"),
        (["--replay", str(RAW), "--loop", "-1"], "--loop must be >= 0"),
        (["--replay", str(RAW), "--duration", "0"], "--duration must be a number of seconds > 0"),
        (["--replay", str(RAW), "--duration", "nan"], "--duration must be a number"),
        (["--discovery", ""], "give --discovery URI, --nats URL or --zmq ENDPOINT"),
        (["--zmq", ""], "ZMQ endpoint '': expected tcp://HOST:PORT"),
        (["--zmq", "tcp://127.0.0.1:5555", "--scope", ""], "scope '': expected NAMESPACE"),
        (["--replay", "missing.bin"], "missing.bin: no such file"),
    ],
)
def test_usage_and_input_errors_are_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert tap(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("dynconform: error: ")
    assert message in err[0]


@pytest.mark.parametrize(
    "argv", [["--replay", ""], ["--zmq", "tcp://127.0.0.1:5555", "--report", ""]]
)
def test_an_empty_path_is_a_parse_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        tap(*argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err == (
        f"dynconform tap: error: argument {argv[-2]}: an empty string is not a path (see --help)\n"
    )


def test_a_truncated_capture_is_an_input_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "cut.bin"
    truncated.write_bytes(RAW.read_bytes()[:1000])
    assert tap("--replay", str(truncated)) == 2
    assert f"{truncated}: truncated frame at byte " in capsys.readouterr().err


@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_a_live_tap_checks_its_report_path_before_it_starts(
    where: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    report = tmp_path if where == "a directory" else blocker / "tap.json"
    # nothing listens on the endpoint: the tap would wait for --duration if it started
    argv = ["--zmq", "tcp://127.0.0.1:9", "--duration", "30", "--report", str(report)]
    assert tap(*argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"dynconform: error: --report {report}: ")
