"""Health endpoints of the frontend and of the workers' system servers."""

from __future__ import annotations

from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance._http import HttpClient

WORKER = ("worker-system-server",)


@check(
    "health.frontend.ready",
    title="The frontend is healthy once a worker is registered",
    description="""Once a worker is registered, the frontend's GET /health MUST answer 200 with
    status `healthy` and a body valid against health.frontend whose `instances` include every
    registered generate instance, within the consistency window.""",
    profiles=("core",),
    contracts=("health.frontend",),
    rules=("schema.*", "health.frontend-endpoints-match-instances", "health.frontend.ready"),
)
def frontend_ready(ctx: Context) -> None:
    expected = {
        r.get("instance_id")
        for r in (ctx.discovery.records("Endpoint") if ctx.discovery else [])
        if r.get("endpoint") == "generate"
    }

    def healthy() -> None:
        response = ctx.http.get("/health")
        data = response.json()
        ctx.expect_valid("health.frontend", data, f"GET /health ({response.status})")
        if response.status != 200 or data.get("status") != "healthy":
            raise CheckFailed(f"GET /health -> {response.status} status {data.get('status')!r}")
        listed = {i.get("instance_id") for i in data.get("instances", []) if isinstance(i, dict)}
        missing = expected - listed
        if missing:
            raise CheckFailed(
                f"registered instances missing from /health: {sorted(map(str, missing))}"
            )

    ctx.eventually(healthy, "frontend healthy")


@check(
    "health.frontend.live",
    title="The frontend answers /live",
    description="""The frontend's GET /live MUST answer 200 with a body valid against
    health.frontend-live whose status is `live`.""",
    profiles=("core",),
    contracts=("health.frontend-live",),
    rules=("schema.*", "health.frontend.live"),
)
def frontend_live(ctx: Context) -> None:
    response = ctx.http.get("/live")
    data = response.json()
    ctx.expect_valid("health.frontend-live", data, f"GET /live ({response.status})")
    if response.status != 200 or data.get("status") != "live":
        raise CheckFailed(f"GET /live -> {response.status} status {data.get('status')!r}")


def _worker_endpoints(ctx: Context) -> set[str]:
    """Endpoint names the workers registered (all of them when discovery is observed)."""
    if ctx.discovery is None:
        return {"generate"}
    return {str(r.get("endpoint")) for r in ctx.discovery.records("Endpoint")}


def _worker_health(ctx: Context, client: HttpClient) -> tuple[int, dict[str, Any]]:
    response = client.get("/health")
    data = response.json()
    ctx.expect_valid("health.worker", data, f"worker GET /health ({response.status})")
    if response.status not in (200, 503):
        raise CheckFailed(f"worker GET /health -> {response.status}, expected 200 or 503")
    return response.status, data


@check(
    "health.worker.endpoints-ready",
    title="Worker health reports its endpoints ready",
    description="""A worker's GET /health MUST answer with a body valid against health.worker
    whose `endpoints` name every endpoint the worker registered, each `ready`, within the
    consistency window.""",
    profiles=("core",),
    features=WORKER,
    contracts=("health.worker",),
    rules=("schema.*", "health.worker.endpoints-ready"),
)
def worker_endpoints_ready(ctx: Context) -> None:
    names = _worker_endpoints(ctx)
    for client in ctx.worker_clients():

        def ready(client: HttpClient = client) -> None:
            _, data = _worker_health(ctx, client)
            endpoints = data.get("endpoints") or {}
            not_ready = {n: endpoints.get(n) for n in names if endpoints.get(n) != "ready"}
            if not not_ready and names & set(endpoints):
                return
            if not names & set(endpoints):
                raise CheckFailed(f"{client.base_url}/health lists none of {sorted(names)}")
            raise CheckFailed(f"{client.base_url}/health endpoints not ready: {not_ready}")

        ctx.eventually(ready, "worker endpoints ready")


@check(
    "health.worker.ready",
    title="Worker health is ready once its endpoints are",
    description="""Once every endpoint of a worker reports `ready`, its GET /health MUST
    answer 200 with status `ready` within the consistency window.""",
    profiles=("core",),
    features=WORKER,
    contracts=("health.worker",),
    rules=("schema.*", "health.worker.ready"),
)
def worker_ready(ctx: Context) -> None:
    for client in ctx.worker_clients():

        def ready(client: HttpClient = client) -> None:
            status, data = _worker_health(ctx, client)
            endpoints = data.get("endpoints") or {}
            if status == 200 and data.get("status") == "ready":
                return
            all_ready = bool(endpoints) and all(v == "ready" for v in endpoints.values())
            raise CheckFailed(
                f"{client.base_url}/health -> {status} status {data.get('status')!r} "
                f"while {'every' if all_ready else 'not every'} endpoint is ready: {endpoints}"
            )

        ctx.eventually(ready, "worker health ready")


CHECKS: tuple[Check, ...] = (frontend_ready, frontend_live, worker_endpoints_ready, worker_ready)
