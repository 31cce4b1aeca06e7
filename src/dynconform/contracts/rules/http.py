"""Semantic rules of the http contracts: SSE framing and chunks, usage totals, error envelopes.

An ``http.sse-stream`` instance is the raw ``text/event-stream`` body, so its rules report the
pointer ``""`` and name the event and line in the message.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from dynconform.contracts._rules import Issue, Rule, correlation_rule, record_rule

if TYPE_CHECKING:
    from dynconform.contracts._validate import Validator

SSE = "http.sse-stream"
DONE = "[DONE]"
#: The chunk contract for each ``object`` value a streamed chunk may carry.
CHUNK_CONTRACTS = {
    "chat.completion.chunk": "http.chat-completion-chunk",
    "text_completion": "http.completion-chunk",
}
#: Reason phrases Dynamo puts in ``type`` for the status codes it answers with.
REASON_PHRASES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One event of a stream: its position, first line number and joined ``data`` value."""

    number: int
    line: int
    data: str


def sse_events(text: str) -> list[SseEvent]:
    """Split an SSE body into events (blank-line separated), keeping only ``data`` fields."""
    events: list[SseEvent] = []
    data: list[str] = []
    start = 0
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if not line:
            if data:
                events.append(SseEvent(len(events), start, "\n".join(data)))
                data = []
            continue
        if line.startswith("data:"):
            if not data:
                start = lineno
            value = line[len("data:") :]
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        events.append(SseEvent(len(events), start, "\n".join(data)))
    return events


def _where(event: SseEvent) -> str:
    return f"event {event.number} (line {event.line})"


def _chunks(text: str) -> Iterator[tuple[SseEvent, dict[str, Any]]]:
    """The events that hold a JSON object, decoded."""
    for event in sse_events(text):
        if event.data == DONE:
            continue
        try:
            value = json.loads(event.data)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield event, value


def _choices(chunk: dict[str, Any]) -> list[dict[str, Any]]:
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return []
    return [c for c in choices if isinstance(c, dict) and isinstance(c.get("index"), int)]


@cache
def _validator() -> Validator:
    from dynconform.contracts._validate import Validator

    return Validator()


@record_rule(
    "http.sse.data-lines-only",
    contract=SSE,
    summary="every non-blank line of the stream is a `data:` line",
)
def _data_lines_only(text: str) -> Iterator[Issue]:
    for lineno, raw in enumerate(text.split("\n"), 1):
        line = raw.removesuffix("\r")
        if line and not line.startswith("data:"):
            yield "", f"line {lineno} is not a `data:` line: {line[:80]!r}"


@record_rule(
    "http.sse.done-terminator",
    contract=SSE,
    summary="the stream ends with exactly one `data: [DONE]` event, closed by a blank line",
)
def _done_terminator(text: str) -> Iterator[Issue]:
    events = sse_events(text)
    done = [e for e in events if e.data == DONE]
    if not done:
        yield "", "the stream has no `data: [DONE]` terminator"
        return
    if len(done) > 1:
        lines = ", ".join(str(e.line) for e in done)
        yield "", f"`data: [DONE]` appears {len(done)} times (lines {lines})"
    if events[-1].data != DONE:
        yield "", f"{_where(events[-1])} follows `data: [DONE]`"
    elif not text.replace("\r\n", "\n").endswith("\n\n"):
        yield "", "`data: [DONE]` is not closed by a blank line, so clients never dispatch it"


@record_rule(
    "http.sse.chunks-valid",
    contract=SSE,
    summary="every data event is a JSON chunk valid against its chunk contract (by `object`)",
)
def _chunks_valid(text: str) -> Iterator[Issue]:
    validator = _validator()
    for event in sse_events(text):
        if event.data == DONE:
            continue
        try:
            chunk = json.loads(event.data)
        except ValueError as exc:
            yield "", f"{_where(event)}: data is not JSON ({exc})"
            continue
        kind = chunk.get("object") if isinstance(chunk, dict) else None
        contract = CHUNK_CONTRACTS.get(kind) if isinstance(kind, str) else None
        if contract is None:
            known = ", ".join(sorted(CHUNK_CONTRACTS))
            yield "", f"{_where(event)}: chunk `object` is {kind!r}, expected one of {known}"
            continue
        for violation in validator.validate(contract, chunk).violations:
            yield (
                "",
                (
                    f"{_where(event)}: {contract} [{violation.rule}] "
                    f"{violation.pointer or '/'}: {violation.message}"
                ),
            )


@record_rule(
    "http.sse.consistent-chunks",
    contract=SSE,
    summary="all chunks of one stream share `id`, `object` and `model`",
)
def _consistent_chunks(text: str) -> Iterator[Issue]:
    first: dict[str, Any] | None = None
    for event, chunk in _chunks(text):
        if first is None:
            first = chunk
            continue
        for key in ("id", "object", "model"):
            if chunk.get(key) != first.get(key):
                yield (
                    "",
                    (
                        f"{_where(event)}: `{key}` is {chunk.get(key)!r}, "
                        f"the first chunk's is {first.get(key)!r}"
                    ),
                )


@record_rule(
    "http.sse.one-finish-reason",
    contract=SSE,
    summary="each choice index gets exactly one non-null `finish_reason`",
)
def _one_finish_reason(text: str) -> Iterator[Issue]:
    finishes: dict[int, list[SseEvent]] = {}
    for event, chunk in _chunks(text):
        for choice in _choices(chunk):
            seen = finishes.setdefault(choice["index"], [])
            if choice.get("finish_reason") is not None:
                seen.append(event)
    for index, events in sorted(finishes.items()):
        if not events:
            yield "", f"choice {index} never gets a non-null `finish_reason`"
        elif len(events) > 1:
            where = ", ".join(_where(e) for e in events)
            yield "", f"choice {index} gets {len(events)} non-null `finish_reason`s ({where})"


@record_rule(
    "http.sse.first-delta-role",
    contract=SSE,
    summary="in a chat stream, the first delta of each choice carries `role: assistant`",
)
def _first_delta_role(text: str) -> Iterator[Issue]:
    seen: set[int] = set()
    for event, chunk in _chunks(text):
        if chunk.get("object") != "chat.completion.chunk":
            continue
        for choice in _choices(chunk):
            index = choice["index"]
            if index in seen:
                continue
            seen.add(index)
            delta = choice.get("delta")
            role = delta.get("role") if isinstance(delta, dict) else None
            if role != "assistant":
                yield "", f"{_where(event)}: first delta of choice {index} has role {role!r}"


class _UsageTotals:
    """Stateless: judges each response or chunk on its own."""

    def observe(self, contract: str, instance: Any, index: int | None) -> Iterable[Issue]:
        usage = instance.get("usage") if isinstance(instance, dict) else None
        if not isinstance(usage, dict):
            return ()
        prompt, completion, total = (
            usage.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")
        )
        if not (isinstance(prompt, int) and isinstance(completion, int)):
            return ()
        if total == prompt + completion:
            return ()
        return [
            (
                "/usage/total_tokens",
                f"total_tokens is {total}, prompt_tokens + completion_tokens is "
                f"{prompt} + {completion} = {prompt + completion}",
            )
        ]

    def finish(self) -> Iterable[Issue]:
        return ()


_usage_totals = correlation_rule(
    "http.usage-totals",
    contracts=(
        "http.chat-completion",
        "http.completion",
        "http.chat-completion-chunk",
        "http.completion-chunk",
    ),
    summary="`usage.total_tokens` equals `prompt_tokens + completion_tokens`",
)(_UsageTotals)


@record_rule(
    "http.error-type-matches-code",
    contract="http.error",
    summary="`type` is the HTTP reason phrase of `code`",
)
def _error_type_matches_code(error: dict[str, Any]) -> Iterator[Issue]:
    expected = REASON_PHRASES.get(error["code"])
    if expected is not None and error["type"] != expected:
        yield (
            "/type",
            f"type is {error['type']!r}, the reason phrase of {error['code']} is {expected!r}",
        )


RULES: tuple[Rule, ...] = (
    _data_lines_only,
    _done_terminator,
    _chunks_valid,
    _consistent_chunks,
    _one_finish_reason,
    _first_delta_role,
    _usage_totals,
    _error_type_matches_code,
)
