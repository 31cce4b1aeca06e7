"""Incremental detokenization: deltas never split a character and add up to the whole text."""

from __future__ import annotations

import random

import pytest

from dynconform.mocker import IncrementalDetokenizer, ModelDir
from dynconform.mocker.detokenizer import REPLACEMENT

MULTIBYTE = "héllo wörld ✓ 日本語 😀 naïve café — ok"


def _deltas(model: ModelDir, ids: list[int], sizes: list[int]) -> list[str]:
    detokenizer = IncrementalDetokenizer(model.tokenizer.decode)
    out, start = [], 0
    for size in sizes:
        out.append(detokenizer.add(ids[start : start + size]))
        start += size
    out.append(detokenizer.flush())
    assert detokenizer.text == "".join(out)
    return out


def test_a_token_at_a_time_keeps_characters_whole(tiny_model: ModelDir) -> None:
    ids = tiny_model.tokenizer.encode(MULTIBYTE)
    # the byte-level tokens split characters: decoding them one by one shows U+FFFD
    assert any(REPLACEMENT in tiny_model.tokenizer.decode([i]) for i in ids)
    deltas = _deltas(tiny_model, ids, [1] * len(ids))
    assert "".join(deltas) == MULTIBYTE
    assert not [d for d in deltas if REPLACEMENT in d]
    assert "日" in deltas
    assert "😀" in deltas


def test_held_back_tokens_are_counted_and_flushed(tiny_model: ModelDir) -> None:
    ids = tiny_model.tokenizer.encode("日")
    assert len(ids) > 1
    detokenizer = IncrementalDetokenizer(tiny_model.tokenizer.decode)
    assert detokenizer.add(ids[:1]) == ""
    assert detokenizer.pending == 1
    # the output ends inside the character: flush shows what decoding everything shows
    assert detokenizer.flush() == tiny_model.tokenizer.decode(ids[:1]) == REPLACEMENT
    assert detokenizer.pending == 0
    assert detokenizer.flush() == ""
    assert detokenizer.add([]) == ""


@pytest.mark.parametrize("seed", range(3))
def test_any_chunking_of_any_tokens_adds_up_to_decoding_all(
    tiny_model: ModelDir, seed: int
) -> None:
    rng = random.Random(seed)
    tokenizer = tiny_model.tokenizer
    for _ in range(150):
        ids = [rng.randrange(tokenizer.vocab_size) for _ in range(rng.randrange(1, 25))]
        sizes = []
        while sum(sizes) < len(ids):
            sizes.append(rng.randrange(1, 4))
        assert "".join(_deltas(tiny_model, ids, sizes)) == tokenizer.decode(ids)
