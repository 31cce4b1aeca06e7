"""OpenAI request handling of the reference frontend: validation, preprocessing, responses.

Request bodies are validated against the ``http.*-request`` contracts and rejected with
Dynamo's messages (``Failed to deserialize the JSON body into the target type: ...`` for
shape errors, ``Validation: ...`` for out-of-range values). Accepted requests become a
``PreprocessedRequest`` for the worker; the worker's outputs become OpenAI chunks and
responses shaped as ai-dynamo 1.6.1's.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from dynconform.contracts import Validator, Violation
from dynconform.mocker.detokenizer import Decode, IncrementalDetokenizer
from dynconform.mocker.logprobs import (
    TokenText,
    WireLogprob,
    chat_logprobs,
    completion_logprobs,
    from_engine_fields,
)
from dynconform.mocker.tokenizer import ChatTemplateError

__all__ = [
    "ApiError",
    "Choice",
    "Completion",
    "Update",
    "finish_reason",
    "preprocess",
    "preprocess_batch",
    "prompt_token_lists",
    "requested_logprobs",
    "validate_request",
]

Kind = Literal["chat", "completion"]
CONTRACTS = {"chat": "http.chat-completion-request", "completion": "http.completion-request"}
DESERIALIZE = "Failed to deserialize the JSON body into the target type: "
_RANGES = {
    "temperature": ("Temperature", 0, 2),
    "top_p": ("Top_p", 0, 1),
    "frequency_penalty": ("Frequency penalty", -2, 2),
    "presence_penalty": ("Presence penalty", -2, 2),
    "min_p": ("Min_p", 0, 1),
    "repetition_penalty": ("Repetition penalty", 0, 2),
    "top_logprobs": ("Top_logprobs", 0, 20),
    "logprobs": ("Logprobs", 0, 5),
    "n": ("n", 1, 128),
}
_REQUIRED = re.compile(r"'([^']+)' is a required property")
_UNEXPECTED = re.compile(r"\('([^']+)'")
_FINISH = {"eos": "stop", "stop": "stop", "length": "length", "cancelled": "stop"}


class ApiError(Exception):
    """An HTTP error in Dynamo's flat envelope: ``{"message", "type", "code"}``."""

    def __init__(self, code: int, message: str, error_type: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        #: the ``error_type`` metric label
        self.error_type = error_type


def _nvext_fields(validator: Validator) -> list[str]:
    schema = validator.catalog.get("http.nvext").schema
    return list(schema.get("properties", {}))


def _message(violation: Violation, body: dict[str, Any], validator: Validator) -> str:
    pointer = violation.pointer
    name = pointer.rsplit("/", 1)[-1]
    if violation.rule == "schema.required":
        match = _REQUIRED.search(violation.message)
        missing = match.group(1) if match else name
        return f"{DESERIALIZE}missing field `{missing}`"
    if pointer == "/prompt" or pointer.startswith("/prompt/"):
        return f"{DESERIALIZE}data did not match any variant of untagged enum Prompt"
    if pointer == "/temperature" and violation.rule == "schema.not":
        return (
            "Validation: When n > 1, temperature must be greater than 0 to ensure diverse "
            f"outputs. Got n={body.get('n')}, temperature={_number(body.get('temperature', 0))}"
        )
    if violation.rule == "schema.additionalProperties":
        match = _UNEXPECTED.search(violation.message)
        unknown = match.group(1) if match else name
        expected = ", ".join(f"`{f}`" for f in _nvext_fields(validator))
        return f"{DESERIALIZE}unknown field `{unknown}`, expected one of {expected}"
    if violation.rule in ("schema.minimum", "schema.maximum", "schema.exclusiveMinimum") and (
        pointer.count("/") == 1 and name in _RANGES
    ):
        label, low, high = _RANGES[name]
        return f"Validation: {label} must be between {low} and {high}, got {body.get(name)}"
    return f"{DESERIALIZE}{pointer or 'body'}: {violation.message}"


def validate_request(
    validator: Validator, kind: Kind, body: Any, *, modes: Collection[str] = ()
) -> None:
    """Raise :class:`ApiError` (400) unless ``body`` is a valid request of ``kind``
    (``modes``: the active violation modes)."""
    if not isinstance(body, dict):
        raise ApiError(400, f"{DESERIALIZE}invalid type: expected a JSON object", "validation")
    violations = validator.errors(CONTRACTS[kind], body)
    if "http.errors.invalid-parameter" in modes:  # unknown nvext fields slip through
        violations = [v for v in violations if not _unknown_nvext_field(v)]
    if violations:
        raise ApiError(400, _message(violations[0], body, validator), "validation")


def _number(value: float) -> str:
    """A number as Rust's ``Display`` writes an f32: ``0`` for ``0.0``."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _unknown_nvext_field(violation: Violation) -> bool:
    return violation.rule == "schema.additionalProperties" and violation.pointer == "/nvext"


def prompt_token_lists(prompt: Any, encode: Callable[[str], list[int]]) -> list[list[int]]:
    """The token ids of each prompt of a completion request (a batch has several), with
    ai-dynamo 1.6.1's messages for empty prompts."""
    if isinstance(prompt, str):
        if not prompt:
            raise ApiError(400, "Validation: Prompt string cannot be empty", "validation")
        return [list(encode(prompt))]
    if not isinstance(prompt, list) or not prompt:
        raise ApiError(400, "Validation: Prompt string array cannot be empty", "validation")
    if all(isinstance(p, int) for p in prompt):
        return [[int(p) for p in prompt]]
    lists: list[list[int]] = []
    for i, item in enumerate(prompt):
        if isinstance(item, str):
            if not item:
                message = f"Validation: Prompt string at index {i} cannot be empty"
                raise ApiError(400, message, "validation")
            lists.append(list(encode(item)))
        else:
            if not item:
                message = f"Validation: Prompt integer array at index {i} cannot be empty"
                raise ApiError(400, message, "validation")
            lists.append([int(t) for t in item])
    return lists


def _none_if_missing(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: body.get(name) for name in names}


def requested_logprobs(kind: Kind, body: dict[str, Any]) -> int | None:
    """``output_options.logprobs`` of a request: how many alternatives per token the worker
    reports (``None``: no log probabilities). Chat: ``top_logprobs`` (1 if unset) when
    ``logprobs`` is true; completions: ``logprobs`` itself, 0 included."""
    if kind == "chat":
        if body.get("logprobs") is not True:
            return None
        top = body.get("top_logprobs")
        return 1 if top is None else int(top)
    value = body.get("logprobs")
    return None if value is None else int(value)


def preprocess(
    kind: Kind, body: dict[str, Any], *, model: Any, card_sum: str
) -> tuple[list[int], dict[str, Any]]:
    """Tokenize a single-prompt request and build its ``PreprocessedRequest``."""
    batch = preprocess_batch(kind, body, model=model, card_sum=card_sum)
    if len(batch) != 1:
        raise ApiError(400, "Validation: expected a single prompt", "validation")
    return batch[0]


def preprocess_batch(
    kind: Kind, body: dict[str, Any], *, model: Any, card_sum: str
) -> list[tuple[list[int], dict[str, Any]]]:
    """Tokenize the request and build one ``PreprocessedRequest`` per prompt (a completion
    request may hold a batch of prompts; a chat request has one)."""
    model_dir = model.model_dir
    if kind == "chat":
        try:
            prompts = [model_dir.encode_chat(body["messages"])]
        except ChatTemplateError as exc:
            raise ApiError(400, f"Validation: {exc}", "validation") from None
    else:
        prompts = prompt_token_lists(body["prompt"], model_dir.tokenizer.encode)
    context = model.card.get("context_length") or model_dir.context_length
    for token_ids in prompts:
        if not token_ids:
            raise ApiError(400, "Validation: the prompt is empty", "validation")
        if context and len(token_ids) >= context:
            raise ApiError(
                400,
                f"Validation: the prompt has {len(token_ids)} tokens, the model's context "
                f"length is {context}",
                "validation",
            )
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens == 0:  # ai-dynamo 1.6.1's message for the same request
        raise ApiError(400, "Validation: Max tokens must be greater than 0, got 0", "validation")
    return [(token_ids, _request(kind, body, token_ids, model, card_sum)) for token_ids in prompts]


def _request(
    kind: Kind, body: dict[str, Any], token_ids: list[int], model: Any, card_sum: str
) -> dict[str, Any]:
    eos = list(model.model_dir.eos_token_ids)
    ignore_eos = bool(body.get("ignore_eos"))
    stop = body.get("stop")
    nvext = body.get("nvext") or {}
    return {
        "model": model.name,
        "token_ids": token_ids,
        "stop_conditions": {
            "max_tokens": body.get("max_completion_tokens", body.get("max_tokens")),
            "stop": [stop] if isinstance(stop, str) else stop,
            "stop_token_ids": None,
            "stop_token_ids_visible": None,
            "stop_token_ids_hidden": None if ignore_eos else eos,
            "min_tokens": body.get("min_tokens"),
            "ignore_eos": body.get("ignore_eos"),
            "max_thinking_tokens": None,
        },
        "sampling_options": _none_if_missing(
            body,
            "n",
            "best_of",
            "presence_penalty",
            "frequency_penalty",
            "repetition_penalty",
            "temperature",
            "top_p",
            "top_k",
            "min_p",
            "use_beam_search",
            "length_penalty",
            "seed",
            "include_stop_str_in_output",
            "guided_decoding",
        ),
        "output_options": {
            "logprobs": requested_logprobs(kind, body),
            "prompt_logprobs": None,
            "skip_special_tokens": body.get("skip_special_tokens"),
            "formatted_prompt": None,
            "return_tokens_as_token_ids": None,
        },
        "eos_token_ids": eos,
        "mdc_sum": card_sum,
        "annotations": list(nvext.get("annotations") or []),
        "routing": {"dp_rank": 0},
        "router_config_override": None,
    }


def finish_reason(value: str | None) -> str | None:
    """The OpenAI finish reason of a Dynamo one (``eos`` -> ``stop``)."""
    return None if value is None else _FINISH.get(value, "stop")


@dataclass
class Choice:
    """One choice of a request: its text (detokenized incrementally), finish reason and log
    probabilities."""

    index: int
    detokenizer: IncrementalDetokenizer
    finish: str | None = None
    logprobs: list[WireLogprob] = field(default_factory=list)
    #: whether a chunk of this choice was streamed (a chat choice's first one has the role)
    started: bool = False

    @property
    def text(self) -> str:
        """The text emitted so far."""
        return self.detokenizer.text

    @property
    def tokens(self) -> int:
        """Tokens received so far."""
        return len(self.detokenizer.ids)


@dataclass(frozen=True, slots=True)
class Update:
    """What one worker output added to a choice."""

    choice: Choice
    text: str
    finish: str | None
    logprobs: list[WireLogprob]
    tokens: int


def _no_text(token_ids: Sequence[int]) -> str:
    return ""


@dataclass
class Completion:
    """Builds the chunks and the response of one request (``violations`` applied).

    A request has ``prompts`` prompts (a completion batch) of ``n`` choices each; choice
    ``prompt * n + index`` holds the outputs of the worker's choice ``index`` for that prompt.
    ``decode`` detokenizes outputs; ``token_text`` names the tokens of log probabilities,
    included when ``logprobs``; ``nvext_fields`` are the requested ``nvext.extra_fields``.
    """

    kind: Kind
    model: str
    prompt_tokens: int
    violations: frozenset[str] = frozenset()
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: int = field(default_factory=lambda: int(time.time()))
    decode: Decode = _no_text
    token_text: TokenText | None = None
    n: int = 1
    prompts: int = 1
    logprobs: bool = False
    nvext_fields: frozenset[str] = frozenset()
    #: whether ``nvext.worker_id`` names the data-parallel ranks too (the kv router does)
    worker_ranks: bool = False
    choices: dict[int, Choice] = field(default_factory=dict)
    #: cached prompt tokens reported for each prompt (the latest report wins)
    cached: dict[int, int] = field(default_factory=dict)
    #: the worker instance that serves each prompt
    workers: dict[int, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return ("chatcmpl-" if self.kind == "chat" else "cmpl-") + self.request_id

    @property
    def completion_tokens(self) -> int:
        """Tokens generated, over every choice."""
        return sum(choice.tokens for choice in self.choices.values())

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens served from the prefix cache, over every prompt."""
        return sum(self.cached.values())

    @property
    def finished(self) -> bool:
        """Whether every choice has its finish reason."""
        return len(self.choices) == self.n * self.prompts and all(
            choice.finish is not None for choice in self.choices.values()
        )

    def choice(self, index: int) -> Choice:
        """Choice ``index`` (created on first use)."""
        choice = self.choices.get(index)
        if choice is None:
            choice = self.choices[index] = Choice(index, IncrementalDetokenizer(self.decode))
        return choice

    def apply(self, item: dict[str, Any], prompt: int = 0) -> Update:
        """Take one worker output (an ``Annotated`` item) for ``prompt``; raises
        :class:`ApiError` for an error item."""
        if item.get("event") == "error":
            comment = item.get("comment") or ["the worker failed"]
            raise ApiError(500, "; ".join(str(c) for c in comment), "internal")
        data = item.get("data") or {}
        choice = self.choice(prompt * self.n + int(data.get("index") or 0))
        ids = [int(t) for t in data.get("token_ids") or ()]
        usage = data.get("completion_usage")
        if isinstance(usage, dict):
            details = usage.get("prompt_tokens_details") or {}
            self.cached[prompt] = int(details.get("cached_tokens") or 0)
        finish = finish_reason(data.get("finish_reason"))
        text = choice.detokenizer.add(ids)
        if finish is not None and choice.finish is None:
            choice.finish = finish
            text += choice.detokenizer.flush()
        logprobs = from_engine_fields(ids, data) if self.logprobs and ids else []
        choice.logprobs.extend(logprobs)
        return Update(choice, text, finish, logprobs, len(ids))

    def usage(self) -> dict[str, Any]:
        completion_tokens = self.completion_tokens
        total = self.prompt_tokens + completion_tokens
        if "http.usage-totals" in self.violations:
            total += 1
        details: dict[str, Any] = {"cached_tokens": self.cached_tokens}
        if self.kind == "completion":
            details = {"audio_tokens": None, "cached_tokens": self.cached_tokens}
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": total,
            "prompt_tokens_details": details,
        }

    def _base(self) -> dict[str, Any]:
        return {"id": self.id, "choices": [], "created": self.created, "model": self.model}

    def _nvext(self, index: int | None) -> dict[str, Any] | None:
        if "worker_id" not in self.nvext_fields:
            return None
        worker = self.workers.get(0 if index is None else index // self.n)
        if worker is None:
            return None
        if self.worker_ranks:
            ids = {"prefill_worker_id": worker, "prefill_dp_rank": 0}
            return {"worker_id": ids | {"decode_worker_id": worker, "decode_dp_rank": 0}}
        return {"worker_id": {"prefill_worker_id": worker, "decode_worker_id": worker}}

    def _choice_logprobs(self, logprobs: list[WireLogprob]) -> dict[str, Any]:
        token_text = self.token_text or (lambda token_id: "")
        if self.kind == "chat":
            return chat_logprobs(logprobs, token_text)
        return completion_logprobs(logprobs, token_text)

    def update_chunk(self, update: Update) -> dict[str, Any] | None:
        """The chunk that streams ``update``, or ``None`` when it adds nothing to show (text
        still held back; a chat choice's first output always shows, with the role)."""
        choice = update.choice
        first = self.kind == "chat" and not choice.started
        if not (update.text or update.finish or update.logprobs or first):
            return None
        logprobs = self._choice_logprobs(update.logprobs) if update.logprobs else None
        return self.chunk(update.text, update.finish, index=choice.index, logprobs=logprobs)

    def chunk(
        self,
        text: str | None,
        finish: str | None,
        *,
        index: int = 0,
        role: bool = False,
        logprobs: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One streamed chunk of choice ``index`` with ``text`` (chat: a delta) and
        ``finish``; a chat choice's first chunk (or ``role``) carries the role."""
        choice = self.choice(index)
        role = role or not choice.started
        choice.started = True
        if "http.sse.one-finish-reason" in self.violations:
            finish = None
        out = self._base()
        if self.kind == "chat":
            delta: dict[str, Any] = {}
            if role and "http.sse.first-delta-role" not in self.violations:
                delta["role"] = "assistant"
            if text:
                delta["content"] = text
            entry = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": logprobs}
            out["choices"] = [entry]
            out["object"] = "chat.completion.chunk"
        else:
            entry = {"text": text or "", "index": index}
            if logprobs is not None:
                entry["logprobs"] = logprobs
            entry["finish_reason"] = finish
            out["choices"] = [entry]
            out |= {"system_fingerprint": None, "object": "text_completion", "usage": None}
        nvext = self._nvext(index)
        if nvext is not None:
            out["nvext"] = nvext
        return out

    def error_chunks(self, message: str) -> list[dict[str, Any]]:
        """Chunks that end every unfinished choice (``stop``) with the error text."""
        out = []
        for index in range(max(self.n * self.prompts, 1)):
            choice = self.choice(index)
            if choice.finish is None:
                choice.finish = "stop"
                out.append(self.chunk(f"[error: {message}]", "stop", index=index))
        return out

    def usage_chunk(self) -> dict[str, Any]:
        """The final chunk with ``usage`` and no choices (``stream_options.include_usage``)."""
        out = self._base()
        if self.kind == "chat":
            out["object"] = "chat.completion.chunk"
        else:
            out |= {"system_fingerprint": None, "object": "text_completion"}
        out["usage"] = self.usage()
        return out

    def response(self) -> dict[str, Any]:
        """The non-streaming response: the choices in index order."""
        out = self._base()
        choices = [self.choices[i] for i in sorted(self.choices)]
        for choice in choices:
            choice.detokenizer.flush()
        if self.kind == "chat":
            out["choices"] = [
                {
                    "index": choice.index,
                    "message": {
                        "content": choice.text or None,
                        "refusal": None,
                        "role": "assistant",
                    },
                    "finish_reason": choice.finish,
                    "logprobs": self._choice_logprobs(choice.logprobs) if self.logprobs else None,
                }
                for choice in choices
            ]
            out["object"] = "chat.completion"
        else:
            entries = []
            for choice in choices:
                entry: dict[str, Any] = {"text": choice.text, "index": choice.index}
                if self.logprobs:
                    entry["logprobs"] = self._choice_logprobs(choice.logprobs)
                entry["finish_reason"] = choice.finish
                entries.append(entry)
            out["choices"] = entries
            out |= {"system_fingerprint": None, "object": "text_completion"}
        out["usage"] = self.usage()
        nvext = self._nvext(None)
        if nvext is not None:
            out["nvext"] = nvext
        return _violated(out, self.violations)


def _violated(response: dict[str, Any], modes: frozenset[str]) -> dict[str, Any]:
    """A non-streaming response with the violation modes that change it applied."""
    if response["object"] == "chat.completion" and "http.chat.wrong-object" in modes:
        response["object"] = "chat.completion.chunk"
    if response["object"] == "text_completion":
        if "http.completion.missing-field" in modes:
            del response["created"]
        if "http.finish-reason-length" in modes:
            for choice in response["choices"]:
                if choice.get("finish_reason") == "length":
                    choice["finish_reason"] = "stop"
    return response
