"""Tap throughput and memory on the real ai-dynamo 1.6.1 event-plane capture.

    python benchmarks/bench_tap.py                      # throughput, then a 60 s memory loop
    python benchmarks/bench_tap.py --memory-seconds 600  # the 10-minute memory loop
    python benchmarks/bench_tap.py --memory-seconds 0    # throughput only

Every method decodes the same raw frames (msgpack envelope, then its msgpack payload) in
one process pinned to one core, in one run, so the ratios compare like with like:

1. plain msgpack decode, no validation;
2. msgpack decode + ``jsonschema`` (the reference schemas, envelope and payload, no rules);
3. msgpack decode + ``jsonschema-rs`` (same schemas; needs ``pip install '.[bench]'``);
4. msgspec typed decode: hand-written Structs with the schemas' constraints, no rules;
5. dynconform's fast path (``FastValidator``), every semantic rule on;
6. dynconform's reference ``Validator``, every rule on (fewer passes: it is slow).

Rates are events (frames) per CPU second, best of several rounds interleaved across the
methods; the fast path's ratios are also taken within each round (median and range), which
shows how much of a difference is this machine's run-to-run noise. Targets: (5) >= 0.85 x (4)
and >= 3 x (3); memory of a replay loop flat within 10%.
Results go to ``--out`` (``tap.json`` and ``tap.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import os
import platform
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import msgpack
import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from dynconform.contracts import Catalog, Validator
from dynconform.contracts._io import RawFrame, iter_raw_frames, raw_frame_view
from dynconform.contracts.fast import FastValidator, replay
from dynconform.contracts.fast._rules import pair_hashes

ROOT = Path(__file__).resolve().parents[1]
CAPTURE = ROOT / "tests" / "fixtures" / "ai-dynamo-1.6.1" / "etcd_nats" / "event_plane_raw.bin"
TOPICS = {
    "kv-events": "events.kv-events",
    "kv_metrics": "events.kv-metrics",
    "forward-pass-metrics": "events.forward-pass-metrics",
    "active_sequences_events": "events.active-sequences",
}

Frames = list[tuple[str, bytes]]

# -- (4) msgspec typed decode: Structs written by hand from the schemas ---------------------

U64 = Annotated[int, Meta(ge=0)]  # msgpack integers never exceed 2**64 - 1
U32 = Annotated[int, Meta(ge=0, le=2**32 - 1)]
NonNegative = Annotated[float, Meta(ge=0)]


class Envelope(Struct):
    publisher_id: Annotated[int, Meta(ge=0, le=2**53 - 1)]
    sequence: U64
    published_at: U64
    topic: Annotated[str, Meta(min_length=1)]
    payload: bytes


class MmObject(Struct):
    mm_hash: U64
    offsets: list[tuple[U64, U64]]


class MmExtraInfo(Struct):
    mm_objects: list[MmObject]


class StoredBlock(Struct):
    block_hash: U64
    tokens_hash: U64
    mm_extra_info: MmExtraInfo | None


class StoreData(Struct):
    parent_hash: U64 | None
    start_position: U32 | None
    blocks: list[StoredBlock]


class RemoveData(Struct):
    block_hashes: list[U64]


class EventData(Struct, forbid_unknown_fields=True):
    stored: StoreData | UnsetType = UNSET
    removed: RemoveData | UnsetType = UNSET

    def __post_init__(self) -> None:
        if (self.stored is UNSET) == (self.removed is UNSET):
            raise ValueError("exactly one of stored and removed")


class KvCacheEvent(Struct):
    event_id: U64
    data: Literal["cleared"] | EventData
    dp_rank: U32


class RouterEvent(Struct):
    worker_id: U64
    storage_tier: Literal["device", "host_pinned", "disk", "external"]
    residency_domain: Literal["worker", "cache_owner"]
    event: KvCacheEvent
    state_source: Any = None
    session_id: str | UnsetType = UNSET


class KvMetrics(Struct):
    worker_id: U64
    dp_rank: U32
    active_decode_blocks: U64 | None
    active_prefill_tokens: U64 | None
    kv_used_blocks: U64 | None


class Scheduled(Struct):
    num_prefill_requests: U64
    sum_prefill_tokens: U64
    var_prefill_length: NonNegative
    sum_prefill_kv_tokens: U64
    num_decode_requests: U64
    sum_decode_kv_tokens: U64
    var_decode_kv_tokens: NonNegative


class Queued(Struct):
    num_prefill_requests: U64
    sum_prefill_tokens: U64
    var_prefill_length: NonNegative
    num_decode_requests: U64
    sum_decode_kv_tokens: U64
    var_decode_kv_tokens: NonNegative


class ForwardPassMetrics(Struct):
    version: Literal[1]
    worker_id: Annotated[str, Meta(pattern="^[0-9]{1,20}$")]
    dp_rank: U32
    counter_id: U64
    wall_time: NonNegative
    scheduled_requests: Scheduled
    queued_requests: Queued


class Duration(Struct):
    secs: U64
    nanos: Annotated[int, Meta(ge=0, le=999_999_999)]


class PrefillLoadHint(Struct):
    initial_effective_prefill_tokens: U64
    expected_prefill_duration: Duration | None


class AddRequest(Struct):
    token_sequence: list[U64] | None
    track_prefill_tokens: bool
    expected_output_tokens: U32 | None
    prefill_load_hint: PrefillLoadHint | None


class AddRequestData(Struct, forbid_unknown_fields=True):
    AddRequest: AddRequest


class Worker(Struct):
    worker_id: U64
    dp_rank: U32


class ActiveSequenceEvent(Struct):
    request_id: str
    worker: Worker
    data: Literal["Free", "MarkPrefillCompleted"] | AddRequestData
    router_id: U64
    lora_name: str | None


TYPED = {
    "kv-events": list[RouterEvent],
    "kv_metrics": KvMetrics,
    "forward-pass-metrics": ForwardPassMetrics,
    "active_sequences_events": ActiveSequenceEvent,  # the capture holds single events only
}

# -- the methods ---------------------------------------------------------------------------


def plain_msgpack() -> Callable[[Frames], None]:
    unpack = msgpack.unpackb

    def run(frames: Frames) -> None:
        for _, data in frames:
            envelope = unpack(data)
            unpack(envelope["payload"])

    return run


def _view_validators(make: Callable[[str], Any]) -> Callable[[Frames], None]:
    envelope_ok = make("events.envelope").is_valid
    payload_ok = {topic: make(contract).is_valid for topic, contract in TOPICS.items()}
    unpack = msgpack.unpackb

    def run(frames: Frames) -> None:
        for _, data in frames:
            envelope = unpack(data)
            payload = unpack(envelope["payload"])
            envelope["payload"] = {"__msgpack__": payload}
            if not (envelope_ok(envelope) and payload_ok[envelope["topic"]](payload)):
                raise AssertionError("the capture is valid")

    return run


def msgpack_jsonschema() -> Callable[[Frames], None]:
    return _view_validators(Catalog.load().validator)


def msgpack_jsonschema_rs() -> Callable[[Frames], None] | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    catalog = Catalog.load()
    return _view_validators(
        lambda name: jsonschema_rs.validator_for(dict(catalog.get(name).schema))
    )


def msgspec_typed() -> Callable[[Frames], None]:
    envelope_decoder = msgspec.msgpack.Decoder(Envelope)
    decoders = {t: msgspec.msgpack.Decoder(tp).decode for t, tp in TYPED.items()}

    def run(frames: Frames) -> None:
        for _, data in frames:
            envelope = envelope_decoder.decode(data)
            decoders[envelope.topic](envelope.payload)

    return run


def dynconform_fast() -> Callable[[Frames], None]:
    fast = FastValidator()

    def run(frames: Frames) -> None:
        stream = fast.frames()
        stream.feed_all(frames)
        if not stream.finish().ok or stream.fallbacks:
            raise AssertionError("the capture is valid and takes the fast path")

    return run


def dynconform_reference() -> Callable[[Frames], None]:
    validator = Validator()

    def run(frames: Frames) -> None:
        views = (raw_frame_view(RawFrame(s, d)) for s, d in frames)
        if not validator.validate_stream("events.message", views).ok:
            raise AssertionError("the capture is valid")

    return run


METHODS: list[tuple[str, str, Callable[[], Callable[[Frames], None] | None], bool]] = [
    ("msgpack", "plain msgpack decode (no validation)", plain_msgpack, False),
    ("jsonschema", "msgpack decode + jsonschema", msgpack_jsonschema, True),
    ("jsonschema-rs", "msgpack decode + jsonschema-rs", msgpack_jsonschema_rs, False),
    ("msgspec", "msgspec typed decode (no rules)", msgspec_typed, False),
    ("fast", "dynconform fast path, all rules", dynconform_fast, False),
    ("reference", "dynconform reference Validator, all rules", dynconform_reference, True),
]

# -- measuring -----------------------------------------------------------------------------


def _pin() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned"
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return f"pinned to CPU {cpu}"


def _load(path: Path, kv_only: bool) -> Frames:
    with path.open("rb") as stream:
        frames = [(f.subject, f.data) for f in iter_raw_frames(stream)]
    if kv_only:
        frames = [(s, d) for s, d in frames if s.endswith(".kv-events")]
    return frames


def throughput(
    frames: Frames, rounds: int, seconds: float
) -> tuple[dict[str, dict[str, Any]], dict[str, list[float]]]:
    """Best events per CPU second of each method, rounds interleaved; and each round's CPU
    seconds per pass of each method (for ratios taken within a round)."""
    runners = {key: (label, make(), slow) for key, label, make, slow in METHODS}
    per_round: dict[str, list[float]] = {}
    for _, run, _ in runners.values():
        if run is not None:
            run(frames)  # warm up (compiles, caches) and check the verdict
    for _ in range(rounds):
        for key, (_, run, slow) in runners.items():
            if run is None:
                continue
            passes = 1 if slow else max(1, int(seconds * 300_000 / len(frames)))
            gc.collect()
            start = time.process_time()
            for _ in range(passes):
                run(frames)
            per_round.setdefault(key, []).append((time.process_time() - start) / passes)
    methods = {
        key: {
            "method": label,
            "events_per_second": round(len(frames) / min(per_round[key]))
            if key in per_round
            else None,
        }
        for key, (label, _, _) in runners.items()
    }
    return methods, per_round


def round_ratios(per_round: dict[str, list[float]]) -> dict[str, dict[str, float | int]]:
    """The fast path's speed relative to msgspec and jsonschema-rs in each round (the two
    methods timed next to each other): median, lowest and highest over the rounds."""
    out: dict[str, dict[str, float | int]] = {}
    fast = per_round.get("fast")
    for other, name in (("msgspec", "fast_vs_msgspec"), ("jsonschema-rs", "fast_vs_jsonschema_rs")):
        times = per_round.get(other)
        if not fast or not times:
            continue
        ratios = sorted(o / f for f, o in zip(fast, times, strict=True))
        out[name] = {
            "median": round(statistics.median(ratios), 3),
            "min": round(ratios[0], 3),
            "max": round(ratios[-1], 3),
            "rounds": len(ratios),
        }
    return out


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(path: Path, seconds: float) -> dict[str, Any]:
    """RSS sampled every second over a replay loop of ``seconds``."""
    samples: list[tuple[float, int]] = []
    done = threading.Event()
    start = time.perf_counter()

    def sample() -> None:
        while not done.wait(1.0):
            samples.append((time.perf_counter() - start, _rss_bytes()))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    summary = replay(path, loops=0, duration=seconds, keep=10)
    done.set()
    sampler.join()
    if len(samples) < 3:
        return {"seconds": seconds, "samples": len(samples), "note": "too short to judge"}
    # The first tenth (at least one sample) warms caches and the allocator; judge the rest.
    warm = samples[max(1, len(samples) // 10) - 1][1]
    peak = max(rss for _, rss in samples)
    end = samples[-1][1]
    return {
        "seconds": round(summary.seconds, 1),
        "events": summary.events,
        "passes": summary.passes,
        "events_per_second": round(summary.events_per_second),
        "violations": sum(summary.violations_by_rule.values()),
        "samples": len(samples),
        "rss_after_warm_up_mib": round(warm / 2**20, 1),
        "rss_end_mib": round(end / 2**20, 1),
        "rss_peak_mib": round(peak / 2**20, 1),
        "growth_percent": round((peak - warm) / warm * 100, 2),
        "flat": peak <= warm * 1.10,
    }


def kv_breakdown(frames: Frames, rounds: int) -> dict[str, Any]:
    """Microseconds per KV-event frame of what every validator of these frames must do at
    least once in Python, measured apart: decoding with dynconform's compiled types, hashing
    each stored block (``kv.block-hash-chain``), and the set operations of block residency
    (``kv.removed-after-stored``, ``kv.parent-stored``) without any rule bookkeeping."""
    fast = FastValidator()
    envelope_type = fast.compiled("events.envelope", "msgpack")
    payload_type = fast.compiled("events.kv-events", "msgpack")
    if envelope_type is None or payload_type is None:
        return {}
    decode_envelope = msgspec.msgpack.Decoder(envelope_type.type).decode
    decode_payload = msgspec.msgpack.Decoder(payload_type.type).decode
    envelopes = [decode_envelope(data) for _, data in frames]
    payloads = [decode_payload(e.payload) for e in envelopes]
    events = [event for payload in payloads for event in payload]
    datas = [event.event.data for event in events]
    stored = [d.stored for d in datas if not isinstance(d, str) and d.stored is not UNSET]
    parents: list[int | None] = []
    tokens: list[int] = []
    for store in stored:
        parent = store.parent_hash
        for block in store.blocks:
            parents.append(0 if parent is None else parent)
            tokens.append(block.tokens_hash)
            parent = block.block_hash
    operations = [
        (False, d.removed.block_hashes)
        if d.stored is UNSET
        else (True, [b.block_hash for b in d.stored.blocks])
        for d in datas
        if not isinstance(d, str)
    ]

    def decode() -> None:
        for _, data in frames:
            decode_payload(decode_envelope(data).payload)

    def hash_blocks() -> None:
        pair_hashes(parents, tokens)

    def residency() -> None:
        held: set[int] = set()
        for stores, hashes in operations:
            if stores:
                held.update(hashes)
            else:
                held.issuperset(hashes)
                held.difference_update(hashes)

    out: dict[str, Any] = {
        "frames": len(frames),
        "events": len(events),
        "stored_blocks": len(tokens),
        "removed_hashes": sum(len(h) for stores, h in operations if not stores),
    }
    for name, step in (("decode", decode), ("hash_blocks", hash_blocks), ("residency", residency)):
        best = float("inf")
        for _ in range(rounds):
            passes = 200
            start = time.process_time()
            for _ in range(passes):
                step()
            best = min(best, (time.process_time() - start) / passes)
        out[f"{name}_us_per_frame"] = round(best / len(frames) * 1e6, 2)
    return out


def machine(pinning: str) -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for package in ("dynconform", "msgspec", "msgpack", "jsonschema", "jsonschema_rs"):
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": model,
        "cores": os.cpu_count(),
        "pinning": pinning,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": platform.platform(),
        "versions": versions,
    }


def _ratios(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    rate = {k: v["events_per_second"] for k, v in results.items()}
    out: dict[str, Any] = {}
    if rate.get("fast") and rate.get("msgspec"):
        out["fast_vs_msgspec"] = round(rate["fast"] / rate["msgspec"], 3)
        out["target_fast_vs_msgspec_0_85"] = out["fast_vs_msgspec"] >= 0.85
    if rate.get("fast") and rate.get("jsonschema-rs"):
        out["fast_vs_jsonschema_rs"] = round(rate["fast"] / rate["jsonschema-rs"], 3)
        out["target_fast_vs_jsonschema_rs_3"] = out["fast_vs_jsonschema_rs"] >= 3
    if rate.get("fast") and rate.get("reference"):
        out["fast_vs_reference"] = round(rate["fast"] / rate["reference"], 1)
    return out


def markdown(result: dict[str, Any]) -> str:
    m = result["machine"]
    lines = [
        "# dynconform tap benchmark",
        "",
        f"{m['date']}; {m['cpu']}, {m['cores']} cores ({m['pinning']}); {m['python']}; "
        + ", ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
    ]
    for name, data in result["datasets"].items():
        msgspec_rate = data["methods"]["msgspec"]["events_per_second"]
        lines += [
            f"## {name}: {data['frames']} frames",
            "",
            "| method | events/s | x msgspec typed |",
            "|---|---:|---:|",
        ]
        for method in data["methods"].values():
            rate = method["events_per_second"]
            ratio = f"{rate / msgspec_rate:.2f}" if rate and msgspec_rate else "-"
            shown = f"{rate:,}" if rate else "n/a"
            lines.append(f"| {method['method']} | {shown} | {ratio} |")
        lines += ["", "ratios (best of each method): " + json.dumps(data["ratios"]), ""]
        for ratio, stats in data.get("round_ratios", {}).items():
            lines.append(
                f"- {ratio} within each of {stats['rounds']} rounds: median {stats['median']}, "
                f"range {stats['min']} to {stats['max']}"
            )
        lines.append("")
    if result.get("kv_breakdown"):
        b = result["kv_breakdown"]
        lines += [
            "## where the time goes on a KV-event frame",
            "",
            f"{b['frames']} frames: {b['events']} KV events, {b['stored_blocks']} stored blocks, "
            f"{b['removed_hashes']} removed block hashes. Microseconds per frame, each step "
            "alone, with no rule bookkeeping:",
            "",
            "| step | us/frame |",
            "|---|---:|",
            f"| decode (compiled types, envelope + payload) | {b['decode_us_per_frame']} |",
            f"| hash every stored block (XXH3, batched) | {b['hash_blocks_us_per_frame']} |",
            f"| block residency (set operations only) | {b['residency_us_per_frame']} |",
        ]
        total = sum(b[f"{k}_us_per_frame"] for k in ("decode", "hash_blocks", "residency"))
        kv = result["datasets"].get("kv-events frames only", {}).get("methods", {})
        typed = kv.get("msgspec", {}).get("events_per_second")
        lines.append(f"| sum: the least any validator with these rules does | {total:.2f} |")
        if typed:
            lines.append(f"| msgspec typed decode, from the table above | {1e6 / typed:.2f} |")
            lines += [
                "",
                f"The sum alone allows at most {1e6 / typed / total:.2f} x msgspec typed "
                "decode on these frames.",
            ]
        lines.append("")
    if result.get("memory"):
        lines += ["## memory over a replay loop", "", json.dumps(result["memory"]), ""]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--capture", type=Path, default=CAPTURE, help="raw event-plane capture")
    parser.add_argument(
        "--rounds", type=int, default=9, help="rounds per method (best kept, ratios per round)"
    )
    parser.add_argument(
        "--seconds", type=float, default=0.3, help="target CPU seconds per round of a method"
    )
    parser.add_argument(
        "--memory-seconds", type=float, default=60, help="replay loop for RSS (0: skip)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()

    pinning = _pin()
    result: dict[str, Any] = {"machine": machine(pinning), "capture": str(args.capture)}
    result["datasets"] = {}
    for name, kv_only in (("all topics", False), ("kv-events frames only", True)):
        frames = _load(args.capture, kv_only)
        methods, per_round = throughput(frames, args.rounds, args.seconds)
        result["datasets"][name] = {
            "frames": len(frames),
            "methods": methods,
            "ratios": _ratios(methods),
            "round_ratios": round_ratios(per_round),
        }
    result["kv_breakdown"] = kv_breakdown(_load(args.capture, True), args.rounds)
    if args.memory_seconds > 0:
        result["memory"] = memory(args.capture, args.memory_seconds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tap.json").write_text(json.dumps(result, indent=2) + "\n")
    report = markdown(result)
    (args.out / "tap.md").write_text(report + "\n")
    print(report)
    print(f"written: {args.out / 'tap.json'}, {args.out / 'tap.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
