"""Requests into the mock engine and the token chunks it streams back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "EngineOutput",
    "FinishReason",
    "GenerateRequest",
    "RequestError",
    "TokenLogprob",
    "Usage",
]


class RequestError(ValueError):
    """The engine cannot serve this request (empty prompt, too long, duplicate id, ...)."""


class FinishReason(StrEnum):
    """Why generation ended; values as Dynamo's ``FinishReason`` serializes them."""

    EOS = "eos"
    LENGTH = "length"
    STOP = "stop"
    ERROR = "error"
    CANCELLED = "cancelled"


def _ids(value: Any) -> tuple[int, ...]:
    if not value:
        return ()
    return tuple(int(v) for v in value)


@dataclass(frozen=True)
class GenerateRequest:
    """One generation request: prompt token ids and stop conditions.

    ``max_tokens`` ``None`` means up to ``max_model_len`` (or the engine's default).
    A generated token in ``eos_token_ids`` ends with ``eos`` unless ``ignore_eos``; one in
    ``stop_token_ids`` ends with ``stop``, and so does text containing a ``stop`` string (this
    needs an engine with a detokenizer). Neither applies before ``min_tokens`` tokens.
    ``seed`` picks the random output tokens (default: derived from the prompt).
    ``n`` choices are generated for the prompt, each its own sequence (choice 0 is what
    ``n=1`` gives); ``logprobs`` (``None``: none) asks for each token's log probability and
    that many most likely alternatives.
    """

    request_id: str
    token_ids: tuple[int, ...]
    max_tokens: int | None = None
    min_tokens: int = 0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    eos_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    seed: int | None = None
    annotations: tuple[str, ...] = ()
    n: int = 1
    logprobs: int | None = None

    @classmethod
    def from_preprocessed(cls, request_id: str, body: Mapping[str, Any]) -> GenerateRequest:
        """From a Dynamo ``PreprocessedRequest`` (the request-plane msgpack body)."""
        stop = body.get("stop_conditions") or {}
        sampling = body.get("sampling_options") or {}
        ignore_eos = bool(stop.get("ignore_eos"))
        eos = _ids(body.get("eos_token_ids"))
        stop_ids = (
            _ids(stop.get("stop_token_ids"))
            + _ids(stop.get("stop_token_ids_visible"))
            + _ids(stop.get("stop_token_ids_hidden"))
        )
        if ignore_eos:
            stop_ids = tuple(t for t in stop_ids if t not in eos)
        seed = sampling.get("seed")
        max_tokens = stop.get("max_tokens")
        logprobs = (body.get("output_options") or {}).get("logprobs")
        return cls(
            request_id=request_id,
            token_ids=_ids(body.get("token_ids")),
            max_tokens=None if max_tokens is None else int(max_tokens),
            min_tokens=int(stop.get("min_tokens") or 0),
            stop=tuple(str(s) for s in stop.get("stop") or ()),
            stop_token_ids=tuple(dict.fromkeys(stop_ids)),
            eos_token_ids=eos,
            ignore_eos=ignore_eos,
            seed=None if seed is None else int(seed),
            annotations=tuple(str(a) for a in body.get("annotations") or ()),
            n=int(sampling.get("n") or 1),
            logprobs=None if logprobs is None else int(logprobs),
        )


@dataclass(frozen=True, slots=True)
class Usage:
    """Token accounting of a finished request; ``cached_tokens`` = prefix-cache hits."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int

    @property
    def total_tokens(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """The log probability of one generated token and the most likely tokens at its position
    (``top``: ``(token_id, logprob)``, most likely first; the token itself may be among them)."""

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True, slots=True)
class EngineOutput:
    """One streamed chunk: the tokens generated in one forward pass.

    The last chunk of a request has ``finish_reason`` and ``usage``; ``stop_reason`` is the
    stop string or token id that ended it with ``stop``/``eos``; ``error`` explains ``error``.
    Every generated token is included (an eos or stop token too), so ``completion_tokens``
    equals the number of ids streamed. ``index`` is the choice the tokens belong to;
    ``logprobs`` has one entry per token when the request asked for them.
    """

    request_id: str
    token_ids: tuple[int, ...]
    finish_reason: FinishReason | None = None
    stop_reason: int | str | None = None
    usage: Usage | None = None
    error: str | None = None
    index: int = 0
    logprobs: tuple[TokenLogprob, ...] | None = None

    @property
    def finished(self) -> bool:
        """Whether this is the request's last chunk."""
        return self.finish_reason is not None
