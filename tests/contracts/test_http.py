"""HTTP contracts: request and response bodies, SSE streams, error envelopes and the OpenAPI doc."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_openapi

from conftest import CAPTURES
from dynconform.contracts import Validator
from dynconform.contracts.openapi import openapi_document
from dynconform.contracts.rules.http import sse_events

VALIDATOR = Validator()
EXCHANGES: dict[str, dict[str, Any]] = {
    e["name"]: e
    for e in json.loads((CAPTURES / "etcd_nats" / "http_exchanges.json").read_text("utf-8"))
}
U32_MAX = 2**32 - 1

#: exchange name -> contract of its response body (None: the exchange has no body)
BODY_CONTRACTS: dict[str, str | None] = {
    "models": "http.models",
    "health": "health.frontend",
    "live": "health.frontend-live",
    "chat_nonstream": "http.chat-completion",
    "chat_stream": "http.sse-stream",
    "chat_stream_usage": "http.sse-stream",
    "completion_nonstream": "http.completion",
    "completion_stream": "http.sse-stream",
    "completion_nvext": "http.error",
    "err_unknown_model": "http.error",
    "err_missing_messages": "http.error",
    "err_bad_json": "http.error",
    "err_negative_max_tokens": "http.error",
    "err_wrong_type": "http.error",
    "err_temperature_range": "http.error",
    "err_unknown_route": "http.error",
    "err_method": None,
    "metrics_frontend": "metrics.frontend-exposition",
    "worker_health": "health.worker",
    "worker_live": "health.worker",
    "worker_metrics": "metrics.worker-exposition",
}
#: requests the frontend answered with 400, and the schema keyword that rejects each
REJECTED_REQUESTS = {
    "completion_nvext": ("schema.additionalProperties", "/nvext"),
    "err_missing_messages": ("schema.required", ""),
    "err_bad_json": ("schema.type", ""),
    "err_negative_max_tokens": ("schema.minimum", "/max_tokens"),
    "err_wrong_type": ("schema.type", "/prompt"),
    "err_temperature_range": ("schema.maximum", "/temperature"),
}


def _body(name: str) -> Any:
    exchange = EXCHANGES[name]
    if exchange.get("body_json") is not None:
        return exchange["body_json"]
    return exchange["body_text"]


def _request_contract(name: str) -> str:
    path = EXCHANGES[name]["url_path"]
    return (
        "http.chat-completion-request"
        if path.endswith("chat/completions")
        else ("http.completion-request")
    )


def _rules(contract: str, instance: Any) -> set[str]:
    return VALIDATOR.validate(contract, instance).rules()


# ---------------------------------------------------------------- real captures


def test_every_exchange_is_mapped() -> None:
    assert set(BODY_CONTRACTS) == set(EXCHANGES)


@pytest.mark.parametrize("name", sorted(n for n, c in BODY_CONTRACTS.items() if c))
def test_captured_body_validates(name: str) -> None:
    contract = BODY_CONTRACTS[name]
    assert contract is not None
    report = VALIDATOR.validate(contract, _body(name))
    assert report.ok, [str(v) for v in report.violations]


def test_method_not_allowed_has_no_body() -> None:
    exchange = EXCHANGES["err_method"]
    assert (exchange["status"], exchange["body_text"], exchange.get("body_json")) == (405, "", None)


@pytest.mark.parametrize(
    "name", sorted(n for n, e in EXCHANGES.items() if e["request"] is not None)
)
def test_captured_request_matches_the_frontends_verdict(name: str) -> None:
    report = VALIDATOR.validate(_request_contract(name), EXCHANGES[name]["request"])
    if name in REJECTED_REQUESTS:
        rule, pointer = REJECTED_REQUESTS[name]
        assert EXCHANGES[name]["status"] == 400
        assert (rule, pointer) in {(v.rule, v.pointer) for v in report.violations}
    else:
        assert report.ok, [str(v) for v in report.violations]


def test_error_bodies_are_not_openai_envelopes() -> None:
    dynamo = _body("err_unknown_model")
    assert "schema.required" in _rules("http.openai-error", dynamo)
    openai = {"error": {"message": "x", "type": "invalid_request_error", "param": None}}
    assert _rules("http.openai-error", openai) == set()
    assert "schema.required" in _rules("http.error", openai)


def test_sse_events_split_the_captured_stream() -> None:
    events = sse_events(_body("chat_stream_usage"))
    assert [e.line for e in events] == [1, 3, 5, 7]
    assert events[-1].data == "[DONE]"
    assert json.loads(events[2].data)["usage"]["total_tokens"] == 9


# ---------------------------------------------------------------- schema mutants


def _chat() -> dict[str, Any]:
    return copy.deepcopy(EXCHANGES["chat_nonstream"]["body_json"])


def _chat_request() -> dict[str, Any]:
    return copy.deepcopy(EXCHANGES["chat_nonstream"]["request"])


def test_response_missing_required_field_is_rejected() -> None:
    chat = _chat()
    del chat["id"]
    assert _rules("http.chat-completion", chat) == {"schema.required"}


def test_response_wrong_type_and_const_are_rejected() -> None:
    chat = _chat()
    chat["created"] = "yesterday"
    assert _rules("http.chat-completion", chat) == {"schema.type"}
    chat = _chat()
    chat["object"] = "chat.completion.chunk"
    assert _rules("http.chat-completion", chat) == {"schema.const"}


def test_usage_overflowing_u32_is_rejected() -> None:
    chat = _chat()
    chat["usage"]["prompt_tokens"] = U32_MAX + 1
    report = VALIDATOR.validate("http.chat-completion", chat)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("schema.maximum", "/usage/prompt_tokens")
    ]


def test_unknown_finish_reason_is_rejected() -> None:
    chat = _chat()
    chat["choices"][0]["finish_reason"] = "eos"
    assert _rules("http.chat-completion", chat) == {"schema.enum"}


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({"nvext": {"ignore_eos": True}}, "schema.additionalProperties"),
        ({"nvext": {"agent_hints": {"urgency": 1}}}, "schema.additionalProperties"),
        ({"nvext": {"backend_instance_id": 2**64}}, "schema.maximum"),
        ({"nvext": {"metadata_upload": {"url": "  "}}}, "schema.pattern"),
        ({"top_p": 1.5}, "schema.maximum"),
        ({"n": 0}, "schema.minimum"),
        ({"n": 2, "temperature": 0}, "schema.not"),
        ({"top_logprobs": 21}, "schema.maximum"),
        ({"stop": []}, "schema.minItems"),
        ({"stop": ""}, "schema.minLength"),
        ({"model": "   "}, "schema.pattern"),
        ({"repetition_penalty": 0}, "schema.exclusiveMinimum"),
        ({"top_k": -2}, "schema.minimum"),
        ({"messages": []}, "schema.minItems"),
        ({"messages": [{"role": "user"}]}, "schema.required"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "schema.enum"),
    ],
)
def test_chat_request_outside_dynamos_validation_is_rejected(
    change: dict[str, Any], rule: str
) -> None:
    request = _chat_request() | change
    assert rule in _rules("http.chat-completion-request", request)


def test_chat_request_accepts_dynamo_extensions() -> None:
    request = _chat_request() | {
        "top_k": -1,
        "min_p": 0.1,
        "repetition_penalty": 1.1,
        "ignore_eos": True,
        "temperature": None,
        "nvext": {
            "greed_sampling": True,
            "agent_hints": {"priority": -3, "osl": 128},
            "routing_constraints": {"required_taints": ["gpu"], "preferred_taints": {"a": 0.5}},
            "router": {"ttft_target": 200.0},
            "metadata_upload": {"url": "s3://bucket/key"},
        },
    }
    assert VALIDATOR.validate("http.chat-completion-request", request).ok


@pytest.mark.parametrize(
    "prompt", ["x", ["a", "b"], [1, 2, 3], [[1, 2], [3]]], ids=["str", "strs", "ids", "id-arrays"]
)
def test_completion_request_prompt_forms(prompt: Any) -> None:
    request = {"model": "tiny", "prompt": prompt}
    assert VALIDATOR.validate("http.completion-request", request).ok
    assert "schema.maximum" in _rules(
        "http.completion-request", request | {"max_tokens": U32_MAX + 1}
    )


# ---------------------------------------------------------------- rule mutants


def test_usage_totals_rule_on_responses_and_chunks() -> None:
    chat = _chat()
    chat["usage"]["total_tokens"] += 1
    report = VALIDATOR.validate("http.chat-completion", chat)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("http.usage-totals", "/usage/total_tokens")
    ]
    completion = copy.deepcopy(EXCHANGES["completion_nonstream"]["body_json"])
    completion["usage"]["completion_tokens"] = 0
    assert _rules("http.completion", completion) == {"http.usage-totals"}
    chunk = json.loads(sse_events(_body("chat_stream_usage"))[2].data)
    chunk["usage"]["prompt_tokens"] = 1
    assert _rules("http.chat-completion-chunk", chunk) == {"http.usage-totals"}


def test_error_type_must_match_code() -> None:
    error = copy.deepcopy(EXCHANGES["err_unknown_model"]["body_json"])
    error["type"] = "Bad Request"
    report = VALIDATOR.validate("http.error", error)
    assert [(v.rule, v.pointer) for v in report.violations] == [
        ("http.error-type-matches-code", "/type")
    ]
    assert VALIDATOR.validate("http.error", error | {"code": 400}).ok
    assert VALIDATOR.validate("http.error", error | {"code": 529, "type": "Overloaded"}).ok


CHAT_STREAM = EXCHANGES["chat_stream_usage"]["body_text"]
COMPLETION_STREAM = EXCHANGES["completion_stream"]["body_text"]


def _lines(text: str) -> list[str]:
    return text.split("\n")


def _edit_chunk(text: str, number: int, edit: Any) -> str:
    """Apply ``edit`` to the JSON chunk of event ``number``."""
    event = sse_events(text)[number]
    lines = _lines(text)
    chunk = json.loads(event.data)
    edit(chunk)
    lines[event.line - 1] = "data: " + json.dumps(chunk)
    return "\n".join(lines)


def _set(path: list[Any], value: Any) -> Any:
    def edit(chunk: Any) -> None:
        target = chunk
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


STREAM_MUTANTS = {
    "missing-done": (CHAT_STREAM.replace("data: [DONE]\n\n", ""), "http.sse.done-terminator"),
    "two-dones": (CHAT_STREAM + "data: [DONE]\n\n", "http.sse.done-terminator"),
    "event-after-done": (
        CHAT_STREAM + _lines(CHAT_STREAM)[2] + "\n\n",
        "http.sse.done-terminator",
    ),
    "done-not-dispatched": (CHAT_STREAM.rstrip("\n"), "http.sse.done-terminator"),
    "event-line": ("event: delta\n" + CHAT_STREAM, "http.sse.data-lines-only"),
    "comment-line": (": keep-alive\n\n" + CHAT_STREAM, "http.sse.data-lines-only"),
    "two-finish-reasons": (
        _edit_chunk(CHAT_STREAM, 0, _set(["choices", 0, "finish_reason"], "stop")),
        "http.sse.one-finish-reason",
    ),
    "no-finish-reason": (
        _edit_chunk(CHAT_STREAM, 1, _set(["choices", 0, "finish_reason"], None)),
        "http.sse.one-finish-reason",
    ),
    "first-delta-without-role": (
        _edit_chunk(CHAT_STREAM, 0, _set(["choices", 0, "delta"], {"content": "hi"})),
        "http.sse.first-delta-role",
    ),
    "invalid-chunk": (
        _edit_chunk(CHAT_STREAM, 1, _set(["choices", 0, "index"], -1)),
        "http.sse.chunks-valid",
    ),
    "wrong-usage-total": (
        _edit_chunk(CHAT_STREAM, 2, _set(["usage", "total_tokens"], 10)),
        "http.sse.chunks-valid",
    ),
    "unknown-object": (
        _edit_chunk(COMPLETION_STREAM, 0, _set(["object"], "completion")),
        "http.sse.chunks-valid",
    ),
    "not-json": (CHAT_STREAM.replace('data: {"id"', "data: {id", 1), "http.sse.chunks-valid"),
    "other-stream-id": (
        _edit_chunk(CHAT_STREAM, 1, _set(["id"], "chatcmpl-other")),
        "http.sse.consistent-chunks",
    ),
}


@pytest.mark.parametrize("name", sorted(STREAM_MUTANTS))
def test_stream_mutant_is_rejected_by_its_rule(name: str) -> None:
    text, rule = STREAM_MUTANTS[name]
    report = VALIDATOR.validate("http.sse-stream", text)
    assert rule in report.rules(), [str(v) for v in report.violations]


def test_stream_violation_names_event_and_nested_rule() -> None:
    text, _ = STREAM_MUTANTS["wrong-usage-total"]
    [violation] = VALIDATOR.validate("http.sse-stream", text).violations
    assert violation.pointer == ""
    assert "event 2 (line 5)" in violation.message
    assert "[http.usage-totals] /usage/total_tokens" in violation.message


def test_completion_stream_needs_no_role() -> None:
    text = _edit_chunk(COMPLETION_STREAM, 0, _set(["choices", 0, "text"], "hi"))
    assert VALIDATOR.validate("http.sse-stream", text).ok


# ---------------------------------------------------------------- generated instances

ids = st.text("0123456789abcdef", min_size=8, max_size=12)
small = st.integers(min_value=0, max_value=4096)
finish = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])


@st.composite
def usages(draw: st.DrawFn) -> dict[str, Any]:
    prompt, completion = draw(small), draw(small)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    usage["total_tokens"] = prompt + completion
    if draw(st.booleans()):
        usage["prompt_tokens_details"] = {"cached_tokens": draw(st.integers(0, prompt))}
    return usage


@st.composite
def chat_streams(draw: st.DrawFn) -> str:
    """A chat stream: a role chunk, content chunks and a finish chunk per choice, then [DONE]."""
    base = {
        "id": "chatcmpl-" + draw(ids),
        "created": draw(st.integers(0, U32_MAX)),
        "model": draw(st.sampled_from(["tiny", "Qwen/Qwen3-0.6B"])),
        "object": "chat.completion.chunk",
    }
    chunks = []
    for index in range(draw(st.integers(1, 3))):
        choice = {"index": index, "finish_reason": None, "logprobs": None}
        chunks.append([choice | {"delta": {"role": "assistant", "content": ""}}])
        for piece in draw(st.lists(st.text(max_size=8), max_size=4)):
            chunks.append([choice | {"delta": {"content": piece}}])
        chunks.append([choice | {"delta": {}, "finish_reason": draw(finish)}])
    events = [base | {"choices": choices} for choices in chunks]
    if draw(st.booleans()):
        events.append(base | {"choices": [], "usage": draw(usages())})
    lines = [f"data: {json.dumps(event)}\n\n" for event in events]
    return "".join(lines) + "data: [DONE]\n\n"


@st.composite
def chat_completions(draw: st.DrawFn) -> dict[str, Any]:
    choices = [
        {
            "index": i,
            "message": {"role": "assistant", "content": draw(st.none() | st.text(max_size=20))},
            "finish_reason": draw(finish),
            "logprobs": None,
        }
        for i in range(draw(st.integers(0, 3)))
    ]
    return {
        "id": "chatcmpl-" + draw(ids),
        "object": "chat.completion",
        "created": draw(st.integers(0, U32_MAX)),
        "model": "tiny",
        "choices": choices,
        "usage": draw(usages()),
    }


@st.composite
def errors(draw: st.DrawFn) -> dict[str, Any]:
    code, reason = draw(
        st.sampled_from([(400, "Bad Request"), (404, "Not Found"), (503, "Service Unavailable")])
    )
    return {"message": draw(st.text(max_size=40)), "type": reason, "code": code}


@given(chat_streams())
def test_generated_chat_streams_validate(text: str) -> None:
    report = VALIDATOR.validate("http.sse-stream", text)
    assert report.ok, [str(v) for v in report.violations]


@given(chat_completions())
def test_generated_chat_completions_validate(body: dict[str, Any]) -> None:
    assert VALIDATOR.validate("http.chat-completion", body).ok


@given(errors())
def test_generated_errors_validate(body: dict[str, Any]) -> None:
    assert VALIDATOR.validate("http.error", body).ok


# ---------------------------------------------------------------- OpenAPI

DOC = openapi_document()


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            elif key not in ("examples", "enum", "const"):
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_openapi_document_is_valid_openapi_3_1() -> None:
    assert DOC["openapi"] == "3.1.0"
    validate_openapi(DOC)


def test_openapi_document_is_self_contained() -> None:
    schemas = DOC["components"]["schemas"]
    refs = set(_refs(DOC))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas
    assert "dynconform.dev" not in json.dumps(DOC)


def test_schemathesis_loads_every_operation() -> None:
    schema = schemathesis.openapi.from_dict(DOC)
    operations = {(op.ok().method.upper(), op.ok().path) for op in schema.get_all_operations()}
    assert operations == {
        ("GET", "/v1/models"),
        ("POST", "/v1/chat/completions"),
        ("POST", "/v1/completions"),
        ("GET", "/health"),
        ("GET", "/live"),
        ("GET", "/metrics"),
    }


def _component_validator(name: str) -> Draft202012Validator:
    return Draft202012Validator(
        {**DOC["components"]["schemas"][name], "components": DOC["components"]}
    )


def test_openapi_components_accept_the_captured_bodies() -> None:
    for name, contract in BODY_CONTRACTS.items():
        if contract and contract in DOC["components"]["schemas"]:
            errors_ = list(_component_validator(contract).iter_errors(_body(name)))
            assert errors_ == [], (name, errors_[0].message)
    bad = copy.deepcopy(EXCHANGES["err_temperature_range"]["request"])
    assert not _component_validator("http.chat-completion-request").is_valid(bad)


@pytest.mark.parametrize(
    ("path", "contract"),
    [
        ("/v1/chat/completions", "http.chat-completion-request"),
        ("/v1/completions", "http.completion-request"),
    ],
)
def test_schemathesis_request_bodies_satisfy_the_request_contract(path: str, contract: str) -> None:
    schema = schemathesis.openapi.from_dict(DOC)
    [operation] = [op.ok() for op in schema.get_all_operations() if op.ok().path == path]

    @settings(max_examples=25, suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def check(case: Any) -> None:
        report = VALIDATOR.validate(contract, case.body)
        assert report.ok, [str(v) for v in report.violations]

    check()


def test_streamed_completion_choice_may_omit_finish_reason_until_it_finishes() -> None:
    # A live 1.6.1 frontend leaves `finish_reason` out of a streamed completion choice until
    # the chunk that finishes it; where the key appears it keeps its values.
    chunk = {
        "id": "cmpl-1",
        "choices": [{"text": "the", "index": 0}],
        "created": 1795354720,
        "model": "tiny",
        "system_fingerprint": None,
        "object": "text_completion",
        "usage": None,
    }
    assert Validator().validate("http.completion-chunk", chunk).ok
    chunk["choices"][0]["finish_reason"] = 7  # type: ignore[index]
    assert Validator().validate("http.completion-chunk", chunk).rules() == {"schema.enum"}
    del chunk["choices"][0]["index"]  # type: ignore[attr-defined]
    chunk["choices"][0]["finish_reason"] = None  # type: ignore[index]
    assert "schema.required" in Validator().validate("http.completion-chunk", chunk).rules()
