"""Tokenizer and chat template of a local HF-style model directory."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import jinja2
import tokenizers
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = ["ChatTemplate", "ChatTemplateError", "Tokenizer"]


class Tokenizer:
    """A thin typed wrapper around a ``tokenizers.Tokenizer`` loaded from ``tokenizer.json``."""

    def __init__(self, inner: tokenizers.Tokenizer) -> None:
        self._inner = inner
        self._special_ids = frozenset(
            token_id
            for token_id, token in inner.get_added_tokens_decoder().items()
            if token.special
        )

    @classmethod
    def from_file(cls, path: str) -> Tokenizer:
        """Load ``tokenizer.json``; raises ``Exception`` from the tokenizers library if invalid."""
        return cls(tokenizers.Tokenizer.from_file(path))

    @property
    def inner(self) -> tokenizers.Tokenizer:
        """The wrapped ``tokenizers.Tokenizer``."""
        return self._inner

    @property
    def vocab_size(self) -> int:
        """Number of token ids, added tokens included."""
        return int(self._inner.get_vocab_size(with_added_tokens=True))

    @property
    def special_token_ids(self) -> frozenset[int]:
        """Ids of the special added tokens (``<s>``, ``</s>``, ...)."""
        return self._special_ids

    def encode(self, text: str, *, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text``."""
        return list(self._inner.encode(text, add_special_tokens=add_special_tokens).ids)

    def decode(self, token_ids: Sequence[int], *, skip_special_tokens: bool = True) -> str:
        """Text of ``token_ids``."""
        return str(self._inner.decode(list(token_ids), skip_special_tokens=skip_special_tokens))

    def token_to_id(self, token: str) -> int | None:
        """Id of one token string, or ``None`` when it is not in the vocabulary."""
        result = self._inner.token_to_id(token)
        return None if result is None else int(result)


class ChatTemplateError(ValueError):
    """The chat template does not compile or failed to render the given messages."""


def _raise_exception(message: str) -> None:
    raise ChatTemplateError(message)


def _tojson(value: Any, indent: int | None = None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=indent)


class ChatTemplate:
    """A Jinja chat template rendered in a sandbox, like ``apply_chat_template`` in HF.

    The template sees ``messages``, ``add_generation_prompt``, ``bos_token``, ``eos_token`` and
    any extra keyword arguments (``tools``, ...); ``raise_exception(msg)`` aborts rendering.
    """

    def __init__(self, source: str, *, bos_token: str = "", eos_token: str = "") -> None:
        env = ImmutableSandboxedEnvironment(
            trim_blocks=True, lstrip_blocks=True, undefined=jinja2.Undefined
        )
        env.globals["raise_exception"] = _raise_exception
        env.filters["tojson"] = _tojson
        try:
            self._template = env.from_string(source)
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"chat template does not compile: {exc}") from exc
        self.source = source
        self.bos_token = bos_token
        self.eos_token = eos_token

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        add_generation_prompt: bool = True,
        **extra: Any,
    ) -> str:
        """The prompt text for ``messages``."""
        context: dict[str, Any] = {
            "bos_token": self.bos_token,
            "eos_token": self.eos_token,
            **extra,
            "messages": [dict(message) for message in messages],
            "add_generation_prompt": add_generation_prompt,
        }
        try:
            return self._template.render(context)
        except ChatTemplateError:
            raise
        except jinja2.TemplateError as exc:
            raise ChatTemplateError(f"chat template failed to render: {exc}") from exc
