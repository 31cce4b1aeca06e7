"""The OpenAI-compatible HTTP API: models, chat and text completions, usage."""

from __future__ import annotations

from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance.checks._common import (
    CHAT,
    COMPLETIONS,
    chat_body,
    completion_body,
    ok_json,
)


@check(
    "http.models.lists-registered",
    title="/v1/models lists every registered model",
    description="""GET /v1/models MUST answer 200 with a body valid against http.models that
    lists every model registered in discovery (the served model when discovery is not
    observed), within the consistency window.""",
    profiles=("core",),
    contracts=("http.models",),
    rules=("schema.*", "http.models.lists-registered"),
)
def models_listed(ctx: Context) -> None:
    wanted = {str(c.get("display_name")) for c in ctx.cards()} or {ctx.model()}

    def listed() -> None:
        data = ok_json(ctx.http.get("/v1/models"))
        ctx.expect_valid("http.models", data, "GET /v1/models")
        ids = {m.get("id") for m in data.get("data", []) if isinstance(m, dict)}
        missing = sorted(wanted - ids)
        if missing:
            raise CheckFailed(f"registered models missing from /v1/models: {missing}")

    ctx.eventually(listed, "every registered model listed")


def _judge_response(ctx: Context, contract: str, body: dict[str, Any], data: Any) -> None:
    ctx.expect_valid(contract, data, f"POST {contract} response")
    if data.get("model") != body["model"]:
        raise CheckFailed(f"response model is {data.get('model')!r}, requested {body['model']!r}")
    if not data.get("choices"):
        raise CheckFailed("response has no choices")


@check(
    "http.chat.valid",
    title="Chat completions answer with a valid body",
    description="""POST /v1/chat/completions for the served model MUST answer 200 with an
    application/json body valid against http.chat-completion naming the requested model, with
    at least one choice whose message role is `assistant`.""",
    profiles=("core",),
    contracts=("http.chat-completion",),
    rules=("schema.*", "http.chat.valid"),
)
def chat_valid(ctx: Context) -> None:
    body = chat_body(ctx)
    data = ok_json(ctx.http.post_json(CHAT, body))
    _judge_response(ctx, "http.chat-completion", body, data)
    role = data["choices"][0].get("message", {}).get("role")
    if role != "assistant":
        raise CheckFailed(f"choice 0 message role is {role!r}, expected 'assistant'")


@check(
    "http.completion.valid",
    title="Text completions answer with a valid body",
    description="""POST /v1/completions for the served model MUST answer 200 with an
    application/json body valid against http.completion naming the requested model.""",
    profiles=("core",),
    contracts=("http.completion",),
    rules=("schema.*", "http.completion.valid"),
)
def completion_valid(ctx: Context) -> None:
    body = completion_body(ctx)
    data = ok_json(ctx.http.post_json(COMPLETIONS, body))
    _judge_response(ctx, "http.completion", body, data)


@check(
    "http.usage.totals",
    title="Usage adds up and respects max_tokens",
    description="""A non-streamed chat or text completion MUST report usage whose
    total_tokens equals prompt_tokens + completion_tokens, and completion_tokens MUST NOT
    exceed the request's max_tokens.""",
    profiles=("core",),
    contracts=("http.chat-completion", "http.completion"),
    rules=("http.usage-totals", "http.usage.max-tokens"),
)
def usage_totals(ctx: Context) -> None:
    for path, contract, body in (
        (CHAT, "http.chat-completion", chat_body(ctx, max_tokens=5)),
        (COMPLETIONS, "http.completion", completion_body(ctx, max_tokens=5)),
    ):
        data = ok_json(ctx.http.post_json(path, body))
        ctx.expect_valid(contract, data, f"POST {path}")
        usage = data.get("usage")
        if not isinstance(usage, dict):
            raise CheckFailed(f"POST {path}: no usage in the response")
        if usage.get("completion_tokens", 0) > body["max_tokens"]:
            raise CheckFailed(
                f"POST {path}: completion_tokens {usage['completion_tokens']} exceeds "
                f"max_tokens {body['max_tokens']}"
            )


@check(
    "http.finish-reason-length",
    title="max_tokens with ignore_eos ends with finish_reason length",
    description="""A request with ignore_eos and max_tokens N MUST generate exactly N tokens
    (usage.completion_tokens == N) and MUST end with finish_reason `length`.""",
    profiles=("core",),
    features=("ignore-eos",),
    rules=("http.finish-reason-length",),
)
def finish_reason_length(ctx: Context) -> None:
    wanted = ctx.rng.randint(3, 9)
    for path, body in (
        (CHAT, chat_body(ctx, max_tokens=wanted, ignore_eos=True)),
        (COMPLETIONS, completion_body(ctx, max_tokens=wanted, ignore_eos=True)),
    ):
        data = ok_json(ctx.http.post_json(path, body))
        usage = data.get("usage") or {}
        if usage.get("completion_tokens") != wanted:
            raise CheckFailed(
                f"POST {path} max_tokens={wanted} ignore_eos: completion_tokens is "
                f"{usage.get('completion_tokens')!r}"
            )
        reason = (data.get("choices") or [{}])[0].get("finish_reason")
        if reason != "length":
            raise CheckFailed(f"POST {path}: finish_reason is {reason!r}, expected 'length'")


CHECKS: tuple[Check, ...] = (
    models_listed,
    chat_valid,
    completion_valid,
    usage_totals,
    finish_reason_length,
)
