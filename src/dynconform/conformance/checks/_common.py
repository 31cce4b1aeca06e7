"""Requests and assertions shared by the check modules."""

from __future__ import annotations

from typing import Any

from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance._http import Response

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def chat_body(ctx: Context, **extra: Any) -> dict[str, Any]:
    """A chat request for the served model with a short seeded user message."""
    words = ("hello", "world", "router", "block", "token", "cache", "event", "worker")
    content = " ".join(ctx.rng.choice(words) for _ in range(6))
    body: dict[str, Any] = {
        "model": ctx.model(),
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 6,
    }
    body.update(extra)
    return body


def completion_body(ctx: Context, **extra: Any) -> dict[str, Any]:
    """A text completion request for the served model."""
    words = ("the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog")
    body: dict[str, Any] = {
        "model": ctx.model(),
        "prompt": " ".join(ctx.rng.choice(words) for _ in range(12)),
        "max_tokens": 6,
    }
    body.update(extra)
    return body


def expect_status(response: Response, *codes: int) -> None:
    if response.status not in codes:
        wanted = " or ".join(str(c) for c in codes)
        raise CheckFailed(f"{response.describe()}, expected {wanted}: {response.text[:300]!r}")


def ok_json(response: Response) -> Any:
    """The JSON body of a 200 ``application/json`` response."""
    expect_status(response, 200)
    if response.content_type != "application/json":
        raise CheckFailed(
            f"{response.describe()}: content-type {response.content_type!r}, "
            "expected application/json"
        )
    return response.json()
