"""Each violation mode makes the reference emit output that the contracts validator rejects
with the mode's rule ID, and with no other rule."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from reference_helpers import CHAT, Reference, capturing, kv_payloads, preprocessed, reference

from dynconform.contracts import ValidationReport, Validator, default_rules
from dynconform.mocker.violations import (
    VIOLATIONS,
    UnknownViolationError,
    ViolationMode,
    check_modes,
)

LOCAL = sorted(name for name, mode in VIOLATIONS.items() if not mode.needs)
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
    else:
        _, text = await ref.post("/v1/chat/completions", CHAT)
    return validator.validate(mode.contract, json.loads(text))


def assert_only(report: ValidationReport, mode: ViolationMode) -> None:
    assert report.rules() == {mode.rule}, [str(v) for v in report.violations[:5]]


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
    # deployment graphs are not emitted by the reference; a snapshot of a real store never
    # holds one key twice
    missing = {r for r in rules - covered if not r.startswith("deployment.")}
    assert missing == {"discovery.unique-keys"}


def test_every_family_has_a_mode() -> None:
    families = {mode.contract.split(".", 1)[0] for mode in VIOLATIONS.values()}
    assert families >= {"discovery", "events", "health", "http", "metrics", "request-plane"}


def test_modes_name_known_rules_and_contracts(validator: Validator) -> None:
    rules = {rule.id for rule in default_rules()}
    for mode in VIOLATIONS.values():
        assert mode.rule in rules or mode.rule.startswith("schema."), mode.name
        validator.catalog.get(mode.contract)


def test_unknown_mode_is_rejected() -> None:
    assert check_modes(["kv.block-hash-chain"]) == {"kv.block-hash-chain"}
    with pytest.raises(UnknownViolationError, match="no-such-mode"):
        check_modes(["no-such-mode"])
