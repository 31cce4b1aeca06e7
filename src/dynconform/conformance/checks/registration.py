"""Registration: the records a worker keeps in the discovery store while it serves."""

from __future__ import annotations

from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.contracts import ValidationReport, Violation

DISCOVERY = ("discovery-tap",)


def _registered(ctx: Context, snapshot: dict[str, dict[str, Any]]) -> str | None:
    """Why the served model is not fully registered yet, or ``None`` when it is."""
    model = ctx.model()
    values: list[dict[str, Any]] = [
        e["value"] for e in snapshot.values() if isinstance(e.get("value"), dict)
    ]
    models = [
        v
        for v in values
        if v.get("type") == "Model"
        and isinstance(v.get("card_json"), dict)
        and model in (v["card_json"].get("display_name"), v["card_json"].get("slug"))
    ]
    if not models:
        return f"no Model record whose card names {model!r}"
    endpoints = {
        (v.get("namespace"), v.get("component"), v.get("endpoint"), v.get("instance_id"))
        for v in values
        if v.get("type") == "Endpoint"
    }
    for record in models:
        key = (
            record.get("namespace"),
            record.get("component"),
            record.get("endpoint"),
            record.get("instance_id"),
        )
        if key not in endpoints:
            return f"the Model record of instance {record.get('instance_id')} has no Endpoint"
    return None


@check(
    "discovery.worker-registered",
    title="A serving worker is registered in discovery",
    description="""A worker that serves a model MUST keep a Model record (carrying the model
    deployment card) and an Endpoint record for the same namespace, component, endpoint and
    instance id in the discovery store.""",
    profiles=("core",),
    features=DISCOVERY,
    rules=("discovery.worker-registered",),
)
def worker_registered(ctx: Context) -> None:
    tap = ctx.require_discovery()
    reason: list[str] = []

    def ready(snapshot: dict[str, dict[str, Any]]) -> bool:
        why = _registered(ctx, snapshot)
        reason[:] = [why or ""]
        return why is None

    if not tap.wait_for(ready, ctx.timeouts.registration):
        raise CheckFailed(
            f"not registered within {ctx.timeouts.registration:g} s: {reason[0] if reason else ''}"
        )


RECORD_CONTRACTS = {
    "Endpoint": "discovery.endpoint",
    "Model": "discovery.model",
    "EventChannel": "discovery.event-channel",
    "EventSource": "discovery.event-source",
}


def _owner(entry: Any, violation: Violation) -> str:
    """The contract a schema violation of an entry belongs to, judged by its pointer.

    The entry schema reaches the record and card schemas through ``$ref``, so their schema
    errors surface as ``discovery.entry`` violations; they are attributed to the record's (or
    the card's) contract so that the check owning that record reports them.
    """
    if not violation.rule.startswith("schema.") or violation.contract != "discovery.entry":
        return violation.contract
    if violation.pointer.startswith("/value/card_json"):
        return "discovery.mdc"
    value = entry.get("value") if isinstance(entry, dict) else None
    if violation.pointer.startswith("/value/") and isinstance(value, dict):
        return RECORD_CONTRACTS.get(str(value.get("type")), "discovery.record")
    return violation.contract


def entries_report(ctx: Context) -> ValidationReport:
    """Every entry version seen by the discovery tap, each validated on its own."""
    tap = ctx.require_discovery()
    entries = tap.entries()
    key = f"discovery-report:{len(entries)}"

    def compute() -> ValidationReport:
        report = ValidationReport(contract="discovery.entry")
        for index, entry in enumerate(entries):
            single = ctx.validator.validate("discovery.entry", entry)
            for v in single.violations:
                owner = _owner(entry, v)
                report.violations.append(Violation(owner, v.rule, v.pointer, v.message, index))
            report.checked.update(single.checked)
        report.instances = len(entries)
        return report

    return ctx.memo(key, compute)


def _judge_entries(ctx: Context, needs: str) -> None:
    report = entries_report(ctx)
    if not report.checked.get(needs):
        raise CheckFailed(f"no {needs} record was seen in the discovery store during the run")
    ctx.judge(report, f"{report.instances} discovery entries")


@check(
    "discovery.keys-valid",
    title="Discovery keys follow the key grammar and match their records",
    description="""Every key in the discovery store MUST follow Dynamo's key grammar in the
    store's form, MUST name the record stored under it, MUST be unique, and in etcd MUST be
    held by the lease of the worker that wrote it.""",
    profiles=("core",),
    features=DISCOVERY,
    contracts=("discovery.entry",),
    rules=(
        "schema.*",
        "discovery.key-grammar",
        "discovery.key-matches-record",
        "discovery.lease-matches-instance",
        "discovery.unique-keys",
    ),
    phase="observe",
)
def keys_valid(ctx: Context) -> None:
    _judge_entries(ctx, "discovery.entry")


@check(
    "discovery.records-valid",
    title="Endpoint, EventChannel and EventSource records are valid",
    description="""Every Endpoint, EventChannel and EventSource record seen during the run
    MUST validate against its contract; NATS event channels MUST advertise the subject prefix
    of their scope and a KV event source MUST name its own publisher.""",
    profiles=("core",),
    features=DISCOVERY,
    contracts=(
        "discovery.record",
        "discovery.endpoint",
        "discovery.event-channel",
        "discovery.event-source",
    ),
    rules=("schema.*", "discovery.event-channel-subject", "discovery.event-source-identity"),
    phase="observe",
)
def records_valid(ctx: Context) -> None:
    _judge_entries(ctx, "discovery.endpoint")


@check(
    "discovery.mdc-valid",
    title="Model records and their model deployment cards are valid",
    description="""Every Model record MUST validate against discovery.model and its card
    against discovery.mdc; the card's context length and runtime config MUST be consistent.""",
    profiles=("core",),
    features=DISCOVERY,
    contracts=("discovery.model", "discovery.mdc"),
    rules=("schema.*", "mdc.context-length-consistent", "mdc.runtime-config-consistent"),
    phase="observe",
)
def mdc_valid(ctx: Context) -> None:
    _judge_entries(ctx, "discovery.mdc")


CHECKS: tuple[Check, ...] = (worker_registered, keys_valid, records_valid, mdc_valid)
