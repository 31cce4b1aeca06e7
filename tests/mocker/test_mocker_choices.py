"""Several choices (``n``), log probabilities and batched prompts: the engine, the worker's
outputs and the frontend's OpenAI responses built from them."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest

from dynconform.contracts import Validator
from dynconform.mocker import (
    EngineConfig,
    EngineOutput,
    FinishReason,
    GenerateRequest,
    MockEngine,
    ModelDir,
    RequestError,
    TokenLogprob,
)
from dynconform.mocker.logprobs import engine_fields
from dynconform.mocker.openai import (
    ApiError,
    Completion,
    prompt_token_lists,
    requested_logprobs,
    validate_request,
)

FAST = EngineConfig(speedup_ratio=0, block_size=4, num_gpu_blocks=256)
PROMPT = tuple(range(10, 30))


def _collect(
    model: ModelDir, *requests: GenerateRequest, config: EngineConfig = FAST
) -> list[list[EngineOutput]]:
    async def run() -> list[list[EngineOutput]]:
        async with MockEngine.from_model_dir(model, config) as engine:
            results = []
            for request in requests:
                results.append([o async for o in engine.generate(request)])
            return results

    return asyncio.run(run())


def _by_choice(outputs: list[EngineOutput]) -> dict[int, list[int]]:
    tokens: dict[int, list[int]] = {}
    for output in outputs:
        tokens.setdefault(output.index, []).extend(output.token_ids)
    return tokens


# -- the engine ---------------------------------------------------------------------------------


def test_n_choices_stream_with_their_index_and_each_finishes(tiny_model: ModelDir) -> None:
    single, triple = _collect(
        tiny_model,
        GenerateRequest("one", PROMPT, max_tokens=6),
        GenerateRequest("three", PROMPT, max_tokens=6, n=3),
    )
    tokens = _by_choice(triple)
    assert sorted(tokens) == [0, 1, 2]
    assert all(len(t) == 6 for t in tokens.values())
    assert tokens[0] == _by_choice(single)[0]  # choice 0 is what n=1 gives
    assert len({tuple(t) for t in tokens.values()}) == 3  # the choices differ
    finished = [o for o in triple if o.finished]
    assert sorted(o.index for o in finished) == [0, 1, 2]
    assert {o.request_id for o in triple} == {"three"}
    assert all(o.usage is not None and o.usage.completion_tokens == 6 for o in finished)


def test_n_choices_share_the_cached_prompt(tiny_model: ModelDir) -> None:
    (outputs,) = _collect(tiny_model, GenerateRequest("r", PROMPT, max_tokens=2, n=2))
    cached = sorted(o.usage.cached_tokens for o in outputs if o.usage is not None)
    assert cached == [0, 16]  # the second choice reuses the first one's prompt blocks


def test_a_seed_makes_choices_repeatable(tiny_model: ModelDir) -> None:
    a, b, c = _collect(
        tiny_model,
        GenerateRequest("a", PROMPT, max_tokens=5, n=2, seed=7),
        GenerateRequest("b", PROMPT, max_tokens=5, n=2, seed=7),
        GenerateRequest("c", PROMPT, max_tokens=5, n=2, seed=8),
    )
    assert _by_choice(a) == _by_choice(b) != _by_choice(c)


def test_aborting_a_request_ends_every_choice(tiny_model: ModelDir) -> None:
    async def run() -> list[EngineOutput]:
        config = EngineConfig(speedup_ratio=1000, block_size=4, num_gpu_blocks=256)
        async with MockEngine.from_model_dir(tiny_model, config) as engine:
            outputs = []
            async for output in engine.generate(GenerateRequest("r", PROMPT, n=2)):
                outputs.append(output)
                if len(outputs) == 2:
                    assert engine.abort("r")
            assert not engine.abort("r")
            assert not engine.scheduler.has_work
            return outputs

    outputs = asyncio.run(run())
    cancelled = [o for o in outputs if o.finish_reason is FinishReason.CANCELLED]
    assert sorted(o.index for o in cancelled) == [0, 1]


def test_requests_that_cannot_run_are_refused_whole(tiny_model: ModelDir) -> None:
    async def run() -> None:
        config = EngineConfig(speedup_ratio=0, block_size=4, num_gpu_blocks=8)
        async with MockEngine.from_model_dir(tiny_model, config) as engine:
            with pytest.raises(RequestError, match="n must be at least 1"):
                engine.submit(GenerateRequest("zero", PROMPT, n=0))
            engine.submit(GenerateRequest("dup", PROMPT[:4], max_tokens=1, n=2))
            with pytest.raises(RequestError, match="already active"):
                engine.submit(GenerateRequest("dup", PROMPT[:4], n=2))
            with pytest.raises(RequestError, match="KV blocks"):
                engine.submit(GenerateRequest("big", PROMPT, max_tokens=20, n=2))
            assert engine.scheduler.num_waiting == 2  # "big" left nothing behind

    asyncio.run(run())


def test_logprobs_are_seeded_plausible_and_leave_the_tokens_alone(tiny_model: ModelDir) -> None:
    plain, first, again = _collect(
        tiny_model,
        GenerateRequest("plain", PROMPT, max_tokens=8),
        GenerateRequest("lp", PROMPT, max_tokens=8, logprobs=3),
        GenerateRequest("lp2", PROMPT, max_tokens=8, logprobs=3),
    )
    assert _by_choice(plain) == _by_choice(first)
    assert all(o.logprobs is None for o in plain)
    entries = [entry for o in first for entry in o.logprobs or ()]
    assert [e.token_id for e in entries] == _by_choice(first)[0]
    assert entries == [entry for o in again for entry in o.logprobs or ()]
    for entry in entries:
        assert len(entry.top) == 3
        values = [lp for _, lp in entry.top]
        assert values == sorted(values, reverse=True)
        assert len({t for t, _ in entry.top}) == 3
        assert all(lp < 0 for lp in values)
        assert entry.logprob < 0
        mass = math.exp(entry.logprob) + sum(
            math.exp(lp) for t, lp in entry.top if t != entry.token_id
        )
        assert mass < 1.0
        if entry.token_id in dict(entry.top):
            assert dict(entry.top)[entry.token_id] == entry.logprob


def test_zero_logprobs_gives_the_tokens_own_only(tiny_model: ModelDir) -> None:
    (outputs,) = _collect(tiny_model, GenerateRequest("r", PROMPT, max_tokens=3, logprobs=0))
    entries = [entry for o in outputs for entry in o.logprobs or ()]
    assert len(entries) == 3
    assert all(entry.top == () for entry in entries)


def test_preprocessed_requests_carry_n_and_logprobs() -> None:
    body = {
        "token_ids": [1, 2, 3],
        "sampling_options": {"n": 4},
        "output_options": {"logprobs": 2},
    }
    request = GenerateRequest.from_preprocessed("r", body)
    assert (request.n, request.logprobs) == (4, 2)
    request = GenerateRequest.from_preprocessed("r", {"token_ids": [1]})
    assert (request.n, request.logprobs) == (1, None)


# -- the frontend's responses -----------------------------------------------------------------


def _item(
    token_ids: list[int],
    *,
    index: int | None = None,
    finish: str | None = None,
    cached: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    data: dict[str, Any] = {"token_ids": token_ids, "finish_reason": finish, "index": index}
    if cached is not None:
        data["completion_usage"] = {"prompt_tokens_details": {"cached_tokens": cached}}
    return {"data": data | extra}


def _completion(model: ModelDir, kind: str, **kwargs: Any) -> Completion:
    tokenizer = model.tokenizer
    return Completion(
        kind,  # type: ignore[arg-type]
        "tiny",
        kwargs.pop("prompt_tokens", 5),
        decode=tokenizer.decode,
        token_text=lambda t: tokenizer.decode([t], skip_special_tokens=False),
        **kwargs,
    )


def test_a_batch_with_n_choices_answers_in_index_order(tiny_model: ModelDir) -> None:
    hello = tiny_model.tokenizer.encode("hello")
    world = tiny_model.tokenizer.encode("world")
    completion = _completion(tiny_model, "completion", n=2, prompts=2, prompt_tokens=9)
    completion.apply(_item(world, index=1, finish="length", cached=4), prompt=1)
    completion.apply(_item(hello, index=0, finish="eos", cached=0), prompt=0)
    completion.apply(_item(hello, index=1, finish="length", cached=1), prompt=0)
    completion.apply(_item(world, index=0, finish="stop", cached=3), prompt=1)
    assert completion.finished
    body = completion.response()
    assert Validator().validate("http.completion", body).ok
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    assert [c["text"] for c in body["choices"]] == ["hello", "hello", "world", "world"]
    assert [c["finish_reason"] for c in body["choices"]] == ["stop", "length", "stop", "length"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == 9
    assert usage["completion_tokens"] == 2 * len(hello) + 2 * len(world)
    assert usage["total_tokens"] == 9 + usage["completion_tokens"]
    # the latest report per prompt, summed over the prompts
    assert usage["prompt_tokens_details"]["cached_tokens"] == 1 + 3


def test_chat_choices_stream_the_role_first_and_finish_once(tiny_model: ModelDir) -> None:
    ids = tiny_model.tokenizer.encode("日本")
    completion = _completion(tiny_model, "chat", n=2)
    chunks = []
    for i, token in enumerate(ids):
        finish = "length" if i == len(ids) - 1 else None
        for index in (1, 0):
            chunk = completion.update_chunk(
                completion.apply(_item([token], index=index, finish=finish))
            )
            if chunk is not None:
                chunks.append(chunk)
    text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
    report = Validator().validate("http.sse-stream", text)
    assert report.ok, [str(v) for v in report.violations]
    # the first chunk of each choice has the role even though its text is held back
    firsts = [c["choices"][0] for c in chunks[:2]]
    assert [(c["index"], c["delta"]) for c in firsts] == [
        (1, {"role": "assistant"}),
        (0, {"role": "assistant"}),
    ]
    content = {0: "", 1: ""}
    for chunk in chunks:
        choice = chunk["choices"][0]
        content[choice["index"]] += choice["delta"].get("content", "")
    assert content == {0: "日本", 1: "日本"}
    assert completion.response()["choices"][1]["message"]["content"] == "日本"


def test_logprobs_take_the_shapes_ai_dynamo_writes(tiny_model: ModelDir) -> None:
    tokenizer = tiny_model.tokenizer
    hello = tokenizer.encode("hello")[0]
    other = tokenizer.encode("x")[0]
    fields = engine_fields(
        [TokenLogprob(hello, -0.25, ((other, -0.1234567891),))], lambda t: tokenizer.decode([t])
    )
    chat = _completion(tiny_model, "chat", logprobs=True)
    chat.apply(_item([hello], finish="length", **fields))
    (choice,) = chat.response()["choices"]
    (entry,) = choice["logprobs"]["content"]
    assert entry == {
        "token": "hello",
        "logprob": -0.25,
        "token_id": hello,
        "bytes": list(b"hello"),
        "top_logprobs": [
            {"token": "x", "logprob": -0.12345679, "bytes": [120]},  # f32, printed short
            {"token": "hello", "logprob": -0.25, "bytes": list(b"hello")},  # the token itself
        ],
    }
    assert choice["logprobs"]["refusal"] is None
    legacy = _completion(tiny_model, "completion", logprobs=True)
    legacy.apply(_item([hello], finish="length", **fields))
    (choice,) = legacy.response()["choices"]
    assert list(choice) == ["text", "index", "logprobs", "finish_reason"]
    assert choice["logprobs"] == {
        "tokens": ["hello"],
        "token_logprobs": [-0.25],
        "top_logprobs": [{"x": -0.12345679104328156, "hello": -0.25}],
        "text_offset": [],
    }
    without = _completion(tiny_model, "completion")
    without.apply(_item([hello], finish="length", **fields))
    assert "logprobs" not in without.response()["choices"][0]


@pytest.mark.parametrize(
    ("kind", "body", "expected"),
    [
        ("chat", {"logprobs": True, "top_logprobs": 3}, 3),
        ("chat", {"logprobs": True}, 1),
        ("chat", {"top_logprobs": 3}, None),
        ("chat", {"logprobs": False, "top_logprobs": 3}, None),
        ("completion", {"logprobs": 0}, 0),
        ("completion", {"logprobs": 5}, 5),
        ("completion", {}, None),
    ],
)
def test_requested_logprobs(kind: str, body: dict[str, Any], expected: int | None) -> None:
    assert requested_logprobs(kind, body) == expected  # type: ignore[arg-type]


def test_prompts_of_a_batch() -> None:
    def encode(text: str) -> list[int]:
        return [ord(c) for c in text]

    assert prompt_token_lists("ab", encode) == [[97, 98]]
    assert prompt_token_lists([5, 6], encode) == [[5, 6]]
    assert prompt_token_lists(["ab", "c"], encode) == [[97, 98], [99]]
    assert prompt_token_lists([[5], [6, 7]], encode) == [[5], [6, 7]]


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("", "Validation: Prompt string cannot be empty"),
        ([], "Validation: Prompt string array cannot be empty"),
        (["a", ""], "Validation: Prompt string at index 1 cannot be empty"),
        ([[1], []], "Validation: Prompt integer array at index 1 cannot be empty"),
    ],
)
def test_empty_prompts_are_refused_as_ai_dynamo_does(prompt: Any, message: str) -> None:
    with pytest.raises(ApiError) as info:
        prompt_token_lists(prompt, lambda text: [1])
    assert (info.value.code, info.value.message) == (400, message)


DESERIALIZE = "Failed to deserialize the JSON body into the target type: "


@pytest.mark.parametrize(
    ("kind", "extra", "message"),
    [
        ("chat", {"n": 0}, "Validation: n must be between 1 and 128, got 0"),
        ("chat", {"n": 200}, "Validation: n must be between 1 and 128, got 200"),
        (
            "chat",
            {"n": 2, "temperature": 0},
            "Validation: When n > 1, temperature must be greater than 0 to ensure diverse "
            "outputs. Got n=2, temperature=0",
        ),
        ("chat", {"top_logprobs": 30}, "Validation: Top_logprobs must be between 0 and 20, got 30"),
        ("completion", {"logprobs": 6}, "Validation: Logprobs must be between 0 and 5, got 6"),
        (
            "completion",
            {"prompt": ["a", [5, 6]]},
            f"{DESERIALIZE}data did not match any variant of untagged enum Prompt",
        ),
    ],
)
def test_invalid_choices_and_logprobs_get_ai_dynamo_messages(
    kind: str, extra: dict[str, Any], message: str
) -> None:
    body: dict[str, Any] = {"model": "tiny", "max_tokens": 1}
    if kind == "chat":
        body["messages"] = [{"role": "user", "content": "x"}]
    else:
        body["prompt"] = "x"
    with pytest.raises(ApiError) as info:
        validate_request(Validator(), kind, body | extra)  # type: ignore[arg-type]
    assert (info.value.code, info.value.message) == (400, message)


def test_several_choices_with_a_temperature_are_valid() -> None:
    body = {"model": "tiny", "prompt": ["a", "b"], "n": 2, "temperature": 0.5, "logprobs": 0}
    validate_request(Validator(), "completion", body)
