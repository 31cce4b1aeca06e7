"""The live tap: attach through discovery or to explicit publishers, validate every event and
record with all rules, count, report; against fake publishers and the reference stack."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgpack
import pytest
from conformance_helpers import write_records
from live_tap_helpers import (
    RECORDS,
    SCOPE,
    capture_frames,
    publisher,
    wait_until,
    with_sequence,
    workload,
    zmq_parts,
)

from dynconform.cli import main
from dynconform.conformance import LiveTap, LiveTapConfig, LiveTapError
from dynconform.reports import TapReport, load_report, write_tap_report
from dynconform.services import free_port

KV_SUBJECT = "namespace.dynamo.component.backend.endpoint.generate.kv-events"


def pump_until(tap: LiveTap, predicate: Any, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        if not tap.pump():
            time.sleep(0.01)
    return True


def test_explicit_zmq_publisher_carries_the_real_capture_without_violations() -> None:
    frames = capture_frames()
    with publisher() as pub, LiveTap(LiveTapConfig(zmq=(pub.endpoint,), scope=SCOPE)) as tap:
        assert tap.wait_attached(10)
        pub.send(frames)
        assert pump_until(tap, lambda: tap.events >= len(frames))
    report = tap.report("end")
    assert report.passed, report.violations[:3]
    assert report.events == len(frames)
    # the subjects are formed from the scope and the ZMQ topic frame, as in the capture
    assert report.by_subject == {
        s: sum(1 for f in frames if f[0] == s) for s in {f[0] for f in frames}
    }
    assert report.by_contract["events.kv-events"] == 496
    assert report.by_contract["events.message"] == len(frames)
    assert {(p.topic, p.first_sequence) for p in report.by_publisher} == {
        ("kv-events", 0),
        ("kv_metrics", 0),
        ("forward-pass-metrics", 0),
        ("active_sequences_events", 0),
    }
    assert sum(p.events for p in report.by_publisher) == len(frames)
    assert report.notes == ()
    assert report.source == {"zmq": [pub.endpoint], "scope": SCOPE}


def test_duplicates_gaps_and_framing_faults_are_violations() -> None:
    kv = capture_frames("kv-events", limit=6)
    subject, data = kv[2]
    broken = [*kv[:3], (subject, data), *kv[3:5], (subject, with_sequence(kv[5][1], 9))]
    with publisher() as pub, LiveTap(LiveTapConfig(zmq=(pub.endpoint,), scope=SCOPE)) as tap:
        assert tap.wait_attached(10)
        pub.send(broken)
        pub.socket.send_multipart(zmq_parts(kv[0][1], version=2))
        assert pump_until(tap, lambda: tap.events >= len(broken) + 1 and tap.violation_count() >= 4)
    report = tap.report("end")
    assert not report.passed
    by_rule = dict(report.violations_by_rule)
    # the repeated frame: its sequence again (duplicate) and a repeated KV event id; the
    # last frame jumps ahead; the version-2 frame is a framing fault and goes back to 0
    assert by_rule.pop("events.zmq-framing") == 1
    assert by_rule.pop("kv.sequence-monotonic") == 3
    assert set(by_rule) <= {"kv.event-id-monotonic", "kv.removed-after-stored"}
    sequence = [v for v in report.violations if v.rule == "kv.sequence-monotonic"]
    assert sequence[0].where == KV_SUBJECT
    assert sequence[0].index == 3
    assert "duplicate or reordered" in sequence[0].message
    assert "jumps from" in sequence[1].message
    framing = next(v for v in report.violations if v.rule == "events.zmq-framing")
    assert framing.source == "framing"
    assert "version 2" in framing.message


def test_discovery_finds_the_publisher_and_validates_records(tmp_path: Path) -> None:
    kv = capture_frames("kv-events", limit=40)
    bad = dict(RECORDS[5])  # an Endpoint record, its instance id spelled in upper-case hex
    bad["path"] = bad["path"][: -len("4300c7a4ec4251b8")] + "4300C7A4EC4251B8"
    with publisher() as pub:
        # the kv-events channel of the capture's publisher, at this endpoint
        publisher_id = msgpack.unpackb(kv[0][1])["publisher_id"]
        channel = dict(RECORDS[2])
        channel["path"] = channel["path"].rsplit("%2F", 1)[0] + f"%2F{publisher_id:x}"
        channel["value"] = {
            **channel["value"],
            "instance_id": publisher_id,
            "transport": {"kind": "Zmq", "config": {"endpoint": pub.endpoint}},
        }
        others = [r for r in RECORDS if r["value"]["type"] != "EventChannel"]
        write_records(tmp_path, [channel, *others, bad])
        config = LiveTapConfig(discovery=f"file://{tmp_path}", keep=50)
        with LiveTap(config) as tap:
            assert tap.wait_attached(10)
            assert pub.endpoint in tap.zmq.handshaken  # type: ignore[union-attr]
            pub.send(kv)
            assert pump_until(tap, lambda: tap.events >= len(kv))
            os.remove(tmp_path / bad["path"])
            assert pump_until(tap, lambda: tap.record_deletes == 1)
    report = tap.report("end")
    assert report.events == len(kv)
    assert report.by_subject == {KV_SUBJECT: len(kv)}
    assert report.record_puts == len(others) + 2
    assert report.by_record_type["Endpoint"] == {"puts": 3, "deletes": 1}
    assert report.by_contract["discovery.entry"] == len(others) + 2
    assert report.by_contract["discovery.mdc"] == 1
    # the bad key is the only violation, reported with the key it was found under
    assert set(report.violations_by_rule) == {"discovery.key-grammar"}
    (violation,) = report.violations
    assert (violation.source, violation.where) == ("discovery", bad["path"])
    (heard,) = report.channels
    assert heard["topic"] == "kv-events"
    assert heard["tapped"] is True
    assert heard["events"] == len(kv)


def test_a_publisher_joined_mid_stream_is_noted() -> None:
    kv = capture_frames("kv-events", limit=30)[10:]
    with publisher() as pub, LiveTap(LiveTapConfig(zmq=(pub.endpoint,))) as tap:
        assert tap.wait_attached(10)
        pub.send(kv)
        assert pump_until(tap, lambda: tap.events >= len(kv))
    report = tap.report("end")
    (note,) = report.notes
    assert "first heard at sequence 10" in note
    assert report.by_publisher[0].first_sequence == 10


def test_report_round_trips_through_json_and_yaml(tmp_path: Path) -> None:
    kv = capture_frames("kv-events", limit=5)
    with publisher() as pub, LiveTap(LiveTapConfig(zmq=(pub.endpoint,))) as tap:
        assert tap.wait_attached(10)
        pub.send([*kv, kv[-1]])
        assert pump_until(tap, lambda: tap.events >= 6)
    report = tap.report("interrupted")
    for name in ("tap.json", "tap.yaml"):
        path = write_tap_report(report, tmp_path / name)
        loaded = load_report(path)
        assert isinstance(loaded, TapReport)
        assert loaded.to_dict() == report.to_dict()
    data = report.to_dict()
    assert (data["apiVersion"], data["kind"], data["result"]) == (
        "dynconform.dev/v1alpha1",
        "TapReport",
        "failed",
    )
    assert data["duration"]["stopped"] == "interrupted"
    assert data["violations"]["byRule"]["kv.sequence-monotonic"] == 1


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (LiveTapConfig(), "nothing to tap"),
        (LiveTapConfig(discovery="redis://x"), "expected file:///DIR or etcd://HOST:PORT"),
        (LiveTapConfig(discovery="etcd://127.0.0.1"), "expected etcd://HOST:PORT"),
        (LiveTapConfig(discovery="file://"), "expected file://DIR"),
        (LiveTapConfig(discovery="file:///no/such/dir"), "is not a directory"),
        (LiveTapConfig(nats="http://127.0.0.1:4222"), "expected nats://HOST:PORT"),
        (LiveTapConfig(zmq=("127.0.0.1:5555",)), "expected tcp://HOST:PORT"),
        (LiveTapConfig(zmq=("tcp://127.0.0.1:5555",), scope="a//b"), "expected NAMESPACE"),
    ],
)
def test_bad_locations_are_refused(config: LiveTapConfig, message: str) -> None:
    with pytest.raises(LiveTapError, match=message):
        LiveTap(config).start()


def test_unreachable_servers_are_refused() -> None:
    port = free_port()
    with pytest.raises(LiveTapError, match="cannot reach etcd"):
        LiveTap(LiveTapConfig(discovery=f"etcd://127.0.0.1:{port}")).start()
    with pytest.raises(LiveTapError, match="cannot reach NATS"):
        LiveTap(LiveTapConfig(nats=f"nats://127.0.0.1:{port}")).start()


# -- against the reference stack ------------------------------------------------------------


@contextmanager
def stack(tmp_path: Path, **options: Any) -> Iterator[dict[str, Any]]:
    from dynconform.mocker.serve import MockerStack, ServeOptions

    serve = ServeOptions(port=0, speedup_ratio=0, workdir=tmp_path / "stack", **options)
    with MockerStack(serve) as running_stack:
        yield running_stack.info


def tap_config(info: dict[str, Any]) -> LiveTapConfig:
    discovery = info["discovery"]
    if discovery["backend"] == "file":
        where = f"file://{discovery['path']}"
    else:
        where = "etcd://" + discovery["url"].split("://", 1)[1]
    return LiveTapConfig(discovery=where, nats=info["event_plane"].get("url"))


def tap_stack(info: dict[str, Any]) -> TapReport:
    """Tap the stack while it serves a workload; the report once every KV event arrived."""
    tap = LiveTap(tap_config(info))
    tap.start()
    try:
        assert tap.wait_attached(20)
        workload(info["frontend"]["url"], info["model"])
        assert pump_until(tap, lambda: "kv-events" in {t for _, t in tap.run_.publishers or {}})
        pump_until(tap, lambda: False, 1.0)  # the rest of the workload's events
    finally:
        tap.stop()
    return tap.report("end")


TOPOLOGIES = {
    "file-zmq": {},
    "etcd-nats": {"discovery": "etcd", "event_plane": "nats"},
}


@pytest.mark.slow
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_the_reference_stack_taps_clean(topology: str, tmp_path: Path) -> None:
    with stack(tmp_path, **TOPOLOGIES[topology]) as info:
        report = tap_stack(info)
    assert report.passed, [v.to_dict() for v in report.violations[:3]]
    assert report.by_contract["events.kv-events"] > 0
    assert report.by_contract["discovery.entry"] == report.record_puts
    assert {"Endpoint", "Model", "EventChannel"} <= set(report.by_record_type)
    assert report.by_contract["discovery.mdc"] >= 1
    kv = [p for p in report.by_publisher if p.topic == "kv-events"]
    assert kv
    assert all(p.first_sequence == 0 for p in kv)
    channels = {c["topic"]: c for c in report.channels}
    assert channels["kv-events"]["tapped"] is True
    assert channels["kv-events"]["events"] == kv[0].events
    transport = "Zmq" if topology == "file-zmq" else "Nats"
    assert {c["transport"] for c in report.channels} == {transport}
    assert report.notes == ()


VIOLATING = {
    "file-zmq": ("kv.sequence-monotonic", "discovery.key-grammar"),
    "etcd-nats": ("kv.block-hash-chain",),
}


@pytest.mark.slow
@pytest.mark.parametrize("topology", sorted(VIOLATING))
def test_violation_modes_of_the_reference_stack_are_reported(topology: str, tmp_path: Path) -> None:
    modes = VIOLATING[topology]
    with stack(tmp_path, violations=modes, **TOPOLOGIES[topology]) as info:
        report = tap_stack(info)
    assert set(report.violations_by_rule) == set(modes)
    assert {v.rule for v in report.violations} == set(modes)
    sources = {v.rule: v.source for v in report.violations}
    assert all(
        sources[m] == ("discovery" if m.startswith("discovery.") else "events") for m in modes
    )


# -- the command ---------------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_cli_reports_violations_with_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    kv = capture_frames("kv-events", limit=8)
    frames = [*kv[:4], kv[3], *kv[4:]]  # one duplicate
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    path = tmp_path / "tap.yaml"
    with publisher() as pub:
        sender = threading.Thread(
            target=lambda: pub.wait_subscriber(20) and pub.send(frames), daemon=True
        )
        sender.start()
        argv = ["tap", "--zmq", pub.endpoint, "--duration", "4", "--every", "0.2"]
        code = main([*argv, "--json", "--report", str(path)])
        sender.join(5)
    assert code == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["result"] == "failed"
    assert printed["counts"]["events"] == len(frames)
    # the repeated envelope's sequence, its KV event's id, and (a removal) each block again
    events = msgpack.unpackb(msgpack.unpackb(kv[3][1])["payload"])
    removed = [
        b for e in events for b in e["event"]["data"].get("removed", {}).get("block_hashes", [])
    ]
    assert printed["violations"]["byRule"] == {
        "kv.event-id-monotonic": 1,
        "kv.removed-after-stored": len(removed),
        "kv.sequence-monotonic": 1,
    }
    assert printed["duration"]["stopped"] == "duration"
    loaded = load_report(path)
    assert isinstance(loaded, TapReport)
    assert loaded.to_dict() == printed
    written = terminal.getvalue()
    assert written.startswith("\rattached: 1 ZMQ publisher\x1b[K\n")
    assert "events/s" in written
    assert written.endswith("\r\x1b[K")  # the status line is cleared before the summary


@pytest.mark.parametrize(("option", "server"), [("--discovery", "etcd"), ("--nats", "NATS")])
def test_cli_unreachable_servers_exit_2(
    option: str, server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    scheme = "etcd" if server == "etcd" else "nats"
    assert main(["tap", option, f"{scheme}://127.0.0.1:{free_port()}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"dynconform: error: cannot reach {server} at ")


@pytest.mark.slow
def test_ctrl_c_writes_the_report_and_exits_130(tmp_path: Path) -> None:
    frames = capture_frames(limit=300)
    path = tmp_path / "tap.json"
    lines: list[str] = []
    with publisher() as pub, (tmp_path / "out.txt").open("w") as out:
        argv = ["tap", "--zmq", pub.endpoint, "--report", str(path), "--every", "0.2"]
        process = subprocess.Popen(
            [sys.executable, "-m", "dynconform", *argv],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stderr is not None
            reader = threading.Thread(target=lambda: lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
            reader.start()
            assert pub.wait_subscriber(60), lines
            pub.send(frames)
            seen = f" {len(frames)} events "
            assert wait_until(lambda: any(seen in x for x in lines), 60), lines
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 130, lines
            reader.join(5)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    assert lines[0] == "dynconform tap: attached: 1 ZMQ publisher\n"
    assert all(line.startswith("dynconform tap: ") for line in lines)
    report = load_report(path)
    assert isinstance(report, TapReport)
    assert report.stopped == "interrupted"
    assert report.events == len(frames)
    assert report.passed
    summary = (tmp_path / "out.txt").read_text()
    assert f": {len(frames)} events and 0 discovery records in " in summary
    assert "stopped: interrupted" in summary


def test_a_worker_whose_records_are_gone_leaves_no_rule_state(tmp_path: Path) -> None:
    kv = capture_frames("kv-events", limit=40)
    envelope = msgpack.unpackb(kv[0][1])
    worker = msgpack.unpackb(envelope["payload"])[0]["worker_id"]
    channel = dict(RECORDS[2])
    endpoints = []
    with publisher() as pub:
        channel["path"] = channel["path"].rsplit("%2F", 1)[0] + f"%2F{envelope['publisher_id']:x}"
        channel["value"] = {
            **channel["value"],
            "instance_id": envelope["publisher_id"],
            "transport": {"kind": "Zmq", "config": {"endpoint": pub.endpoint}},
        }
        for record in (RECORDS[5], RECORDS[6]):  # the worker's two Endpoint records
            endpoint = dict(record)
            endpoint["path"] = endpoint["path"].replace("4300c7a4ec4251b8", f"{worker:x}")
            endpoint["value"] = {**endpoint["value"], "instance_id": worker}
            endpoints.append(endpoint)
        write_records(tmp_path, [channel, *endpoints])
        with LiveTap(LiveTapConfig(discovery=f"file://{tmp_path}")) as tap:
            assert tap.wait_attached(10)
            pub.send(kv)
            assert pump_until(tap, lambda: tap.events >= len(kv))
            kv_rules = tap.run_.flow.runners["events.kv-events"]
            assert any(key[0] == worker for key in kv_rules.held)  # type: ignore[union-attr]
            os.remove(tmp_path / endpoints[0]["path"])
            assert pump_until(tap, lambda: tap.record_deletes == 1)
            assert tap.workers_left == 0  # one Endpoint record of the worker is left
            assert any(key[0] == worker for key in kv_rules.held)  # type: ignore[union-attr]
            os.remove(tmp_path / endpoints[1]["path"])
            assert pump_until(tap, lambda: tap.record_deletes == 2)
            assert tap.workers_left == 1
            assert not any(key[0] == worker for key in kv_rules.held)  # type: ignore[union-attr]
            assert tap.discovery is not None
            assert tap.discovery.entries() == []  # no history kept on a live tap
    (note,) = [n for n in tap.report("end").notes if "left discovery" in n]
    assert note.startswith("1 worker(s) left discovery during the tap")


def test_interrupt_stops_a_run_without_duration() -> None:
    with publisher() as pub:
        tap = LiveTap(LiveTapConfig(zmq=(pub.endpoint,), scope=SCOPE))
        report = tap.run(on_attached=lambda t: t.interrupt())
    assert report.stopped == "interrupted"
    assert tap.attached()
