"""Health contracts: the frontend's /health and /live, the worker system server's /health."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import CAPTURES
from dynconform.contracts import Validator
from dynconform.contracts.rules.health import endpoint_url

VALIDATOR = Validator()
EXCHANGES: dict[str, dict[str, Any]] = {
    e["name"]: e
    for e in json.loads((CAPTURES / "etcd_nats" / "http_exchanges.json").read_text("utf-8"))
}
FRONTEND = EXCHANGES["health"]["body_json"]
WORKER = EXCHANGES["worker_health"]["body_json"]
U64_MAX = 2**64 - 1


def _rules(contract: str, instance: Any) -> set[str]:
    return VALIDATOR.validate(contract, instance).rules()


@pytest.mark.parametrize(
    ("name", "contract", "status"),
    [
        ("health", "health.frontend", 200),
        ("live", "health.frontend-live", 200),
        ("worker_health", "health.worker", 503),
        ("worker_live", "health.worker", 503),
    ],
)
def test_captured_health_bodies_validate(name: str, contract: str, status: int) -> None:
    exchange = EXCHANGES[name]
    assert exchange["status"] == status
    report = VALIDATOR.validate(contract, exchange["body_json"])
    assert report.ok, [str(v) for v in report.violations]


def test_worker_notready_while_every_endpoint_is_ready_is_valid() -> None:
    assert WORKER["status"] == "notready"
    assert set(WORKER["endpoints"].values()) == {"ready"}
    assert VALIDATOR.validate("health.worker", WORKER).ok
    assert VALIDATOR.validate("health.worker", WORKER | {"status": "ready"}).ok


def test_endpoint_url_of_an_instance() -> None:
    assert endpoint_url(FRONTEND["instances"][0]) == "dyn://dynamo.backend.generate"


@pytest.mark.parametrize(
    ("contract", "body", "field"),
    [
        ("health.frontend", FRONTEND, "status"),
        ("health.frontend", FRONTEND, "instances"),
        ("health.frontend-live", EXCHANGES["live"]["body_json"], "status"),
        ("health.worker", WORKER, "status"),
        ("health.worker", WORKER, "uptime"),
    ],
)
def test_body_without_required_field_is_rejected(
    contract: str, body: dict[str, Any], field: str
) -> None:
    mutant = {k: v for k, v in body.items() if k != field}
    report = VALIDATOR.validate(contract, mutant)
    assert report.rules() == {"schema.required"}
    assert field in report.violations[0].message


@pytest.mark.parametrize(
    ("contract", "mutate", "rule", "pointer"),
    [
        ("health.worker", lambda b: b.update(status="ok"), "schema.enum", "/status"),
        (
            "health.worker",
            lambda b: b["uptime"].update(nanos=10**9),
            "schema.maximum",
            "/uptime/nanos",
        ),
        (
            "health.worker",
            lambda b: b["uptime"].update(secs=U64_MAX + 1),
            "schema.maximum",
            "/uptime/secs",
        ),
        ("health.worker", lambda b: b["uptime"].update(secs="9"), "schema.type", "/uptime/secs"),
        (
            "health.worker",
            lambda b: b["endpoints"].update(generate="up"),
            "schema.enum",
            "/endpoints/generate",
        ),
        ("health.frontend", lambda b: b.update(status="ready"), "schema.enum", "/status"),
        (
            "health.frontend",
            lambda b: b["instances"][0].update(instance_id=U64_MAX + 1),
            "schema.maximum",
            "/instances/0/instance_id",
        ),
        (
            "health.frontend",
            lambda b: b["instances"][0]["transport"].update(tcp="127.0.0.1:1"),
            "schema.maxProperties",
            "/instances/0/transport",
        ),
        (
            "health.frontend",
            lambda b: b["instances"][0].update(request_plane_codec="cbor"),
            "schema.enum",
            "/instances/0/request_plane_codec",
        ),
    ],
)
def test_schema_mutants_are_rejected(contract: str, mutate: Any, rule: str, pointer: str) -> None:
    body = copy.deepcopy(FRONTEND if contract == "health.frontend" else WORKER)
    mutate(body)
    report = VALIDATOR.validate(contract, body)
    assert [(v.rule, v.pointer) for v in report.violations] == [(rule, pointer)]


@pytest.mark.parametrize(
    ("endpoints", "words"),
    [
        (FRONTEND["endpoints"][:1], "missing"),
        ([*FRONTEND["endpoints"], "dyn://dynamo.backend.other"], "no instance"),
        (FRONTEND["endpoints"][::-1], "not sorted"),
        ([*FRONTEND["endpoints"], FRONTEND["endpoints"][0]], "de-duplicated"),
    ],
)
def test_endpoints_must_match_instances(endpoints: list[str], words: str) -> None:
    report = VALIDATOR.validate("health.frontend", FRONTEND | {"endpoints": endpoints})
    [violation] = report.violations
    assert violation.rule == "health.frontend-endpoints-match-instances"
    assert violation.pointer == "/endpoints"
    assert words in violation.message


names = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)


@st.composite
def instances(draw: st.DrawFn) -> dict[str, Any]:
    transport = draw(st.sampled_from(["nats_tcp", "tcp", "http"]))
    instance = {
        "component": draw(names),
        "endpoint": draw(names),
        "namespace": draw(names),
        "instance_id": draw(st.integers(0, U64_MAX)),
        "transport": {transport: draw(st.text(min_size=1, max_size=20))},
    }
    if draw(st.booleans()):
        instance["device_type"] = draw(st.sampled_from(["cuda", "cpu"]))
        instance["request_plane_codec"] = draw(st.sampled_from(["json", "msgpack"]))
    return instance


@st.composite
def frontend_bodies(draw: st.DrawFn) -> dict[str, Any]:
    found = draw(st.lists(instances(), max_size=5))
    return {
        "status": draw(st.sampled_from(["healthy", "not_ready", "shutting_down"])),
        "endpoints": sorted({endpoint_url(i) for i in found}),
        "instances": found,
    }


@st.composite
def worker_bodies(draw: st.DrawFn) -> dict[str, Any]:
    status = st.sampled_from(["ready", "notready"])
    return {
        "status": draw(status),
        "uptime": {
            "secs": draw(st.integers(0, U64_MAX)),
            "nanos": draw(st.integers(0, 999_999_999)),
        },
        "endpoints": draw(st.dictionaries(names, status, max_size=4)),
    }


@given(frontend_bodies())
def test_generated_frontend_bodies_validate(body: dict[str, Any]) -> None:
    report = VALIDATOR.validate("health.frontend", body)
    assert report.ok, [str(v) for v in report.violations]


@given(worker_bodies())
def test_generated_worker_bodies_validate(body: dict[str, Any]) -> None:
    assert VALIDATOR.validate("health.worker", body).ok


@given(st.sampled_from(["live", "shutting_down"]), st.text(max_size=30))
def test_generated_live_bodies_validate(status: str, message: str) -> None:
    body = {"status": status, "message": message}
    assert VALIDATOR.validate("health.frontend-live", body).ok
