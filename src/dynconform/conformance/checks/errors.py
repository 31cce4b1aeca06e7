"""Client errors: the right 4xx status, never a 5xx, and Dynamo's error envelope."""

from __future__ import annotations

import json
from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance._http import Response
from dynconform.conformance.checks._common import CHAT, COMPLETIONS, chat_body, completion_body

ENVELOPE_RULES = ("schema.*", "http.error-type-matches-code")


def _expect_error(ctx: Context, response: Response, status: int, what: str) -> dict[str, Any]:
    """The response is ``status`` with a body valid against http.error whose code agrees."""
    if response.status != status:
        raise CheckFailed(
            f"{what}: {response.describe()}, expected {status}: {response.text[:300]!r}"
        )
    data = response.json()
    ctx.expect_valid("http.error", data, f"{what} ({response.status})")
    if isinstance(data, dict) and data.get("code") != status:
        raise CheckFailed(f"{what}: envelope code {data.get('code')!r} but HTTP status {status}")
    return dict(data)


@check(
    "http.errors.unknown-model",
    title="An unknown model gives 404 with the error envelope",
    description="""A completion request naming a model that is not served MUST be answered
    404 with a body valid against http.error whose `type` is the reason phrase of its code.""",
    profiles=("core",),
    contracts=("http.error",),
    rules=(*ENVELOPE_RULES, "http.errors.unknown-model"),
)
def unknown_model(ctx: Context) -> None:
    name = f"no-such-model-{ctx.rng.randrange(10**6)}"
    for path, body in (
        (CHAT, chat_body(ctx, model=name)),
        (COMPLETIONS, completion_body(ctx, model=name)),
    ):
        _expect_error(ctx, ctx.http.post_json(path, body), 404, f"POST {path} model={name!r}")


@check(
    "http.errors.malformed-json",
    title="Malformed JSON gives 400 with the error envelope",
    description="""A request body that is not JSON MUST be answered 400 with a body valid
    against http.error.""",
    profiles=("core",),
    contracts=("http.error",),
    rules=(*ENVELOPE_RULES, "http.errors.malformed-json"),
)
def malformed_json(ctx: Context) -> None:
    for path in (CHAT, COMPLETIONS):
        for raw in (b"{not json", b'{"model": "x", "messages": [', b"\xff\xfe"):
            _expect_error(ctx, ctx.http.post_raw(path, raw), 400, f"POST {path} body {raw!r}")


def _invalid_requests(ctx: Context) -> list[tuple[str, dict[str, Any], str]]:
    return [
        (CHAT, chat_body(ctx, temperature=9), "temperature 9 (range 0..2)"),
        (COMPLETIONS, completion_body(ctx, max_tokens=-1), "negative max_tokens"),
        (CHAT, chat_body(ctx, max_tokens=0), "max_tokens 0"),
        (COMPLETIONS, completion_body(ctx, prompt=42, max_tokens="many"), "wrong types"),
        (CHAT, {"model": ctx.model()}, "missing messages"),
        (CHAT, chat_body(ctx, nvext={"no_such_field": True}), "unknown nvext field"),
    ]


@check(
    "http.errors.invalid-parameter",
    title="Invalid parameters give 400 with the error envelope",
    description="""A request with a missing required field, a value of the wrong type, a value
    out of range or an unknown `nvext` field MUST be answered 400 with a body valid against
    http.error.""",
    profiles=("core",),
    contracts=("http.error",),
    rules=(*ENVELOPE_RULES, "http.errors.invalid-parameter"),
)
def invalid_parameter(ctx: Context) -> None:
    for path, body, what in _invalid_requests(ctx):
        _expect_error(ctx, ctx.http.post_json(path, body), 400, f"POST {path} with {what}")


def _mutations(ctx: Context, count: int) -> list[tuple[str, bytes]]:
    """Seeded broken requests: fields dropped, retyped or replaced by odd JSON values."""
    odd: list[Any] = [None, True, -1, 2**70, 1.5e308, "", "x" * 300, [], {}, [1, "a"], {"a": 1}]
    out: list[tuple[str, bytes]] = []
    for _ in range(count):
        path = ctx.rng.choice((CHAT, COMPLETIONS))
        body = chat_body(ctx) if path == CHAT else completion_body(ctx)
        fields = sorted(k for k in body if k != "max_tokens")  # keep generation short
        action = ctx.rng.randrange(3)
        target = ctx.rng.choice(fields)
        if action == 0:
            del body[target]
        else:
            body[target] = ctx.rng.choice(odd)
            if action == 2:
                extra = ctx.rng.choice(("n", "stream", "stop", "top_p", "stream_options"))
                body[extra] = ctx.rng.choice(odd)
        out.append((path, json.dumps(body).encode()))
    return out


@check(
    "http.errors.no-server-errors",
    title="Client errors never give a 5xx",
    description="""Requests broken by the client (fields dropped, wrong types, odd values)
    MUST NOT be answered with a 5xx status; a 4xx answer MUST carry a body valid against
    http.error.""",
    profiles=("core",),
    contracts=("http.error",),
    rules=(*ENVELOPE_RULES, "http.errors.no-server-errors"),
)
def no_server_errors(ctx: Context) -> None:
    for path, raw in _mutations(ctx, 16):
        response = ctx.http.post_raw(path, raw)
        what = f"POST {path} {raw[:120]!r}"
        if response.status >= 500:
            raise CheckFailed(f"{what}: server error {response.status}: {response.text[:200]!r}")
        if 400 <= response.status < 500:
            _expect_error(ctx, response, response.status, what)


CHECKS: tuple[Check, ...] = (unknown_model, malformed_json, invalid_parameter, no_server_errors)
