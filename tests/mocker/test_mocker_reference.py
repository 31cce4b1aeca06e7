"""Everything the reference emits (file discovery + ZMQ, in-process) validates against the
contracts, and its HTTP behaviour matches the captured ai-dynamo 1.6.1 frontend."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from reference_helpers import (
    CHAT,
    Reference,
    capturing,
    kv_payloads,
    preprocessed,
    reference,
)

from dynconform.contracts import Validator
from dynconform.contracts.discovery_keys import parse_key
from dynconform.mocker.discovery import read_file_store
from dynconform.mocker.event_plane import EventMessage

HTTP = (
    Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1" / "etcd_nats" / "http_exchanges.json"
)


@dataclass
class Run:
    """What one in-process run of the reference produced."""

    records: list[dict[str, Any]] = field(default_factory=list)
    records_after_stop: list[dict[str, Any]] = field(default_factory=list)
    card: dict[str, Any] = field(default_factory=dict)
    events: list[EventMessage] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)
    http: dict[str, tuple[int, str]] = field(default_factory=dict)
    errors: dict[str, tuple[int, str]] = field(default_factory=dict)
    worker_id: int = 0


def _exchanges() -> list[dict[str, Any]]:
    return json.loads(HTTP.read_text())


async def _errors(ref: Reference) -> dict[str, tuple[int, str]]:
    out = {}
    for exchange in _exchanges():
        name = exchange["name"]
        if not name.startswith("err_") and name != "completion_nvext":
            continue
        if exchange["method"] == "GET":
            out[name] = await ref.get(ref.frontend.url + exchange["url_path"])
        else:
            body = exchange["request"]
            out[name] = await ref.post(exchange["url_path"], body)
    return out


async def _scenario(tmp: Path, model: Path) -> Run:
    run = Run()
    async with reference(tmp, model) as ref:
        run.worker_id = ref.worker.instance_id
        run.records = await ref.records()
        run.card = ref.card()
        async with capturing(ref) as messages:
            await ref.workload()
            usage = CHAT | {"stream": True, "stream_options": {"include_usage": True}}
            run.http["chat_stream_usage"] = await ref.post("/v1/chat/completions", usage)
            run.http["chat"] = await ref.post("/v1/chat/completions", CHAT)
            completion = {"model": "tiny", "prompt": "hello there", "max_tokens": 4}
            run.http["completion"] = await ref.post("/v1/completions", completion)
            run.http["completion_stream"] = await ref.post(
                "/v1/completions", completion | {"stream": True}
            )
            run.http["token_prompt"] = await ref.post(
                "/v1/completions", {"model": "tiny", "prompt": [5, 6, 7, 8, 9], "max_tokens": 2}
            )
        run.events = messages
        run.http["models"] = await ref.get(ref.frontend.url + "/v1/models")
        run.http["health"] = await ref.get(ref.frontend.url + "/health")
        run.http["live"] = await ref.get(ref.frontend.url + "/live")
        run.http["metrics"] = await ref.get(ref.frontend.url + "/metrics")
        run.http["worker_health"] = await ref.get(ref.worker.system.url + "/health")  # type: ignore[union-attr]
        run.http["worker_live"] = await ref.get(ref.worker.system.url + "/live")  # type: ignore[union-attr]
        run.http["worker_metrics"] = await ref.get(ref.worker.system.url + "/metrics")  # type: ignore[union-attr]
        run.errors = await _errors(ref)
        run.frames = ref.frames()
    run.records_after_stop = read_file_store(tmp / "kv")
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Run:
    return asyncio.run(_scenario(tmp_path_factory.mktemp("reference"), tiny_model_path))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _ok(report: Any) -> None:
    assert report.ok, [str(v) for v in report.violations[:5]]


# -- discovery ---------------------------------------------------------------------------------


def test_discovery_records_validate(run: Run, validator: Validator) -> None:
    report = validator.validate_stream("discovery.entry", run.records)
    _ok(report)
    assert report.checked["discovery.mdc"] == 1
    kinds = sorted(parse_key(e["path"], "file").kind for e in run.records)
    assert kinds == ["event_channels"] * 4 + ["event_sources", "instances", "instances", "mdc"]


def test_discovery_records_name_the_worker(run: Run) -> None:
    by_type = {e["value"]["type"]: e["value"] for e in run.records}
    assert by_type["Endpoint"]["instance_id"] == run.worker_id
    assert by_type["Model"]["card_json"]["display_name"] == "tiny"
    assert by_type["EventSource"]["metadata"]["worker"]["worker_id"] == run.worker_id
    channels = [e["value"] for e in run.records if e["value"]["type"] == "EventChannel"]
    assert {c["transport"]["kind"] for c in channels} == {"Zmq"}
    assert len({c["transport"]["config"]["endpoint"] for c in channels}) == 4


def test_card_describes_the_model_dir(run: Run, tiny_model_path: Path) -> None:
    card = run.card
    assert card["kv_cache_block_size"] == 4
    assert card["runtime_config"]["total_kv_blocks"] == 16
    path = Path(card["tokenizer"]["hf_tokenizer_json"]["path"])
    assert path == tiny_model_path / "tokenizer.json"
    assert card["tokenizer"]["hf_tokenizer_json"]["size"] == path.stat().st_size


def test_files_removed_on_clean_shutdown(run: Run) -> None:
    assert run.records
    assert run.records_after_stop == []


# -- events ------------------------------------------------------------------------------------


def test_every_event_validates(run: Run, validator: Validator) -> None:
    report = validator.validate_stream("events.message", [m.view() for m in run.events])
    _ok(report)
    for contract in (
        "events.kv-events",
        "events.forward-pass-metrics",
        "events.kv-metrics",
        "events.active-sequences",
    ):
        assert report.checked[contract] > 0, contract


def test_kv_events_store_and_evict(run: Run) -> None:
    kinds = {
        next(iter(e["event"]["data"])) if isinstance(e["event"]["data"], dict) else "cleared"
        for payload in kv_payloads(run.events)
        for e in payload
    }
    assert {"stored", "removed"} <= kinds


def test_prompt_blocks_appear_in_stored_events(run: Run, validator: Validator) -> None:
    report = validator.validate_many(
        [
            ("discovery.mdc", [run.card]),
            ("request-plane.preprocessed-request", preprocessed(run.frames)),
            ("events.kv-events", kv_payloads(run.events)),
        ]
    )
    _ok(report)


def test_request_frames_validate(run: Run, validator: Validator) -> None:
    report = validator.validate_stream("request-plane.frame", run.frames)
    _ok(report)
    assert report.checked["request-plane.preprocessed-request"] == len(run.frames) >= 8


# -- http --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "contract"),
    [
        ("chat", "http.chat-completion"),
        ("completion", "http.completion"),
        ("token_prompt", "http.completion"),
        ("models", "http.models"),
        ("health", "health.frontend"),
        ("live", "health.frontend-live"),
        ("worker_health", "health.worker"),
        ("worker_live", "health.worker"),
    ],
)
def test_json_bodies_validate(run: Run, validator: Validator, name: str, contract: str) -> None:
    status, text = run.http[name]
    assert status == 200
    _ok(validator.validate(contract, json.loads(text)))


@pytest.mark.parametrize("name", ["chat_stream_usage", "completion_stream"])
def test_streams_validate(run: Run, validator: Validator, name: str) -> None:
    status, text = run.http[name]
    assert status == 200
    _ok(validator.validate("http.sse-stream", text))
    assert text.endswith("data: [DONE]\n\n")


def test_stream_usage_chunk(run: Run) -> None:
    _, text = run.http["chat_stream_usage"]
    chunks = [json.loads(line[6:]) for line in text.splitlines() if line[6:].startswith("{")]
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks[:-1]]
    # the role comes with the first token, whose text is held back (a split character)
    assert deltas[0] == {"role": "assistant"}
    assert all("role" not in delta for delta in deltas[1:])
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["completion_tokens"] == 6
    assert usage["total_tokens"] == usage["prompt_tokens"] + 6


def test_usage_counts_tokens(run: Run) -> None:
    body = json.loads(run.http["token_prompt"][1])
    assert body["usage"]["prompt_tokens"] == 5
    assert body["usage"]["completion_tokens"] == 2
    assert body["choices"][0]["finish_reason"] == "length"


def test_health_lists_the_instances(run: Run) -> None:
    body = json.loads(run.http["health"][1])
    assert [i["instance_id"] for i in body["instances"]] == [run.worker_id] * 2
    assert "dyn://dynamo.backend.generate" in body["endpoints"]


@pytest.mark.parametrize(
    ("name", "contract"),
    [("metrics", "metrics.frontend-exposition"), ("worker_metrics", "metrics.worker-exposition")],
)
def test_metrics_validate(run: Run, validator: Validator, name: str, contract: str) -> None:
    status, text = run.http[name]
    assert status == 200
    _ok(validator.validate(contract, text))


def test_worker_metrics_count_requests(run: Run) -> None:
    text = run.http["worker_metrics"][1]
    line = next(x for x in text.splitlines() if x.startswith("dynamo_component_requests_total{"))
    assert f'worker_id="{run.worker_id:x}"' in line
    assert float(line.rsplit(" ", 1)[1]) == len(run.frames)


def _exchange(name: str) -> dict[str, Any]:
    return next(e for e in _exchanges() if e["name"] == name)


@pytest.mark.parametrize(
    "name",
    [
        "err_unknown_model",
        "err_missing_messages",
        "err_bad_json",
        "err_negative_max_tokens",
        "err_wrong_type",
        "err_temperature_range",
        "err_unknown_route",
        "err_method",
    ],
)
def test_errors_match_the_real_frontend(run: Run, validator: Validator, name: str) -> None:
    expected = _exchange(name)
    status, text = run.errors[name]
    assert status == expected["status"]
    if expected["body_json"] is None:
        assert text == ""
        return
    body = json.loads(text)
    _ok(validator.validate("http.error", body))
    real = expected["body_json"]
    assert (body["type"], body["code"]) == (real["type"], real["code"])
    if real["message"].startswith(("Validation:", "Model", "Route")):
        assert body["message"] == real["message"]
    else:
        prefix = "Failed to deserialize the JSON body into the target type: "
        assert body["message"].startswith(prefix)


def test_unknown_nvext_field_is_rejected(run: Run) -> None:
    real = _exchange("completion_nvext")["body_json"]["message"]
    status, text = run.errors["completion_nvext"]
    assert status == 400
    assert real.startswith(json.loads(text)["message"] + " at line 1")
