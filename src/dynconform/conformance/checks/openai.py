"""OpenAI behaviour that Dynamo does not promise: run with the ``openai-strict`` profile."""

from __future__ import annotations

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance.checks._common import CHAT, chat_body


@check(
    "openai.errors.envelope",
    title="Errors use OpenAI's error envelope",
    description="""An error response MUST be `{"error": {"message", "type", "param", "code"}}`
    as OpenAI's API answers, valid against http.openai-error.""",
    profiles=("openai-strict",),
    contracts=("http.openai-error",),
    rules=("schema.*", "openai.errors.envelope"),
)
def error_envelope(ctx: Context) -> None:
    for response, what in (
        (ctx.http.post_json(CHAT, chat_body(ctx, model="no-such-model")), "unknown model"),
        (ctx.http.post_raw(CHAT, b"{not json"), "malformed JSON"),
    ):
        if response.status < 400:
            raise CheckFailed(f"{what}: {response.describe()}, expected an error status")
        ctx.expect_valid("http.openai-error", response.json(), f"{what} ({response.status})")


CHECKS: tuple[Check, ...] = (error_envelope,)
