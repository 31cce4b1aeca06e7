"""Build and load the tiny HF-style model directory a mock worker serves.

A model directory holds exactly the four files that ai-dynamo's ``dynamo.mocker`` reads:
``config.json``, ``tokenizer.json`` (a byte-level BPE tokenizer trained in-process on a
built-in corpus), ``tokenizer_config.json`` (special tokens and a Jinja ``chat_template``) and
``generation_config.json``. Nothing is downloaded; the same arguments (and tokenizers
version) give the same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tokenizers
from tokenizers import decoders, models, pre_tokenizers, trainers

from dynconform.mocker.tokenizer import ChatTemplate, ChatTemplateError, Tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "MODEL_FILES",
    "ModelDir",
    "ModelDirError",
    "build_model_dir",
    "load_model_dir",
]

MODEL_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json")

UNK_TOKEN, BOS_TOKEN, EOS_TOKEN = "<unk>", "<s>", "</s>"
BOS_TOKEN_ID, EOS_TOKEN_ID = 1, 2  # special tokens come first in the vocabulary

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant', 'tool'] %}"
    "{{ raise_exception('unknown role: ' ~ message['role']) }}"
    "{% endif %}"
    "<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% elif message['content'] is not none %}"
    "{% for part in message['content'] %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}"
    "{% endif %}"
    "{{ eos_token }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_CORPUS = (
    "the quick brown fox jumps over the lazy dog",
    "hello world, hello there! how are you today?",
    "a mock engine streams tokens back to the frontend one chunk at a time.",
    "<|system|>\nyou are a helpful assistant.\n<|user|>\nhello\n<|assistant|>\nhi!\n",
    "<|user|>\nwhat is the capital of france?\n<|assistant|>\nparis is the capital.\n",
    "kv cache blocks are hashed, stored, reused and evicted by the worker.",
    "prefill, decode, router, worker, model, request, response, token, block, event",
    "0 1 2 3 4 5 6 7 8 9 10 16 32 64 128 256 512 1024 2048 4096",
    "Numbers, Punctuation; and MIXED case: (yes) [no] {maybe} - 'quotes' \"double\"",
)


class ModelDirError(ValueError):
    """A model directory is missing, incomplete or invalid; the message is one line."""


@dataclass(frozen=True)
class ModelDir:
    """A loaded model directory."""

    path: Path
    config: Mapping[str, Any]
    tokenizer_config: Mapping[str, Any]
    generation_config: Mapping[str, Any]
    tokenizer: Tokenizer
    chat_template: ChatTemplate
    bos_token_id: int | None
    eos_token_ids: tuple[int, ...]
    context_length: int | None

    @property
    def name(self) -> str:
        """The directory's base name, the default served model name."""
        return self.path.name

    @property
    def vocab_size(self) -> int:
        """Number of token ids the tokenizer knows."""
        return self.tokenizer.vocab_size

    def encode_chat(
        self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True
    ) -> list[int]:
        """Token ids of ``messages`` rendered with the chat template."""
        text = self.chat_template.render(messages, add_generation_prompt=add_generation_prompt)
        return self.tokenizer.encode(text)


def _train_tokenizer(vocab_size: int) -> tokenizers.Tokenizer:
    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[UNK_TOKEN, BOS_TOKEN, EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        min_frequency=1,
        show_progress=False,
    )
    tok.train_from_iterator(list(_CORPUS), trainer=trainer)
    return tok


def _dump(value: Mapping[str, Any]) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def build_model_dir(
    path: str | Path,
    *,
    vocab_size: int = 320,
    context_length: int = 4096,
    overwrite: bool = False,
) -> Path:
    """Write a tiny model directory at ``path`` (created if needed) and return its path.

    ``vocab_size`` is the BPE target size (at least 259: 256 bytes and 3 special tokens).
    Existing model files are only replaced when ``overwrite`` is true.
    """
    if vocab_size < 259:
        raise ModelDirError(f"vocab_size must be at least 259, got {vocab_size}")
    if context_length < 1:
        raise ModelDirError(f"context_length must be positive, got {context_length}")
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ModelDirError(f"model directory path is a file: {target}")
    existing = [name for name in MODEL_FILES if (target / name).exists()]
    if existing and not overwrite:
        raise ModelDirError(f"model directory {target} already has {existing[0]}")
    tok = _train_tokenizer(vocab_size)
    actual_vocab = int(tok.get_vocab_size(with_added_tokens=True))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "bos_token_id": BOS_TOKEN_ID,
        "eos_token_id": EOS_TOKEN_ID,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": context_length,
        "rms_norm_eps": 1e-05,
        "tie_word_embeddings": False,
        "torch_dtype": "float16",
        "vocab_size": actual_vocab,
    }
    tokenizer_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": BOS_TOKEN,
        "eos_token": EOS_TOKEN,
        "unk_token": UNK_TOKEN,
        "add_bos_token": False,
        "add_eos_token": False,
        "clean_up_tokenization_spaces": False,
        "model_max_length": context_length,
        "chat_template": CHAT_TEMPLATE,
    }
    generation_config = {"bos_token_id": BOS_TOKEN_ID, "eos_token_id": EOS_TOKEN_ID}
    target.mkdir(parents=True, exist_ok=True)
    files = {
        "config.json": _dump(config),
        "tokenizer.json": tok.to_str(pretty=True) + "\n",
        "tokenizer_config.json": _dump(tokenizer_config),
        "generation_config.json": _dump(generation_config),
    }
    for name, text in files.items():
        (target / name).write_text(text, encoding="utf-8")
    return target


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDirError(f"{path.name} in {path.parent} is not valid JSON: {reason}") from exc
    if not isinstance(value, dict):
        raise ModelDirError(f"{path.name} in {path.parent} must hold a JSON object")
    return value


def _token_ids(value: Any) -> tuple[int, ...]:
    items = value if isinstance(value, list) else [value]
    if all(isinstance(item, int) and not isinstance(item, bool) for item in items):
        return tuple(items)
    return ()


def _special_token(tokenizer_config: Mapping[str, Any], key: str) -> str:
    value = tokenizer_config.get(key)
    if isinstance(value, dict):  # an AddedToken object: {"content": "</s>", ...}
        value = value.get("content")
    return value if isinstance(value, str) else ""


def load_model_dir(path: str | Path) -> ModelDir:
    """Load and validate a model directory; raises :class:`ModelDirError` naming the problem."""
    root = Path(path)
    if not root.exists():
        raise ModelDirError(f"model directory not found: {root}")
    if not root.is_dir():
        raise ModelDirError(f"model path is not a directory: {root}")
    for name in MODEL_FILES:
        if not (root / name).is_file():
            raise ModelDirError(f"model directory {root} is missing {name}")
    config = _read_json(root / "config.json")
    tokenizer_config = _read_json(root / "tokenizer_config.json")
    generation_config = _read_json(root / "generation_config.json")
    try:
        tokenizer = Tokenizer.from_file(str(root / "tokenizer.json"))
    except Exception as exc:  # the tokenizers library raises a bare Exception
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelDirError(f"tokenizer.json in {root} cannot be loaded: {reason}") from exc
    source = tokenizer_config.get("chat_template")
    if not isinstance(source, str) or not source.strip():
        raise ModelDirError(f"tokenizer_config.json in {root} has no chat_template")
    try:
        template = ChatTemplate(
            source,
            bos_token=_special_token(tokenizer_config, "bos_token"),
            eos_token=_special_token(tokenizer_config, "eos_token"),
        )
    except ChatTemplateError as exc:
        raise ModelDirError(f"tokenizer_config.json in {root}: {exc}".splitlines()[0]) from exc
    eos = _token_ids(generation_config.get("eos_token_id")) or _token_ids(
        config.get("eos_token_id")
    )
    if not eos:
        raise ModelDirError(f"generation_config.json in {root} has no eos_token_id")
    bos = _token_ids(generation_config.get("bos_token_id")) or _token_ids(
        config.get("bos_token_id")
    )
    context = config.get("max_position_embeddings")
    return ModelDir(
        path=root,
        config=config,
        tokenizer_config=tokenizer_config,
        generation_config=generation_config,
        tokenizer=tokenizer,
        chat_template=template,
        bos_token_id=bos[0] if bos else None,
        eos_token_ids=eos,
        context_length=context if isinstance(context, int) and context > 0 else None,
    )
