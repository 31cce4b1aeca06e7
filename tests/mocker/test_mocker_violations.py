"""Each violation mode makes the reference emit output that the contracts validator rejects
with the mode's rule ID, and with no other rule; each behaviour mode makes the reference
behave observably wrong where the conformant reference behaves right."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio
from prometheus_client.parser import text_string_to_metric_families
from reference_helpers import (
    CHAT,
    ENGINE,
    Reference,
    capturing,
    kv_payloads,
    preprocessed,
    reference,
)

from dynconform.conformance import default_checks
from dynconform.contracts import ValidationReport, Validator, default_rules
from dynconform.mocker.discovery import read_file_store
from dynconform.mocker.violations import (
    VIOLATIONS,
    UnknownViolationError,
    ViolationMode,
    check_modes,
)
from dynconform.mocker.worker import Worker, WorkerConfig

#: modes the in-process reference (file discovery, ZMQ events) shows
IN_PROCESS = {name for name, mode in VIOLATIONS.items() if set(mode.needs) <= {"file", "zmq"}}
LOCAL = sorted(name for name in IN_PROCESS if not VIOLATIONS[name].behaviour)
BEHAVIOURS = sorted(name for name, mode in VIOLATIONS.items() if mode.behaviour)
#: one mode per way of observing (surface and contract), to observe the conformant reference
OBSERVATIONS = sorted(
    {
        min(n for n in LOCAL if (VIOLATIONS[n].surface, VIOLATIONS[n].contract) == key)
        for key in {(VIOLATIONS[n].surface, VIOLATIONS[n].contract) for n in LOCAL}
    }
)


async def observe(ref: Reference, mode: ViolationMode, validator: Validator) -> ValidationReport:
    """Drive the reference and validate the surface where ``mode`` shows."""
    system = ref.worker.system
    assert system is not None
    surface = mode.surface
    if surface == "discovery" and mode.rule != "mdc.block-size-consistent":
        return validator.validate_stream("discovery.entry", await ref.records())
    if surface in ("events", "discovery"):
        async with capturing(ref) as messages:
            await ref.workload()
        if mode.rule == "mdc.block-size-consistent":
            return validator.validate_many(
                [
                    ("discovery.mdc", [ref.card()]),
                    ("request-plane.preprocessed-request", preprocessed(ref.frames())),
                    ("events.kv-events", kv_payloads(messages)),
                ]
            )
        return validator.validate_stream("events.message", [m.view() for m in messages])
    if surface == "request-plane":
        await ref.workload()
        return validator.validate_stream("request-plane.frame", ref.frames())
    if surface == "worker-health":
        _, text = await ref.get(system.url + "/health")
        return validator.validate("health.worker", json.loads(text))
    if surface == "worker-metrics":
        await ref.workload()
        _, text = await ref.get(system.url + "/metrics")
        return validator.validate("metrics.worker-exposition", text)
    if surface == "frontend-live":
        _, text = await ref.get(ref.frontend.url + "/live")
        return validator.validate("health.frontend-live", json.loads(text))
    if surface == "frontend-health":
        _, text = await ref.get(ref.frontend.url + "/health")
        return validator.validate("health.frontend", json.loads(text))
    if surface == "frontend-metrics":
        await ref.workload()
        _, text = await ref.get(ref.frontend.url + "/metrics")
        return validator.validate("metrics.frontend-exposition", text)
    if surface == "http-stream":
        body = CHAT | {"stream": True, "stream_options": {"include_usage": True}}
        _, text = await ref.post("/v1/chat/completions", body)
        return validator.validate("http.sse-stream", text)
    assert surface == "http"
    if mode.contract == "http.error":
        _, text = await ref.post("/v1/chat/completions", CHAT | {"model": "nope"})
    elif mode.contract == "http.models":
        _, text = await ref.get(ref.frontend.url + "/v1/models")
    elif mode.contract == "http.completion":
        _, text = await ref.post("/v1/completions", COMPLETION)
    else:
        _, text = await ref.post("/v1/chat/completions", CHAT)
    return validator.validate(mode.contract, json.loads(text))


def assert_only(report: ValidationReport, mode: ViolationMode) -> None:
    assert report.rules() == {mode.rule}, [str(v) for v in report.violations[:5]]


COMPLETION = {"model": "tiny", "prompt": "the quick brown fox", "max_tokens": 6}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


@pytest.mark.parametrize("name", OBSERVATIONS)
def test_conformant_reference_passes_the_observation(
    name: str, tmp_path: Path, tiny_model_path: Path, validator: Validator
) -> None:
    """Without violation modes, the same observation finds nothing."""

    async def main() -> ValidationReport:
        async with reference(tmp_path, tiny_model_path) as ref:
            return await observe(ref, VIOLATIONS[name], validator)

    report = asyncio.run(main())
    assert report.ok, [str(v) for v in report.violations[:5]]


@pytest.mark.parametrize("name", LOCAL)
def test_violation_mode_is_caught(
    name: str, tmp_path: Path, tiny_model_path: Path, validator: Validator
) -> None:
    mode = VIOLATIONS[name]

    async def main() -> ValidationReport:
        async with reference(tmp_path, tiny_model_path, violations=(name,)) as ref:
            return await observe(ref, mode, validator)

    assert_only(asyncio.run(main()), mode)


def test_every_semantic_rule_has_a_mode() -> None:
    covered = {mode.rule for mode in VIOLATIONS.values()}
    rules = {rule.id for rule in default_rules()}
    # deployment graphs and dynconform's own reports are not emitted by the reference; a
    # snapshot of a real store never holds one key twice
    missing = {r for r in rules - covered if not r.startswith(("deployment.", "report."))}
    assert missing == {"discovery.unique-keys"}


def test_every_family_has_a_mode() -> None:
    families = {mode.contract.split(".", 1)[0] for mode in VIOLATIONS.values()}
    assert families >= {"discovery", "events", "health", "http", "metrics", "request-plane"}


def test_modes_name_known_rules_and_contracts(validator: Validator) -> None:
    rules = {rule.id for rule in default_rules()}
    checks = default_checks()
    for mode in VIOLATIONS.values():
        if mode.behaviour:  # a behaviour is named by the check that observes it
            assert mode.rule in checks, mode.name
        else:
            assert mode.rule in rules or mode.rule.startswith("schema."), mode.name
        assert checks.enforcing(mode.contract, mode.rule), f"{mode.name} targets no check"
        validator.catalog.get(mode.contract)


def test_unknown_mode_is_rejected() -> None:
    assert check_modes(["kv.block-hash-chain"]) == {"kv.block-hash-chain"}
    with pytest.raises(UnknownViolationError, match="no-such-mode"):
        check_modes(["no-such-mode"])


# -- behaviour modes ------------------------------------------------------------------------------

Probe = Callable[[Path, Path, tuple[str, ...], Validator], Awaitable[Any]]
Verdict = Callable[[Any, Any], None]
#: behaviour mode -> (what to observe, how the violated and the conformant observation differ)
PROBES: dict[str, tuple[Probe, Verdict]] = {}


def behaviour(name: str, verdict: Verdict) -> Callable[[Probe], Probe]:
    def register(probe: Probe) -> Probe:
        PROBES[name] = (probe, verdict)
        return probe

    return register


def _expect(violated: Any, conformant: Any) -> Verdict:
    def verdict(got_violated: Any, got_conformant: Any) -> None:
        assert got_violated == violated
        assert got_conformant == conformant

    return verdict


def _sample(text: str, name: str) -> float:
    """The sum of the samples called ``name`` in an exposition."""
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    )


async def _scrape(ref: Reference, validator: Validator) -> str:
    assert ref.worker.system is not None
    _, text = await ref.get(ref.worker.system.url + "/metrics")
    assert validator.validate("metrics.worker-exposition", text).ok
    return text


@behaviour("discovery.worker-registered", _expect((False, 200, True), (True, 200, True)))
async def _registration(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[bool, int, bool]:
    """Whether the generate Endpoint's instance has a Model record; the model is still served
    (the frontend routes by endpoint) and every record is valid."""
    async with reference(tmp, model, violations=modes) as ref:
        entries = await ref.records()
        status, _ = await ref.post("/v1/chat/completions", CHAT)
    values = [e["value"] for e in entries]
    generate = [v for v in values if v["type"] == "Endpoint" and v["endpoint"] == "generate"]
    models = {v["instance_id"] for v in values if v["type"] == "Model"}
    valid = validator.validate_stream("discovery.entry", entries).ok
    return generate[0]["instance_id"] in models, status, valid


@behaviour(
    "events.zmq-framing",
    lambda violated, conformant: (
        violated[0] != violated[1] and conformant[0] == conformant[1] and violated[2:] == (True,)
    ),
)
async def _zmq_publisher_id(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[int, int, bool]:
    """The publisher-id frame (read big-endian), the envelope's publisher_id, and whether the
    envelopes are valid."""
    async with reference(tmp, model, violations=modes) as ref:
        socket = zmq.asyncio.Context.instance().socket(zmq.SUB)
        socket.setsockopt(zmq.LINGER, 0)
        socket.setsockopt(zmq.SUBSCRIBE, b"")
        for publisher in ref.worker.publishers.values():
            socket.connect(getattr(publisher, "endpoint", ""))
        try:
            async with capturing(ref) as messages:
                await ref.post("/v1/completions", COMPLETION)
            parts = await asyncio.wait_for(socket.recv_multipart(), 10)
        finally:
            socket.close()
    envelope = msgpack.unpackb(parts[3][5:], raw=False)
    valid = validator.validate_stream("events.message", [m.view() for m in messages]).ok
    return int.from_bytes(parts[1], "big"), envelope["publisher_id"], valid


def _decreased(violated: tuple[float, float], conformant: tuple[float, float]) -> None:
    assert violated[1] < violated[0]
    assert conformant[1] > conformant[0]


@behaviour("metrics.counters-monotonic", _decreased)
async def _request_bytes(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[float, float]:
    """dynamo_component_request_bytes_total after three requests, then after one more."""
    name = "dynamo_component_request_bytes_total"
    async with reference(tmp, model, violations=modes) as ref:
        for _ in range(3):
            assert (await ref.post("/v1/completions", COMPLETION))[0] == 200
        first = _sample(await _scrape(ref, validator), name)
        assert (await ref.post("/v1/completions", COMPLETION))[0] == 200
        second = _sample(await _scrape(ref, validator), name)
    return first, second


@behaviour("metrics.requests-total-exact", _expect(6.0, 3.0))
async def _requests_total(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> float:
    """How much dynamo_component_requests_total grows with three requests."""
    name = "dynamo_component_requests_total"
    async with reference(tmp, model, violations=modes) as ref:
        before = _sample(await _scrape(ref, validator), name)
        for _ in range(3):
            assert (await ref.post("/v1/completions", COMPLETION))[0] == 200
        seen: list[float] = []
        while len(seen) < 3 or len(set(seen[-3:])) > 1:  # the worker counts a request's end
            seen.append(_sample(await _scrape(ref, validator), name))
            await asyncio.sleep(0.05)
    return seen[-1] - before


async def _complete(
    tmp: Path, model: Path, modes: tuple[str, ...], path: str, body: Any
) -> tuple[int, Any]:
    async with reference(tmp, model, violations=modes) as ref:
        status, text = await ref.post(path, body)
    return status, json.loads(text)


@behaviour("http.finish-reason-length", _expect((4, "stop", True), (4, "length", True)))
async def _finish_reason(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[int, str, bool]:
    body = COMPLETION | {"max_tokens": 4, "ignore_eos": True}
    status, data = await _complete(tmp, model, modes, "/v1/completions", body)
    assert status == 200
    valid = validator.validate("http.completion", data).ok
    return data["usage"]["completion_tokens"], data["choices"][0]["finish_reason"], valid


@behaviour("http.errors.malformed-json", _expect((422, 422, True), (400, 400, True)))
async def _malformed_json(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[int, int, bool]:
    status, data = await _complete(tmp, model, modes, "/v1/chat/completions", "{not json")
    return status, data["code"], validator.validate("http.error", data).ok


@behaviour("http.errors.invalid-parameter", _expect(200, 400))
async def _unknown_nvext_field(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> int:
    body = CHAT | {"nvext": {"no_such_field": True}}
    status, _ = await _complete(tmp, model, modes, "/v1/chat/completions", body)
    return status


@behaviour("fault.worker-kill-deregisters", _expect(["tiny"], []))
async def _models_after_the_worker_left(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> list[str]:
    """/v1/models once the only worker left discovery."""
    async with reference(tmp, model, violations=modes) as ref:
        watcher = ref.frontend.watcher
        await ref.worker.stop()
        polled = watcher.polled
        while watcher.polled < polled + 2:
            await asyncio.sleep(0.05)
        _, text = await ref.get(ref.frontend.url + "/v1/models")
    return [m["id"] for m in json.loads(text)["data"]]


@behaviour(
    "fault.worker-restart-recovers",
    lambda violated, conformant: violated == (True, 0) and not conformant[0] and conformant[1] > 0,
)
async def _restarted_worker(
    tmp: Path, model: Path, modes: tuple[str, ...], validator: Validator
) -> tuple[bool, int]:
    """A worker started again after its predecessor (same command line): whether it took over
    the predecessor's instance id, and how many records it registered."""
    config = WorkerConfig(
        model_path=model,
        file_kv=tmp / "kv",
        engine=ENGINE,
        violations=frozenset(modes),
        ready_file=tmp / "worker.ready.json",
    )
    async with Worker(config) as first:
        predecessor = first.instance_id
    async with Worker(config) as second:
        registered = len(read_file_store(tmp / "kv"))
        return second.instance_id == predecessor, registered


def test_every_behaviour_mode_has_a_probe() -> None:
    assert sorted(PROBES) == BEHAVIOURS
    assert set(BEHAVIOURS) <= IN_PROCESS


@pytest.mark.parametrize("name", BEHAVIOURS)
def test_behaviour_mode_is_observable(
    name: str, tmp_path: Path, tiny_model_path: Path, validator: Validator
) -> None:
    """The mode's behaviour differs from the conformant reference's, observably."""
    probe, verdict = PROBES[name]

    async def main() -> tuple[Any, Any]:
        violated = await probe(tmp_path / "violated", tiny_model_path, (name,), validator)
        conformant = await probe(tmp_path / "conformant", tiny_model_path, (), validator)
        return violated, conformant

    violated, conformant = asyncio.run(main())
    outcome = verdict(violated, conformant)
    assert outcome is None or outcome, (violated, conformant)


def test_the_documentation_lists_every_mode() -> None:
    text = (Path(__file__).parents[2] / "docs" / "mocker.md").read_text()
    rows = {
        line.split("|")[1].strip(" `"): line for line in text.splitlines() if line.startswith("| `")
    }
    for name, mode in VIOLATIONS.items():
        assert name in rows, f"docs/mocker.md does not list violation mode {name}"
        assert f"`{mode.rule}`" in rows[name], name
        assert f"`{mode.contract}`" in rows[name], name
