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
from dataclasses import dataclass, field
from typing import Any, Literal

from dynconform.contracts import Validator, Violation
from dynconform.mocker.tokenizer import ChatTemplateError

__all__ = [
    "ApiError",
    "Completion",
    "finish_reason",
    "preprocess",
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
    "n": ("N", 1, 128),
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


def validate_request(validator: Validator, kind: Kind, body: Any) -> None:
    """Raise :class:`ApiError` (400) unless ``body`` is a valid request of ``kind``."""
    if not isinstance(body, dict):
        raise ApiError(400, f"{DESERIALIZE}invalid type: expected a JSON object", "validation")
    violations = validator.errors(CONTRACTS[kind], body)
    if violations:
        raise ApiError(400, _message(violations[0], body, validator), "validation")
    if (body.get("n") or 1) > 1:
        raise ApiError(400, "Validation: n > 1 is not supported by the reference", "validation")


def _prompt_ids(prompt: Any, encode: Any) -> list[int]:
    if isinstance(prompt, str):
        return list(encode(prompt))
    if isinstance(prompt, list) and prompt and all(isinstance(p, int) for p in prompt):
        return [int(p) for p in prompt]
    if isinstance(prompt, list) and len(prompt) == 1:
        return _prompt_ids(prompt[0], encode)
    raise ApiError(400, "Validation: batched prompts are not supported", "validation")


def _none_if_missing(body: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: body.get(name) for name in names}


def preprocess(
    kind: Kind, body: dict[str, Any], *, model: Any, card_sum: str
) -> tuple[list[int], dict[str, Any]]:
    """Tokenize the request and build the ``PreprocessedRequest`` for the worker."""
    model_dir = model.model_dir
    if kind == "chat":
        try:
            token_ids = model_dir.encode_chat(body["messages"])
        except ChatTemplateError as exc:
            raise ApiError(400, f"Validation: {exc}", "validation") from None
    else:
        token_ids = _prompt_ids(body["prompt"], model_dir.tokenizer.encode)
    if not token_ids:
        raise ApiError(400, "Validation: the prompt is empty", "validation")
    context = model.card.get("context_length") or model_dir.context_length
    if context and len(token_ids) >= context:
        raise ApiError(
            400,
            f"Validation: the prompt has {len(token_ids)} tokens, the model's context length "
            f"is {context}",
            "validation",
        )
    eos = list(model_dir.eos_token_ids)
    ignore_eos = bool(body.get("ignore_eos"))
    stop = body.get("stop")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens == 0:  # ai-dynamo 1.6.1's message for the same request
        raise ApiError(400, "Validation: Max tokens must be greater than 0, got 0", "validation")
    nvext = body.get("nvext") or {}
    request = {
        "model": model.name,
        "token_ids": token_ids,
        "stop_conditions": {
            "max_tokens": max_tokens,
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
            "logprobs": None,
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
    return token_ids, request


def finish_reason(value: str | None) -> str | None:
    """The OpenAI finish reason of a Dynamo one (``eos`` -> ``stop``)."""
    return None if value is None else _FINISH.get(value, "stop")


@dataclass
class Completion:
    """Builds the chunks and the response of one request (``violations`` applied)."""

    kind: Kind
    model: str
    prompt_tokens: int
    violations: frozenset[str] = frozenset()
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    created: int = field(default_factory=lambda: int(time.time()))
    text: str = ""
    completion_tokens: int = 0
    cached_tokens: int = 0
    finish: str | None = None

    @property
    def id(self) -> str:
        return ("chatcmpl-" if self.kind == "chat" else "cmpl-") + self.request_id

    def usage(self) -> dict[str, Any]:
        total = self.prompt_tokens + self.completion_tokens
        if "http.usage-totals" in self.violations:
            total += 1
        details: dict[str, Any] = {"cached_tokens": self.cached_tokens}
        if self.kind == "completion":
            details = {"audio_tokens": None, "cached_tokens": self.cached_tokens}
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": total,
            "prompt_tokens_details": details,
        }

    def _base(self) -> dict[str, Any]:
        return {"id": self.id, "choices": [], "created": self.created, "model": self.model}

    def chunk(self, text: str | None, finish: str | None, *, role: bool = False) -> dict[str, Any]:
        """One streamed chunk with ``text`` (chat: a delta) and ``finish``."""
        if "http.sse.one-finish-reason" in self.violations:
            finish = None
        if self.kind == "chat":
            delta: dict[str, Any] = {}
            if role and "http.sse.first-delta-role" not in self.violations:
                delta["role"] = "assistant"
            if text:
                delta["content"] = text
            choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
            out = self._base()
            out["choices"] = [choice]
            out["object"] = "chat.completion.chunk"
            return out
        out = self._base()
        out["choices"] = [{"text": text or "", "index": 0, "finish_reason": finish}]
        out |= {"system_fingerprint": None, "object": "text_completion", "usage": None}
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
        """The non-streaming response."""
        out = self._base()
        if self.kind == "chat":
            message = {"content": self.text, "refusal": None, "role": "assistant"}
            out["choices"] = [
                {"index": 0, "message": message, "finish_reason": self.finish, "logprobs": None}
            ]
            out["object"] = "chat.completion"
        else:
            out["choices"] = [{"text": self.text, "index": 0, "finish_reason": self.finish}]
            out |= {"system_fingerprint": None, "object": "text_completion"}
        out["usage"] = self.usage()
        return out
