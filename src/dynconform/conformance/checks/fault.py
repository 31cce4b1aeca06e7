"""Fault tolerance: a killed worker leaves discovery and /v1/models; a restarted one serves.

These checks change the deployment, so they run last.
"""

from __future__ import annotations

import time
from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed, CheckSkipped
from dynconform.conformance._sut import WorkerControl
from dynconform.conformance.checks._common import CHAT, chat_body, ok_json

FEATURES = ("process-control", "discovery-tap")


def _control(ctx: Context) -> WorkerControl:
    ctx.require_discovery()
    if ctx.sut.control is None:
        raise CheckSkipped("the runner did not start the workers")
    return ctx.sut.control


def _instance_of_worker(ctx: Context) -> int:
    tap = ctx.require_discovery()
    ids = {r.get("instance_id") for r in tap.records("Endpoint") if r.get("endpoint") == "generate"}
    if len(ids) != 1:
        raise CheckSkipped(f"expected one generate instance in discovery, found {len(ids)}")
    found = ids.pop()
    if not isinstance(found, int):
        raise CheckFailed(f"generate instance id is {found!r}")
    return found


def _owned(record: Any, instance: int) -> bool:
    if not isinstance(record, dict):
        return False
    if record.get("type") in ("Endpoint", "Model"):
        return bool(record.get("instance_id") == instance)
    if record.get("type") == "EventSource":
        worker = (record.get("metadata") or {}).get("worker") or {}
        return bool(worker.get("worker_id") == instance)
    return False


def _listed(ctx: Context) -> bool:
    data = ctx.http.get("/v1/models").json()
    ids = {m.get("id") for m in data.get("data", []) if isinstance(m, dict)}
    return ctx.model() in ids


@check(
    "fault.worker-kill-deregisters",
    title="A killed worker leaves discovery and /v1/models",
    description="""After its only worker is killed with SIGKILL, the worker's Endpoint, Model and
    EventSource records MUST leave the discovery store and its model MUST leave /v1/models
    within the deregistration timeout.""",
    profiles=("fault-tolerance",),
    features=FEATURES,
    rules=("fault.worker-kill-deregisters",),
    phase="destructive",
)
def kill_deregisters(ctx: Context) -> None:
    control = _control(ctx)
    tap = ctx.require_discovery()
    model = ctx.model()
    instance = _instance_of_worker(ctx)
    control.kill_worker(0)
    killed = time.monotonic()

    def gone() -> None:
        left = sorted(k for k, e in tap.snapshot().items() if _owned(e.get("value"), instance))
        if left:
            raise CheckFailed(f"{len(left)} record(s) of instance {instance:x} remain: {left[0]}")
        if _listed(ctx):
            raise CheckFailed(f"model {model!r} is still listed in /v1/models")

    ctx.eventually(gone, "worker deregistered", within=ctx.timeouts.deregistration)
    ctx.shared.memo["deregistered-after"] = round(time.monotonic() - killed, 2)


@check(
    "fault.worker-restart-recovers",
    title="A restarted worker registers and serves again",
    description="""After a killed worker is started again, its model MUST be listed in
    /v1/models and a chat completion MUST succeed within the recovery timeout.""",
    profiles=("fault-tolerance",),
    features=FEATURES,
    rules=("fault.worker-restart-recovers",),
    phase="destructive",
)
def restart_recovers(ctx: Context) -> None:
    control = _control(ctx)
    if "deregistered-after" not in ctx.shared.memo:
        control.kill_worker(0)
    control.restart_worker(0)

    def serving() -> None:
        if not _listed(ctx):
            raise CheckFailed(f"model {ctx.model()!r} is not listed in /v1/models")
        response = ctx.http.post_json(CHAT, chat_body(ctx))
        if response.status != 200:
            raise CheckFailed(f"{response.describe()}: {response.text[:200]!r}")
        ok_json(response)

    ctx.eventually(serving, "worker serving again", within=ctx.timeouts.recovery)


CHECKS: tuple[Check, ...] = (kill_deregisters, restart_recovers)
