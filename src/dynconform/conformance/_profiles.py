"""Conformance profiles and the optional features a backend declares.

A profile groups checks by purpose; a feature is an optional capability of a system under
test (or of what the runner can observe of it). A check that needs a feature the backend
does not declare is skipped with that reason, and counts as ``extended`` in its profile.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["DEFAULT_PROFILES", "FEATURES", "PROFILES"]

PROFILES: Mapping[str, str] = MappingProxyType(
    {
        "core": "registration records, HTTP basics, errors, health, metrics, event plane",
        "streaming": "SSE framing and chunks of streamed chat and text completions",
        "kv-routing": "KV cache events: sequences, event ids, block hashes agreeing with prompts",
        "openai-strict": "OpenAI behaviour that Dynamo does not promise (error envelope, ...)",
        "fault-tolerance": "a killed worker leaves discovery and /v1/models; a restarted one "
        "serves",
        "fuzz": "schemathesis against the OpenAPI document of the http contracts",
    }
)

#: Profiles run when none is named.
DEFAULT_PROFILES: tuple[str, ...] = ("core", "streaming", "kv-routing")

FEATURES: Mapping[str, str] = MappingProxyType(
    {
        "discovery-tap": "the runner can read the discovery store (file directory or etcd)",
        "event-plane-tap": "the runner can subscribe to the event plane (ZMQ or NATS)",
        "request-plane-tap": "requests travel over NATS, where the runner can read them",
        "worker-system-server": "the workers' system servers (/health, /metrics) are reachable",
        "kv-events": "workers publish KV cache events with Dynamo's block hashing",
        "token-prompts": "/v1/completions accepts a prompt of token ids",
        "ignore-eos": "requests may set ignore_eos so that max_tokens tokens are generated",
        "process-control": "the runner started the workers and may kill and restart them",
    }
)
