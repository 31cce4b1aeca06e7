"""Violation modes: make the reference break exactly one contract rule or behaviour.

``dynconform mocker serve --violate MODE`` turns one mode on. A rule mode names the rule ID the
contracts validator reports for what the reference then emits, the contract that catches it
and the surface to look at. A behaviour mode (``behaviour=True``) breaks a promise that no
single instance shows (a status code, a counter across scrapes, what happens after a kill);
its rule is the ID of the conformance check that observes it. The conformance suite uses the
modes to prove that every check can fail::

    from dynconform.mocker.violations import VIOLATIONS

    mode = VIOLATIONS["kv.sequence-monotonic"]
    print(mode.rule, mode.contract, mode.surface)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

__all__ = [
    "VIOLATIONS",
    "Need",
    "Surface",
    "UnknownViolationError",
    "ViolationMode",
    "check_modes",
]

#: Where the broken output shows: which capture a checker must take to see it.
Surface = Literal[
    "discovery",
    "events",
    "request-plane",
    "worker-health",
    "worker-metrics",
    "frontend-health",
    "frontend-live",
    "frontend-metrics",
    "http",
    "http-stream",
]


#: What a mode needs to be visible: a discovery backend (``etcd``, ``file``) or an event plane
#: (``nats``, ``zmq``).
Need = Literal["etcd", "file", "nats", "zmq"]


class UnknownViolationError(ValueError):
    """A violation mode name that the reference does not know."""


@dataclass(frozen=True, slots=True)
class ViolationMode:
    """One way of breaking the contracts on purpose."""

    name: str
    #: the rule ID the contracts validator reports (``schema.<keyword>`` or a semantic rule);
    #: for a behaviour mode, the ID of the conformance check that observes the behaviour
    rule: str
    #: the contract whose validation reports it (behaviour modes: the contract of the
    #: messages that show the behaviour)
    contract: str
    #: the process that misbehaves
    component: Literal["worker", "frontend"]
    surface: Surface
    summary: str
    #: topology the mode needs to be visible
    needs: tuple[Need, ...] = ()
    #: the rule is a behaviour only a conformance check observes, not a validator rule
    behaviour: bool = False


def _modes(*modes: ViolationMode) -> Mapping[str, ViolationMode]:
    return MappingProxyType({mode.name: mode for mode in modes})


_W: Literal["worker"] = "worker"
_F: Literal["frontend"] = "frontend"

#: Every violation mode, by name.
VIOLATIONS: Mapping[str, ViolationMode] = _modes(
    # discovery -------------------------------------------------------------------------------
    ViolationMode(
        "discovery.key-grammar",
        "discovery.key-grammar",
        "discovery.entry",
        _W,
        "discovery",
        "the Endpoint key spells the instance id in upper-case hex",
    ),
    ViolationMode(
        "discovery.key-matches-record",
        "discovery.key-matches-record",
        "discovery.entry",
        _W,
        "discovery",
        "the Endpoint key names another instance id than the record",
    ),
    ViolationMode(
        "discovery.lease-matches-instance",
        "discovery.lease-matches-instance",
        "discovery.entry",
        _W,
        "discovery",
        "etcd keys are attached to a lease whose id is not the worker's instance id",
        needs=("etcd",),
    ),
    ViolationMode(
        "discovery.event-channel-subject",
        "discovery.event-channel-subject",
        "discovery.event-channel",
        _W,
        "discovery",
        "NATS event channels advertise a subject prefix without the endpoint scope",
        needs=("nats",),
    ),
    ViolationMode(
        "discovery.event-source-identity",
        "discovery.event-source-identity",
        "discovery.event-source",
        _W,
        "discovery",
        "the KV event source's descriptor names another publisher id",
    ),
    ViolationMode(
        "mdc.context-length-consistent",
        "mdc.context-length-consistent",
        "discovery.mdc",
        _W,
        "discovery",
        "the card's context_length differs from runtime_config.context_length",
    ),
    ViolationMode(
        "mdc.runtime-config-consistent",
        "mdc.runtime-config-consistent",
        "discovery.mdc",
        _W,
        "discovery",
        "runtime_config advertises data_parallel_size 0",
    ),
    ViolationMode(
        "mdc.block-size-consistent",
        "mdc.block-size-consistent",
        "discovery.mdc",
        _W,
        "discovery",
        "the card advertises twice the block size the engine hashes with",
    ),
    ViolationMode(
        "discovery.mdc.missing-field",
        "schema.required",
        "discovery.mdc",
        _W,
        "discovery",
        "the card lacks the required field migration_limit",
    ),
    ViolationMode(
        "discovery.worker-registered",
        "discovery.worker-registered",
        "discovery.model",
        _W,
        "discovery",
        "the Model record (key and record) names another instance id than the worker's Endpoint",
        needs=("file",),
        behaviour=True,
    ),
    # events ----------------------------------------------------------------------------------
    ViolationMode(
        "events.subject-matches-topic",
        "events.subject-matches-topic",
        "events.message",
        _W,
        "events",
        "forward-pass metrics go out on the subject/ZMQ topic 'forward_pass_metrics'",
    ),
    ViolationMode(
        "events.topic-known",
        "events.topic-known",
        "events.envelope",
        _W,
        "events",
        "the worker also publishes a heartbeat on the unknown topic 'worker-heartbeat'",
    ),
    ViolationMode(
        "kv.sequence-monotonic",
        "kv.sequence-monotonic",
        "events.envelope",
        _W,
        "events",
        "the kv-events publisher skips envelope sequence number 2",
    ),
    ViolationMode(
        "kv.block-hash-chain",
        "kv.block-hash-chain",
        "events.kv-events",
        _W,
        "events",
        "stored blocks carry a tokens_hash that is not the one their block_hash chains",
    ),
    ViolationMode(
        "kv.event-id-monotonic",
        "kv.event-id-monotonic",
        "events.kv-events",
        _W,
        "events",
        "the second KV event repeats the first one's event_id",
    ),
    ViolationMode(
        "kv.parent-stored",
        "kv.parent-stored",
        "events.kv-events",
        _W,
        "events",
        "an extra stored event chains to a parent block the worker never stored",
    ),
    ViolationMode(
        "kv.removed-after-stored",
        "kv.removed-after-stored",
        "events.kv-events",
        _W,
        "events",
        "an extra removed event drops a block the worker never stored",
    ),
    ViolationMode(
        "fpm.counter-monotonic",
        "fpm.counter-monotonic",
        "events.forward-pass-metrics",
        _W,
        "events",
        "every fifth forward-pass snapshot repeats its predecessor's counter_id",
    ),
    ViolationMode(
        "events.kv-metrics.wrong-type",
        "schema.type",
        "events.kv-metrics",
        _W,
        "events",
        "kv_metrics payloads carry kv_used_blocks as a string",
    ),
    ViolationMode(
        "events.envelope.missing-field",
        "schema.required",
        "events.envelope",
        _W,
        "events",
        "envelopes lack the required field published_at",
    ),
    ViolationMode(
        "events.zmq-framing",
        "events.zmq-framing",
        "events.envelope",
        _W,
        "events",
        "the ZMQ publisher-id frame holds the id little-endian, so it differs from the envelope's",
        needs=("zmq",),
        behaviour=True,
    ),
    # request plane ---------------------------------------------------------------------------
    ViolationMode(
        "request-plane.checksum",
        "request-plane.checksum",
        "request-plane.frame",
        _F,
        "request-plane",
        "request frames carry a checksum that is neither 0 nor XXH3-64",
    ),
    ViolationMode(
        "request-plane.frame-lengths",
        "request-plane.frame-lengths",
        "request-plane.frame",
        _F,
        "request-plane",
        "request frames carry one byte after the length the prefix declares",
    ),
    ViolationMode(
        "request-plane.connection-info",
        "request-plane.connection-info",
        "request-plane.frame",
        _F,
        "request-plane",
        "the response-stream context in connection_info is not the request's id",
    ),
    # health ----------------------------------------------------------------------------------
    ViolationMode(
        "health.worker.missing-status",
        "schema.required",
        "health.worker",
        _W,
        "worker-health",
        "the worker's /health body has no status",
    ),
    ViolationMode(
        "health.frontend-live.missing-status",
        "schema.required",
        "health.frontend-live",
        _F,
        "frontend-live",
        "the frontend's /live body has no status",
    ),
    ViolationMode(
        "health.frontend-endpoints-match-instances",
        "health.frontend-endpoints-match-instances",
        "health.frontend",
        _F,
        "frontend-health",
        "the frontend's /health leaves the first instance's URL out of endpoints",
    ),
    # metrics ---------------------------------------------------------------------------------
    ViolationMode(
        "metrics.exposition-parses",
        "metrics.exposition-parses",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "the worker's /metrics holds a line that is not exposition syntax",
    ),
    ViolationMode(
        "metrics.family-type",
        "metrics.family-type",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "dynamo_component_inflight_requests is exposed as a counter",
    ),
    ViolationMode(
        "metrics.histogram-cumulative",
        "metrics.histogram-cumulative",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "request-duration histogram buckets decrease",
    ),
    ViolationMode(
        "metrics.required-families",
        "metrics.required-families",
        "metrics.frontend-exposition",
        _F,
        "frontend-metrics",
        "the frontend leaves dynamo_frontend_disconnected_clients out",
    ),
    ViolationMode(
        "metrics.required-labels",
        "metrics.required-labels",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "dynamo_component_requests_total lacks its worker_id label",
    ),
    ViolationMode(
        "metrics.counters-monotonic",
        "metrics.counters-monotonic",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "dynamo_component_request_bytes_total starts again from zero after every scrape",
        behaviour=True,
    ),
    ViolationMode(
        "metrics.requests-total-exact",
        "metrics.requests-total-exact",
        "metrics.worker-exposition",
        _W,
        "worker-metrics",
        "dynamo_component_requests_total counts every request twice (on arrival and at its end)",
        behaviour=True,
    ),
    # http ------------------------------------------------------------------------------------
    ViolationMode(
        "http.error-type-matches-code",
        "http.error-type-matches-code",
        "http.error",
        _F,
        "http",
        "the 404 for an unknown model says type 'Model Not Found'",
    ),
    ViolationMode(
        "http.usage-totals",
        "http.usage-totals",
        "http.chat-completion",
        _F,
        "http",
        "usage.total_tokens is one more than prompt_tokens + completion_tokens",
    ),
    ViolationMode(
        "http.models.wrong-object",
        "schema.const",
        "http.models",
        _F,
        "http",
        "GET /v1/models answers with object 'models' instead of 'list'",
    ),
    ViolationMode(
        "http.chat.wrong-object",
        "schema.const",
        "http.chat-completion",
        _F,
        "http",
        "non-streamed chat completions say object 'chat.completion.chunk'",
    ),
    ViolationMode(
        "http.completion.missing-field",
        "schema.required",
        "http.completion",
        _F,
        "http",
        "non-streamed text completions lack the required field created",
    ),
    ViolationMode(
        "http.finish-reason-length",
        "http.finish-reason-length",
        "http.completion",
        _F,
        "http",
        "non-streamed text completions that reach max_tokens end with finish_reason 'stop'",
        behaviour=True,
    ),
    ViolationMode(
        "http.errors.malformed-json",
        "http.errors.malformed-json",
        "http.error",
        _F,
        "http",
        "a body that is not JSON is answered 422 (with a valid envelope) instead of 400",
        behaviour=True,
    ),
    ViolationMode(
        "http.errors.invalid-parameter",
        "http.errors.invalid-parameter",
        "http.nvext",
        _F,
        "http",
        "unknown nvext fields are ignored instead of answered 400",
        behaviour=True,
    ),
    ViolationMode(
        "http.sse.data-lines-only",
        "http.sse.data-lines-only",
        "http.sse-stream",
        _F,
        "http-stream",
        "streams start with an SSE comment line",
    ),
    ViolationMode(
        "http.sse.done-terminator",
        "http.sse.done-terminator",
        "http.sse-stream",
        _F,
        "http-stream",
        "streams end without data: [DONE]",
    ),
    ViolationMode(
        "http.sse.chunks-valid",
        "http.sse.chunks-valid",
        "http.sse-stream",
        _F,
        "http-stream",
        "the last chunk of a stream carries created as a string",
    ),
    ViolationMode(
        "http.sse.consistent-chunks",
        "http.sse.consistent-chunks",
        "http.sse-stream",
        _F,
        "http-stream",
        "the last chunk of a stream has another id",
    ),
    ViolationMode(
        "http.sse.one-finish-reason",
        "http.sse.one-finish-reason",
        "http.sse-stream",
        _F,
        "http-stream",
        "streamed choices never get a finish_reason",
    ),
    ViolationMode(
        "http.sse.first-delta-role",
        "http.sse.first-delta-role",
        "http.sse-stream",
        _F,
        "http-stream",
        "the first delta of a chat stream has no role",
    ),
    # fault tolerance ---------------------------------------------------------------------------
    ViolationMode(
        "fault.worker-kill-deregisters",
        "fault.worker-kill-deregisters",
        "http.models",
        _F,
        "http",
        "GET /v1/models keeps listing a model after its last worker left discovery",
        behaviour=True,
    ),
    ViolationMode(
        "fault.worker-restart-recovers",
        "fault.worker-restart-recovers",
        "discovery.entry",
        _W,
        "discovery",
        "a restarted worker resumes from the ready file its killed predecessor left: it takes "
        "over the old instance id and registers nothing",
        behaviour=True,
    ),
)


def check_modes(names: Iterable[str]) -> frozenset[str]:
    """The given mode names as a set; raises :class:`UnknownViolationError` for an unknown one."""
    modes = frozenset(names)
    unknown = sorted(modes - VIOLATIONS.keys())
    if unknown:
        raise UnknownViolationError(
            f"unknown violation mode {unknown[0]!r} (see 'dynconform mocker violations')"
        )
    return modes
