"""The tiny HF-style model directory: deterministic build, strict loading, tokenizer, template."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynconform.mocker import (
    MODEL_FILES,
    ChatTemplate,
    ChatTemplateError,
    ModelDir,
    ModelDirError,
    build_model_dir,
    load_model_dir,
)

HELP = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1" / "cli_help" / "dynamo.mocker.txt"


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_build_is_deterministic(tmp_path: Path, tiny_model_path: Path) -> None:
    other = build_model_dir(tmp_path / "again")
    assert sorted(p.name for p in other.iterdir()) == sorted(MODEL_FILES)
    for name in MODEL_FILES:
        assert (other / name).read_bytes() == (tiny_model_path / name).read_bytes(), name


def test_build_parameters_change_the_files(tmp_path: Path, tiny_model_path: Path) -> None:
    other = build_model_dir(tmp_path / "small", vocab_size=300, context_length=128)
    model = load_model_dir(other)
    assert model.vocab_size == 300
    assert model.context_length == 128
    assert (other / "tokenizer.json").read_bytes() != (
        tiny_model_path / "tokenizer.json"
    ).read_bytes()


def test_loaded_model(tiny_model: ModelDir, tiny_model_path: Path) -> None:
    assert tiny_model.name == tiny_model_path.name
    assert tiny_model.vocab_size == 320
    assert tiny_model.bos_token_id == 1
    assert tiny_model.eos_token_ids == (2,)
    assert tiny_model.context_length == 4096
    assert tiny_model.tokenizer.token_to_id("</s>") == 2
    assert tiny_model.tokenizer.token_to_id("<s>") == 1
    assert tiny_model.tokenizer.special_token_ids == frozenset({0, 1, 2})


def test_files_hold_what_dynamo_reads(tiny_model_path: Path) -> None:
    """ai-dynamo's HF config reader needs architectures, model_type and the text config."""
    config = json.loads((tiny_model_path / "config.json").read_text())
    assert isinstance(config["architectures"], list)
    assert all(isinstance(a, str) for a in config["architectures"])
    assert isinstance(config["model_type"], str)
    for key in (
        "num_hidden_layers",
        "num_attention_heads",
        "max_position_embeddings",
        "vocab_size",
    ):
        assert isinstance(config[key], int)
    tokenizer_config = json.loads((tiny_model_path / "tokenizer_config.json").read_text())
    assert isinstance(tokenizer_config["chat_template"], str)
    assert tokenizer_config["eos_token"] == "</s>"
    generation = json.loads((tiny_model_path / "generation_config.json").read_text())
    assert generation == {"bos_token_id": 1, "eos_token_id": 2}
    tokenizer = json.loads((tiny_model_path / "tokenizer.json").read_text())
    specials = {t["content"]: t["id"] for t in tokenizer["added_tokens"] if t["special"]}
    assert specials == {"<unk>": 0, "<s>": 1, "</s>": 2}


def test_engine_options_are_named_like_the_real_mocker() -> None:
    """The real ``dynamo.mocker --help`` has the options the engine config mirrors."""
    text = HELP.read_text()
    for flag in (
        "--model-path",
        "--block-size",
        "--num-gpu-blocks-override",
        "--max-num-seqs",
        "--max-num-batched-tokens",
        "--max-model-len",
        "--enable-prefix-caching",
        "--enable-chunked-prefill",
        "--preemption-mode",
        "--speedup-ratio",
        "--decode-speedup-ratio",
    ):
        assert re.search(rf"\[{flag}[ \]]", text), flag


@pytest.mark.parametrize("name", MODEL_FILES)
def test_missing_file_is_named(tmp_path: Path, tiny_model_path: Path, name: str) -> None:
    model = _copy(tiny_model_path, tmp_path / "m")
    (model / name).unlink()
    with pytest.raises(ModelDirError) as info:
        load_model_dir(model)
    message = str(info.value)
    assert name in message
    assert "\n" not in message


def test_missing_or_wrong_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="not found"):
        load_model_dir(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelDirError, match="not a directory"):
        load_model_dir(tmp_path / "file")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("config.json", "{broken", "config.json .* not valid JSON"),
        ("config.json", "[1, 2]", "config.json .* must hold a JSON object"),
        ("tokenizer.json", '{"version": "1.0"}', "tokenizer.json .* cannot be loaded"),
        ("tokenizer_config.json", '{"eos_token": "</s>"}', "has no chat_template"),
        ("tokenizer_config.json", '{"chat_template": "{% for %}"}', "does not compile"),
        ("generation_config.json", "{}", None),
    ],
)
def test_invalid_file_is_reported(
    tmp_path: Path, tiny_model_path: Path, name: str, content: str, expected: str | None
) -> None:
    model = _copy(tiny_model_path, tmp_path / "m")
    (model / name).write_text(content)
    if expected is None:  # eos falls back to config.json
        assert load_model_dir(model).eos_token_ids == (2,)
        config = json.loads((model / "config.json").read_text())
        del config["eos_token_id"]
        (model / "config.json").write_text(json.dumps(config))
        expected = "has no eos_token_id"
    with pytest.raises(ModelDirError, match=expected) as info:
        load_model_dir(model)
    assert "\n" not in str(info.value)


def test_build_refuses_to_overwrite(tmp_path: Path) -> None:
    target = build_model_dir(tmp_path / "m")
    with pytest.raises(ModelDirError, match="already has"):
        build_model_dir(target)
    assert build_model_dir(target, overwrite=True) == target
    with pytest.raises(ModelDirError, match="vocab_size"):
        build_model_dir(tmp_path / "x", vocab_size=100)
    (tmp_path / "f").write_text("")
    with pytest.raises(ModelDirError, match="is a file"):
        build_model_dir(tmp_path / "f")


@given(st.text(max_size=200))
def test_tokenizer_round_trip(tiny_model: ModelDir, text: str) -> None:
    tokenizer = tiny_model.tokenizer
    ids = tokenizer.encode(text)
    assert all(0 <= i < tokenizer.vocab_size for i in ids)
    assert tokenizer.decode(ids, skip_special_tokens=False) == text


def test_tokenizer_merges_common_words(tiny_model: ModelDir) -> None:
    text = "the quick brown fox jumps over the lazy dog"
    assert len(tiny_model.tokenizer.encode(text)) < len(text.encode())


def test_chat_template_renders_messages(tiny_model: ModelDir) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "image"}]},
    ]
    text = tiny_model.chat_template.render(messages)
    assert text == "<s><|system|>\nbe brief</s>\n<|user|>\nhello</s>\n<|assistant|>\n"
    without = tiny_model.chat_template.render(messages, add_generation_prompt=False)
    assert without == text.removesuffix("<|assistant|>\n")
    ids = tiny_model.encode_chat([{"role": "user", "content": "hello world"}])
    assert ids[0] == tiny_model.bos_token_id
    assert tiny_model.eos_token_ids[0] in ids
    assert tiny_model.tokenizer.decode(ids) == "<|user|>\nhello world\n<|assistant|>\n"


def test_chat_template_errors(tiny_model: ModelDir) -> None:
    with pytest.raises(ChatTemplateError, match="unknown role: robot"):
        tiny_model.chat_template.render([{"role": "robot", "content": "x"}])
    with pytest.raises(ChatTemplateError, match="does not compile"):
        ChatTemplate("{% if %}")


def test_chat_template_is_sandboxed() -> None:
    template = ChatTemplate("{{ messages.__class__.__mro__[1].__subclasses__() }}")
    with pytest.raises(ChatTemplateError, match="failed to render"):
        template.render([])
    template = ChatTemplate("{% for m in messages %}{{ m.update({'role': 'x'}) }}{% endfor %}")
    with pytest.raises(ChatTemplateError, match="failed to render"):
        template.render([{"role": "user", "content": "x"}])
