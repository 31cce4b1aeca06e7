"""Streamed responses: SSE framing, chunks, finish reasons, roles and the usage chunk.

The streams are requested once per run and shared: each check judges the rule it owns.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from dynconform.conformance._check import Check, check
from dynconform.conformance._context import Context
from dynconform.conformance._errors import CheckFailed
from dynconform.conformance._http import Response
from dynconform.conformance.checks._common import (
    CHAT,
    COMPLETIONS,
    chat_body,
    completion_body,
    expect_status,
)
from dynconform.contracts.rules.http import DONE, sse_events

SSE = ("http.sse-stream",)


@dataclass(frozen=True, slots=True)
class Stream:
    what: str
    request: dict[str, Any]
    response: Response


def streams(ctx: Context) -> list[Stream]:
    """A streamed chat and a streamed text completion (requested once per run)."""

    def fetch() -> list[Stream]:
        out = []
        for path, body in (
            (CHAT, chat_body(ctx, stream=True)),
            (COMPLETIONS, completion_body(ctx, stream=True)),
        ):
            response = ctx.http.post_json(path, body)
            expect_status(response, 200)
            out.append(Stream(f"POST {path} stream", body, response))
        return out

    return ctx.memo("streams", fetch)


def _judge_streams(ctx: Context) -> None:
    for stream in streams(ctx):
        ctx.expect_valid("http.sse-stream", stream.response.text, stream.what)


@check(
    "http.stream.data-lines-only",
    title="Streams are text/event-stream made of data: lines",
    description="""A streamed response MUST have content-type text/event-stream and every
    non-blank line MUST be a `data:` line.""",
    profiles=("streaming",),
    contracts=SSE,
    rules=("http.sse.data-lines-only", "http.stream.content-type"),
)
def data_lines_only(ctx: Context) -> None:
    for stream in streams(ctx):
        if stream.response.content_type != "text/event-stream":
            raise CheckFailed(
                f"{stream.what}: content-type {stream.response.content_type!r}, "
                "expected text/event-stream"
            )
    _judge_streams(ctx)


@check(
    "http.stream.done-terminator",
    title="Streams end with data: [DONE]",
    description="""A streamed response MUST end with exactly one `data: [DONE]` event, closed
    by a blank line, and nothing after it.""",
    profiles=("streaming",),
    contracts=SSE,
    rules=("http.sse.done-terminator",),
)
def done_terminator(ctx: Context) -> None:
    _judge_streams(ctx)


@check(
    "http.stream.chunks-valid",
    title="Every streamed chunk is valid and consistent",
    description="""Every data event before [DONE] MUST be a JSON chunk valid against the chunk
    contract of its `object`, and all chunks of one stream MUST share `id`, `object` and
    `model`.""",
    profiles=("streaming",),
    contracts=SSE,
    rules=("http.sse.chunks-valid", "http.sse.consistent-chunks"),
)
def chunks_valid(ctx: Context) -> None:
    _judge_streams(ctx)


@check(
    "http.stream.one-finish-reason",
    title="Each streamed choice finishes exactly once",
    description="""Each choice index of a stream MUST receive exactly one non-null
    `finish_reason`.""",
    profiles=("streaming",),
    contracts=SSE,
    rules=("http.sse.one-finish-reason",),
)
def one_finish_reason(ctx: Context) -> None:
    _judge_streams(ctx)


@check(
    "http.stream.first-delta-role",
    title="The first chat delta carries role assistant",
    description="""In a streamed chat completion, the first delta of each choice MUST carry
    `role: assistant`.""",
    profiles=("streaming",),
    contracts=SSE,
    rules=("http.sse.first-delta-role",),
)
def first_delta_role(ctx: Context) -> None:
    _judge_streams(ctx)


def _chunks(text: str) -> list[dict[str, Any]]:
    out = []
    for event in sse_events(text):
        if event.data == DONE:
            continue
        try:
            value = json.loads(event.data)
        except ValueError:
            raise CheckFailed(f"event {event.number} is not JSON: {event.data[:100]!r}") from None
        if isinstance(value, dict):
            out.append(value)
    return out


@check(
    "http.stream.usage-chunk",
    title="include_usage adds one final usage chunk",
    description="""With `stream_options.include_usage`, a stream MUST end (before [DONE]) with
    one chunk that has empty `choices` and a `usage` whose total_tokens equals prompt_tokens +
    completion_tokens; no other chunk MAY carry a non-null usage.""",
    profiles=("streaming",),
    contracts=("http.chat-completion-chunk", "http.completion-chunk"),
    rules=("schema.*", "http.usage-totals", "http.stream.usage-chunk"),
)
def usage_chunk(ctx: Context) -> None:
    options = {"stream": True, "stream_options": {"include_usage": True}}
    for path, body, contract in (
        (CHAT, chat_body(ctx, **options), "http.chat-completion-chunk"),
        (COMPLETIONS, completion_body(ctx, **options), "http.completion-chunk"),
    ):
        response = ctx.http.post_json(path, body)
        expect_status(response, 200)
        chunks = _chunks(response.text)
        if not chunks:
            raise CheckFailed(f"POST {path}: the stream has no chunks")
        last = chunks[-1]
        if last.get("choices") != [] or not isinstance(last.get("usage"), dict):
            raise CheckFailed(
                f"POST {path}: the last chunk is not a usage chunk with empty choices: "
                f"{json.dumps(last)[:200]}"
            )
        early = [i for i, c in enumerate(chunks[:-1]) if c.get("usage") is not None]
        if early:
            raise CheckFailed(f"POST {path}: chunks {early} carry usage before the last one")
        ctx.expect_valid(contract, last, f"POST {path} usage chunk")
        completion = last["usage"].get("completion_tokens", 0)
        if isinstance(completion, int) and completion > body["max_tokens"]:
            raise CheckFailed(
                f"POST {path}: completion_tokens {completion} exceeds max_tokens "
                f"{body['max_tokens']}"
            )


CHECKS: tuple[Check, ...] = (
    data_lines_only,
    done_terminator,
    chunks_valid,
    one_finish_reason,
    first_delta_role,
    usage_chunk,
)
