"""The event plane: every message the taps saw, KV events agreeing with prompts, and the
request plane where it can be read (NATS)."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed, CheckSkipped
from dynconform.conformance.checks._common import COMPLETIONS, ok_json
from dynconform.contracts import ValidationReport
from dynconform.contracts.event_subjects import TOPIC_CONTRACTS
from dynconform.contracts.hashing import chain_hashes
from dynconform.contracts.rules.correlation import BLOCK_SIZE_CONSISTENT

TAP = ("event-plane-tap",)
KV = ("event-plane-tap", "discovery-tap", "kv-events", "token-prompts")
EVENT_CONTRACTS = ("events.message", "events.envelope", *TOPIC_CONTRACTS.values())


def events_report(ctx: Context, plane: str = "event_plane") -> ValidationReport:
    """Every message of ``plane`` seen so far, validated as one stream (memoised by count)."""
    tap = ctx.require_events()
    messages = tap.messages(plane)
    return ctx.memo(
        f"events-report:{plane}:{len(messages)}",
        lambda: ctx.validator.validate_stream("events.message", messages),
    )


def _judge_events(ctx: Context, topic: str | None = None) -> None:
    report = events_report(ctx)
    if not report.instances:
        raise CheckFailed("no event-plane message was seen during the run")
    if topic is not None and not any(
        isinstance(m.get("decoded"), dict) and m["decoded"].get("topic") == topic
        for m in ctx.require_events().messages()
    ):
        raise CheckFailed(f"no {topic!r} message was seen during the run")
    ctx.judge(report, f"{report.instances} event-plane messages")


@check(
    "events.messages-valid",
    title="Every event-plane message is valid",
    description="""Every message on the event plane during the run MUST validate against
    events.message: an envelope with a known topic, on the subject of that topic, whose
    payload is valid against the topic's contract.""",
    profiles=("core",),
    features=TAP,
    contracts=EVENT_CONTRACTS,
    rules=("schema.*", "events.subject-matches-topic", "events.topic-known"),
    phase="observe",
)
def messages_valid(ctx: Context) -> None:
    _await_channels(ctx)
    _judge_events(ctx)


def _await_channels(ctx: Context) -> None:
    """Give every advertised channel the event window to be heard from (periodic publishers
    such as forward-pass metrics may not have published yet); silence is not judged here."""
    if ctx.discovery is None:
        return
    advertised = {str(r.get("topic")) for r in ctx.discovery.records("EventChannel")}

    def heard() -> None:
        seen = {
            m["decoded"].get("topic")
            for m in ctx.require_events().messages()
            if isinstance(m.get("decoded"), dict)
        }
        if advertised - seen:
            raise CheckFailed(f"silent: {sorted(advertised - seen)}")

    with contextlib.suppress(CheckFailed):
        ctx.eventually(heard, "every advertised channel heard", within=ctx.timeouts.event)


@check(
    "events.zmq-framing",
    title="ZMQ messages are framed as ai-dynamo 1.6.1 frames them",
    description="""A ZMQ event-plane message MUST have four frames: topic, publisher id and
    sequence (u64 big-endian, equal to the envelope's), and a version-1 frame whose length
    header matches the envelope that follows.""",
    profiles=("core",),
    features=TAP,
    rules=("events.zmq-framing",),
    phase="observe",
)
def zmq_framing(ctx: Context) -> None:
    tap = ctx.require_events()
    if tap.kind != "zmq":
        raise CheckSkipped("the event plane is not ZMQ")
    if not tap.count():
        raise CheckFailed("no ZMQ message was received during the run")
    if tap.framing_issues:
        shown = "; ".join(tap.framing_issues[:3])
        raise CheckFailed(f"{len(tap.framing_issues)} framing fault(s): {shown}")


def _stream_check(
    check_id: str,
    rule: str,
    title: str,
    description: str,
    topic: str | None,
    contract: str,
    features: tuple[str, ...] = (*TAP, "kv-events"),
) -> Check:
    def run(ctx: Context) -> None:
        _judge_events(ctx, topic)

    run.__name__ = check_id.replace(".", "_").replace("-", "_")
    return check(
        check_id,
        title=title,
        description=description,
        profiles=("kv-routing",),
        features=features,
        contracts=(contract,),
        rules=(rule,),
        phase="observe",
    )(run)


sequence_gapless = _stream_check(
    "events.sequence-gapless",
    "kv.sequence-monotonic",
    "Envelope sequences have no gaps",
    """Per publisher and topic, each envelope's sequence MUST be the previous one plus 1: no
    gap, duplicate or reordering.""",
    None,
    "events.envelope",
    TAP,
)
event_id_monotonic = _stream_check(
    "kv.event-id-monotonic",
    "kv.event-id-monotonic",
    "KV event ids increase per worker",
    """The event_id of a worker's KV events MUST increase strictly, per worker and data
    parallel rank.""",
    "kv-events",
    "events.kv-events",
)
block_hash_chain = _stream_check(
    "kv.block-hash-chain",
    "kv.block-hash-chain",
    "Stored blocks chain their hashes",
    """In a stored event, each block's block_hash MUST be the hash of its parent's block_hash
    and its own tokens_hash (XXH3-64, seed 1337).""",
    "kv-events",
    "events.kv-events",
)
parent_stored = _stream_check(
    "kv.parent-stored",
    "kv.parent-stored",
    "Stored blocks chain to stored parents",
    """A stored event's parent_hash MUST name a block the same worker stored before and has
    not removed.""",
    "kv-events",
    "events.kv-events",
)
removed_after_stored = _stream_check(
    "kv.removed-after-stored",
    "kv.removed-after-stored",
    "Only stored blocks are removed",
    """A removed event MUST only name blocks the same worker stored before.""",
    "kv-events",
    "events.kv-events",
)
fpm_counter = _stream_check(
    "fpm.counter-monotonic",
    "fpm.counter-monotonic",
    "Forward-pass counters increase",
    """The counter_id of a worker's forward-pass metrics MUST increase strictly.""",
    "forward-pass-metrics",
    "events.forward-pass-metrics",
    TAP,
)


def _stored_pairs(ctx: Context, since: int) -> set[tuple[int, int]]:
    pairs: set[tuple[int, int]] = set()
    for message in ctx.require_events().messages(None)[since:]:
        decoded = message.get("decoded")
        if not isinstance(decoded, dict) or decoded.get("topic") != "kv-events":
            continue
        payload = decoded.get("payload")
        events = payload.get("__msgpack__") if isinstance(payload, dict) else None
        for item in events if isinstance(events, list) else []:
            data = item.get("event", {}).get("data") if isinstance(item, dict) else None
            if isinstance(data, dict) and isinstance(data.get("stored"), dict):
                for block in data["stored"].get("blocks", []):
                    if not isinstance(block, dict):
                        continue
                    pair = (block.get("block_hash"), block.get("tokens_hash"))
                    if isinstance(pair[0], int) and isinstance(pair[1], int):
                        pairs.add((pair[0], pair[1]))
    return pairs


def _send_token_prompt(ctx: Context, length: int) -> list[int]:
    tokens = ctx.token_prompt(length)
    body = {"model": ctx.model(), "prompt": tokens, "max_tokens": 1}
    ok_json(ctx.http.post_json(COMPLETIONS, body))
    return tokens


@check(
    "kv.stored.hash-matches-prompt",
    title="Stored block hashes equal those computed from the prompt",
    description="""After a completion of a token-id prompt, the worker MUST publish stored KV
    events whose (block_hash, tokens_hash) pairs include those computed from the prompt's
    full blocks with the MDC's kv_cache_block_size, within the event timeout.""",
    profiles=("kv-routing",),
    features=KV,
    contracts=("events.kv-events",),
    rules=("kv.block-hash-chain", "mdc.block-size-consistent", "kv.stored.hash-matches-prompt"),
)
def hash_matches_prompt(ctx: Context) -> None:
    tap = ctx.require_events()
    size = ctx.block_size()
    since = tap.count()
    tokens = _send_token_prompt(ctx, 3 * size + size // 2)
    expected = chain_hashes(tokens, size)

    def published() -> None:
        stored = _stored_pairs(ctx, since)
        missing = [i for i, pair in enumerate(expected) if pair not in stored]
        if missing:
            raise CheckFailed(
                f"blocks {missing} of the {len(tokens)}-token prompt (block size {size}) "
                f"never appeared in a stored event ({len(stored)} stored blocks seen)"
            )

    ctx.eventually(published, "stored KV events for the prompt", within=ctx.timeouts.event)


def _kv_payloads(ctx: Context) -> list[Any]:
    payloads = []
    for message in ctx.require_events().messages():
        decoded = message.get("decoded")
        if isinstance(decoded, dict) and decoded.get("topic") == "kv-events":
            payload = decoded.get("payload")
            if isinstance(payload, dict) and isinstance(payload.get("__msgpack__"), list):
                payloads.append(payload["__msgpack__"])
    return payloads


@check(
    "mdc.block-size-consistent",
    title="The MDC block size is the one the worker hashes with",
    description="""Prompt blocks of the requests sent during the run, hashed with the MDC's
    kv_cache_block_size, MUST appear in stored KV events; a worker whose block size differs
    from its card is never matched by the KV router.""",
    profiles=("kv-routing",),
    features=KV,
    contracts=("discovery.mdc", "request-plane.preprocessed-request", "events.kv-events"),
    # wrong tokens hashes hide the prompt's blocks just as a wrong block size does
    rules=("mdc.block-size-consistent", "kv.block-hash-chain"),
    phase="observe",
)
def block_size_consistent(ctx: Context) -> None:
    tap = ctx.require_events()
    if not ctx.shared.token_prompts:
        since = tap.count()
        _send_token_prompt(ctx, 256)  # whole blocks for any size dividing 256
        ctx.eventually(
            lambda: _stored_pairs(ctx, since) or _raise("no stored KV event arrived"),
            "a stored KV event",
            within=ctx.timeouts.event,
        )
    correlator = BLOCK_SIZE_CONSISTENT.factory()
    for card in ctx.cards():
        list(correlator.observe("discovery.mdc", card, None))
    for model, tokens in ctx.shared.token_prompts:
        request = {"model": model, "token_ids": tokens}
        list(correlator.observe("request-plane.preprocessed-request", request, None))
    for payload in _kv_payloads(ctx):
        list(correlator.observe("events.kv-events", payload, None))
    issues = list(correlator.finish())
    if issues:
        raise CheckFailed(f"[{BLOCK_SIZE_CONSISTENT.id}] {issues[0][1]}")


def _raise(message: str) -> set[tuple[int, int]]:
    raise CheckFailed(message)


@check(
    "request-plane.frames-valid",
    title="Request-plane frames are valid",
    description="""Every request the frontend sends to a worker over NATS MUST be a valid
    TwoPartCodec frame (lengths, checksum, header, connection info) whose body is a valid
    preprocessed request.""",
    profiles=("core",),
    features=("request-plane-tap",),
    contracts=(
        "request-plane.frame",
        "request-plane.header",
        "request-plane.preprocessed-request",
    ),
    rules=(
        "schema.*",
        "decode",
        "request-plane.frame-lengths",
        "request-plane.checksum",
        "request-plane.connection-info",
    ),
    phase="observe",
)
def frames_valid(ctx: Context) -> None:
    frames = [m["decoded"] for m in ctx.events.messages("request_plane")] if ctx.events else []
    for path in ctx.sut.request_logs:
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CheckFailed(f"cannot read the request log {path}: {exc}") from None
        frames += [json.loads(line) for line in lines if line.strip()]
    if not frames:
        raise CheckFailed("no request-plane frame was seen during the run")
    report = ctx.validator.validate_stream("request-plane.frame", frames)
    ctx.judge(report, f"{report.instances} request-plane frames")


CHECKS: tuple[Check, ...] = (
    messages_valid,
    zmq_framing,
    sequence_gapless,
    event_id_monotonic,
    block_hash_chain,
    parent_stored,
    removed_after_stored,
    fpm_counter,
    hash_matches_prompt,
    block_size_consistent,
    frames_valid,
)
