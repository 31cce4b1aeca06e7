"""Log probabilities on the wire: from the engine to the worker's outputs to OpenAI responses.

The engine reports a :class:`~dynconform.mocker.protocol.TokenLogprob` per generated token.
A worker sends them in its ``LLMEngineOutput`` as ai-dynamo 1.6.1 backends do: ``log_probs``
(one float per token) and ``top_logprobs`` (per token, a list of ``{rank, token_id, token,
logprob}``). The frontend turns those into OpenAI's shapes as the 1.6.1 frontend does: a chat
choice's ``logprobs`` (``{"content": [{token, logprob, token_id, bytes, top_logprobs}],
"refusal": null}``) and a completion choice's ``logprobs`` (``{tokens, token_logprobs,
top_logprobs, text_offset}``), log probabilities rounded to f32.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dynconform.mocker.protocol import TokenLogprob

__all__ = [
    "TokenText",
    "WireLogprob",
    "chat_logprobs",
    "completion_logprobs",
    "engine_fields",
    "from_engine_fields",
]

TokenText = Callable[[int], str]
_F32 = struct.Struct("<f")


def engine_fields(logprobs: Sequence[TokenLogprob], token_text: TokenText) -> dict[str, Any]:
    """``log_probs`` and ``top_logprobs`` of an ``LLMEngineOutput`` (worker side)."""
    return {
        "log_probs": [entry.logprob for entry in logprobs],
        "top_logprobs": [
            [
                {"rank": rank, "token_id": token_id, "token": token_text(token_id), "logprob": lp}
                for rank, (token_id, lp) in enumerate(entry.top, 1)
            ]
            for entry in logprobs
        ],
    }


@dataclass(frozen=True, slots=True)
class WireLogprob:
    """One generated token's log probability as a worker sent it (frontend side)."""

    token_id: int
    logprob: float
    #: ``(token_id, token text, logprob)`` of the most likely tokens, most likely first
    top: tuple[tuple[int, str, float], ...] = ()


def from_engine_fields(token_ids: Sequence[int], data: dict[str, Any]) -> list[WireLogprob]:
    """The log probabilities in one worker output (empty if it has none or they are malformed)."""
    values = data.get("log_probs")
    if not isinstance(values, list) or len(values) != len(token_ids):
        return []
    tops = data.get("top_logprobs")
    if not isinstance(tops, list) or len(tops) != len(token_ids):
        tops = [[] for _ in token_ids]
    out: list[WireLogprob] = []
    for token_id, value, top in zip(token_ids, values, tops, strict=True):
        entries = tuple(
            (int(e["token_id"]), str(e.get("token") or ""), float(e["logprob"]))
            for e in (top if isinstance(top, list) else ())
            if isinstance(e, dict) and "token_id" in e and "logprob" in e
        )
        out.append(WireLogprob(int(token_id), float(value), entries))
    return out


def _f32(value: float) -> float:
    """``value`` rounded to f32, as an f64 (what Rust prints for an f32 widened to f64)."""
    return float(_F32.unpack(_F32.pack(value))[0])


def _f32_short(value: float) -> float:
    """``value`` rounded to f32 and written as briefly as an f32 prints (``-2.5508037``)."""
    rounded = _f32(value)
    for digits in range(6, 10):
        short = float(f"{rounded:.{digits}g}")
        if _f32(short) == rounded:
            return short
    return rounded


def _bytes(text: str) -> list[int] | None:
    return list(text.encode("utf-8")) if text else None


def chat_logprobs(entries: Iterable[WireLogprob], token_text: TokenText) -> dict[str, Any]:
    """A chat choice's ``logprobs`` for these tokens, as ai-dynamo 1.6.1 writes it: each
    token with its id and UTF-8 bytes (``null`` for an empty token, e.g. a special one); the
    worker's alternatives, then the token itself when they do not include it."""
    content = []
    for entry in entries:
        token = token_text(entry.token_id)
        alternatives = [
            {"token": text, "logprob": _f32_short(lp), "bytes": _bytes(text)}
            for _, text, lp in entry.top
        ]
        if all(token_id != entry.token_id for token_id, _, _ in entry.top):
            alternatives.append(
                {"token": token, "logprob": _f32_short(entry.logprob), "bytes": _bytes(token)}
            )
        content.append(
            {
                "token": token,
                "logprob": _f32_short(entry.logprob),
                "token_id": entry.token_id,
                "bytes": _bytes(token),
                "top_logprobs": alternatives,
            }
        )
    return {"content": content, "refusal": None}


def completion_logprobs(entries: Iterable[WireLogprob], token_text: TokenText) -> dict[str, Any]:
    """A completion choice's legacy ``logprobs`` for these tokens, as ai-dynamo 1.6.1 writes
    it: ``top_logprobs`` maps token text to log probability (the worker's alternatives, then
    the token itself); ``text_offset`` stays empty."""
    tokens: list[str] = []
    values: list[float] = []
    tops: list[dict[str, float]] = []
    for entry in entries:
        token = token_text(entry.token_id)
        tokens.append(token)
        values.append(_f32_short(entry.logprob))
        alternatives = {text: _f32(lp) for _, text, lp in entry.top}
        alternatives[token] = _f32(entry.logprob)  # wins over alternatives that read the same
        tops.append(alternatives)
    return {"tokens": tokens, "token_logprobs": values, "top_logprobs": tops, "text_offset": []}
