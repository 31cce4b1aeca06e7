from __future__ import annotations

import asyncio
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
from conformance_helpers import write_records

from dynconform.conformance._discovery_tap import (
    EtcdDiscoveryTap,
    FileDiscoveryTap,
    discovery_tap,
)
from dynconform.conformance._event_tap import NatsTap, ZmqEventTap, scope_names
from dynconform.contracts import Validator

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"

RECORDS = json.loads((CAPTURES / "file_zmq" / "file_store_records.json").read_text())
RECORDS_SUBJECT = "namespace.dynamo.component.backend.endpoint.generate.kv_metrics"
NATS = [json.loads(line) for line in (CAPTURES / "etcd_nats" / "nats_messages.jsonl").open()]


def test_file_tap_keeps_versions_and_the_timeline(tmp_path: Path) -> None:
    write_records(tmp_path, RECORDS)
    tap = FileDiscoveryTap(tmp_path, ttl=30, interval=0.02)
    tap.start()
    try:
        assert len(tap.snapshot()) == len(RECORDS)
        assert len(tap.records("EventChannel")) == 4
        report = Validator().validate_stream("discovery.entry", tap.entries())
        assert report.ok, report.violations[:3]
        # An owner that stops touching its file is gone once the TTL passes.
        victim = tmp_path / RECORDS[0]["path"]
        os.utime(victim, (time.time() - 60, time.time() - 60))
        assert tap.wait_for(lambda snap: RECORDS[0]["path"] not in snap, 5)
        changed = tmp_path / RECORDS[1]["path"]
        changed.write_text(json.dumps({**RECORDS[1]["value"], "topic": "kv-events-2"}))
        assert tap.wait_for(
            lambda snap: snap[RECORDS[1]["path"]]["value"]["topic"] == "kv-events-2", 5
        )
    finally:
        tap.stop()
    gone = [e for e in tap.timeline() if e.entry is None]
    assert [e.key for e in gone] == [RECORDS[0]["path"]]
    assert len(tap.entries()) == len(RECORDS) + 1
    assert tap.summary()["entriesSeen"] == len(RECORDS) + 1


def test_discovery_locations() -> None:
    tap = discovery_tap("file:///tmp/x?ttl=3")
    assert isinstance(tap, FileDiscoveryTap)
    assert tap.ttl == 3
    assert tap.root == Path("/tmp/x")
    etcd = discovery_tap("etcd://127.0.0.1:2379")
    assert isinstance(etcd, EtcdDiscoveryTap)
    assert etcd.url == "http://127.0.0.1:2379"
    for bad in ("redis://x", "etcd://"):
        with pytest.raises(ValueError, match="discovery"):
            discovery_tap(bad)


def test_scope_names() -> None:
    scope = RECORDS[0]["value"]["scope"]
    assert scope_names(scope) == ("dynamo", "backend", "generate")
    # the other two kinds of ai-dynamo's EventScope, as discovery.event-channel describes them
    assert scope_names({"kind": "namespace", "name": "ns"}) == ("ns", None, None)
    assert scope_names({"kind": "component", "namespace": "ns", "component": "c"}) == (
        "ns",
        "c",
        None,
    )
    for bad in ("nope", {"kind": "endpoint", "endpoint": "x"}, {"kind": "component"}):
        assert scope_names(bad) is None
    # a channel of each kind passes the discovery.event-channel contract
    validator = Validator()
    for kind in ({"kind": "namespace", "name": "ns"},
                 {"kind": "component", "namespace": "ns", "component": "c"}):  # fmt: skip
        record = {**RECORDS[0]["value"], "scope": kind}
        assert validator.validate("discovery.event-channel", record).ok, kind


def _frames(envelope: dict[str, Any], topic: bytes, *, version: int = 1) -> list[bytes]:
    raw = msgpack.packb(envelope, use_bin_type=True)
    pid = struct.pack(">Q", envelope["publisher_id"])
    seq = struct.pack(">Q", envelope["sequence"])
    return [topic, pid, seq, struct.pack(">BI", version, len(raw)) + raw]


def _wire_envelope(message: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(message["decoded"])
    decoded["payload"] = msgpack.packb(decoded["payload"]["__msgpack__"], use_bin_type=True)
    return decoded


def test_zmq_tap_decodes_1_6_1_framing(tmp_path: Path) -> None:
    context = zmq.Context()
    pub = context.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    channel = dict(RECORDS[3])  # the kv_metrics channel of the capture
    channel["value"] = {
        **channel["value"],
        "transport": {"kind": "Zmq", "config": {"endpoint": f"tcp://127.0.0.1:{port}"}},
    }
    write_records(tmp_path, [channel])
    discovery = FileDiscoveryTap(tmp_path, ttl=30, interval=0.02)
    discovery.start()
    tap = ZmqEventTap(discovery)
    tap.start()
    try:
        assert tap.wait_connected(10)
        samples = [m for m in NATS if m["subject"].endswith(".kv_metrics")][:3]
        assert len(samples) == 3
        for message in samples:
            pub.send_multipart(_frames(_wire_envelope(message), b"kv_metrics"))
        broken = _wire_envelope(samples[0])
        pub.send_multipart(_frames(broken, b"kv_metrics", version=2))
        pub.send_multipart([b"kv_metrics", b"short"])
        deadline = time.monotonic() + 10
        while (tap.count() < 4 or len(tap.framing_issues) < 2) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        tap.stop()
        discovery.stop()
        pub.close()
        context.term()
    messages = tap.messages()
    assert len(messages) == 4
    assert messages[0]["subject"] == RECORDS_SUBJECT
    assert messages[0]["decoded"] == samples[0]["decoded"]
    report = Validator().validate_stream("events.message", messages[:3])
    assert report.ok, report.violations[:3]
    assert any("version 2" in issue for issue in tap.framing_issues)
    assert any("2 frames" in issue for issue in tap.framing_issues)
    assert tap.summary()["byTopic"] == {"kv_metrics": 4}


@pytest.mark.slow
def test_nats_tap_splits_event_and_request_planes(tmp_path: Path) -> None:
    from dynconform.services import Services

    request = next(m for m in NATS if m["plane"] == "request_plane")
    event = next(m for m in NATS if m["plane"] == "event_plane")
    endpoint = {
        "path": "v1/instances/x",
        "value": {"type": "Endpoint", "transport": {"nats_tcp": request["subject"]}},
    }
    write_records(tmp_path / "kv", [endpoint])
    discovery = FileDiscoveryTap(tmp_path / "kv", ttl=30)
    discovery.start()
    with Services(nats=True, workdir=tmp_path / "services") as services:
        tap = NatsTap(services.url("nats"), discovery)
        tap.start(10)
        try:
            import base64

            import nats

            async def publish() -> None:
                nc = await nats.connect(services.url("nats"))
                await nc.publish(event["subject"], msgpack.packb(_wire_envelope(event)))
                raw = base64.b64decode(request["decoded"]["__bytes_b64__"])
                await nc.publish(request["subject"], raw)
                await nc.publish("unrelated.subject", b"x")
                await nc.flush()
                await nc.close()

            asyncio.run(publish())
            deadline = time.monotonic() + 10
            while (tap.count() < 2 or tap.other < 1) and time.monotonic() < deadline:
                time.sleep(0.02)
        finally:
            tap.stop()
            discovery.stop()
    assert [m["plane"] for m in tap.messages(None)] == ["event_plane", "request_plane"]
    assert tap.messages()[0]["decoded"] == event["decoded"]
    assert tap.messages("request_plane")[0]["decoded"] == request["decoded"]
    assert tap.other >= 1
    frames = Validator().validate_stream("request-plane.frame", [request["decoded"]])
    assert frames.ok, frames.violations[:3]


def test_nats_tap_routes_each_subject_to_its_plane_kept_or_handed_on(tmp_path: Path) -> None:
    """The same routing whether messages are kept or go raw to ``on_frame``."""
    import base64

    request = next(m for m in NATS if m["plane"] == "request_plane")
    event = next(m for m in NATS if m["plane"] == "event_plane")
    endpoint = {
        "path": "v1/instances/x",
        "value": {"type": "Endpoint", "transport": {"nats_tcp": request["subject"]}},
    }
    write_records(tmp_path, [endpoint])
    discovery = FileDiscoveryTap(tmp_path, ttl=30)
    discovery.poll_once()
    raw_event = msgpack.packb(_wire_envelope(event))
    raw_request = base64.b64decode(request["decoded"]["__bytes_b64__"])
    traffic = [
        (event["subject"], raw_event),
        (request["subject"], raw_request),
        ("unrelated.subject", b"x"),
    ]
    kept = NatsTap("nats://127.0.0.1:1", discovery)
    handed = NatsTap("nats://127.0.0.1:1", discovery)
    sunk: list[tuple[str, str, bytes]] = []
    handed.on_frame = lambda plane, subject, data: sunk.append((plane, subject, data))
    for subject, data in traffic:
        kept._route(subject, data)
        handed._route(subject, data)
    assert [(m["plane"], m["subject"]) for m in kept.messages(None)] == [
        ("event_plane", event["subject"]),
        ("request_plane", request["subject"]),
    ]
    assert kept.messages()[0]["decoded"] == event["decoded"]
    assert kept.messages("request_plane")[0]["decoded"] == request["decoded"]
    assert sunk == [
        ("event_plane", event["subject"], raw_event),
        ("request_plane", request["subject"], raw_request),
    ]
    assert handed.count() == 0
    assert (kept.other, handed.other) == (1, 1)
