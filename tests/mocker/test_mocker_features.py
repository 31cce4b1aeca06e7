"""The reference over HTTP (two echo workers, ``--router-mode kv``, in-process): incremental
detokenization, several choices, batched prompts, log probabilities and KV-aware routing.
Every body and stream validates against the contracts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from reference_helpers import reference

from dynconform.contracts import Validator
from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker import EngineConfig, load_model_dir
from dynconform.mocker.detokenizer import REPLACEMENT
from dynconform.mocker.frontend import Frontend, FrontendConfig
from dynconform.mocker.worker import Worker, WorkerConfig
from dynconform.services import Services

#: Echo mode: a worker answers with the prompt's own tokens, so the text is predictable.
ENGINE = EngineConfig(block_size=4, num_gpu_blocks=128, speedup_ratio=0, output_mode="echo")
MULTIBYTE = "héllo wörld ✓ 日本語 😀 naïve café"
LONG = "the quick brown fox jumps over the lazy dog and kv cache blocks are hashed and stored"
UNRELATED = "0 1 2 3 4 5 6 7 8 9 10 16 32 64 128 256 512 1024 2048 4096 numbers only"
CHAT_MULTIBYTE = [{"role": "user", "content": MULTIBYTE}]
BATCH = ["hello there", "the quick brown fox"]


@dataclass
class Run:
    """What the scenario's requests got back."""

    http: dict[str, tuple[int, str]] = field(default_factory=dict)
    workers: list[int] = field(default_factory=list)
    prompt_ids: dict[str, list[int]] = field(default_factory=dict)
    index_blocks: dict[int, frozenset[int]] = field(default_factory=dict)
    block_size: int = 0
    #: what echo workers answer to the batch's prompts (4 tokens each)
    batch_texts: list[str] = field(default_factory=list)
    batch_ids: list[list[int]] = field(default_factory=list)


async def _post(
    session: aiohttp.ClientSession, frontend: Frontend, path: str, body: Any
) -> tuple[int, str]:
    async with session.post(frontend.url + path, json=body) as response:
        return response.status, await response.text()


async def _wait_for_blocks(frontend: Frontend, worker: int, hashes: list[int]) -> None:
    deadline = time.monotonic() + 10
    while frontend.router.index.overlap(worker, hashes) < len(hashes):
        assert time.monotonic() < deadline, "the frontend never saw the worker's kv-events"
        await asyncio.sleep(0.02)


async def _scenario(tmp: Path, model: Path) -> Run:
    run = Run(block_size=ENGINE.block_size)
    tokenizer = load_model_dir(model).tokenizer
    for name, text in (("multibyte", MULTIBYTE), ("long", LONG), ("unrelated", UNRELATED)):
        run.prompt_ids[name] = tokenizer.encode(text)
    run.prompt_ids["chat"] = load_model_dir(model).encode_chat(CHAT_MULTIBYTE)
    run.batch_ids = [tokenizer.encode(prompt) for prompt in BATCH]
    # echo repeats the prompt for as long as max_tokens asks
    run.batch_texts = [
        tokenizer.decode([ids[i % len(ids)] for i in range(4)]) for ids in run.batch_ids
    ]
    configs = [
        WorkerConfig(model_path=model, file_kv=tmp / "kv", engine=ENGINE, heartbeat_s=0.2)
        for _ in range(2)
    ]
    frontend_config = FrontendConfig(
        port=0, file_kv=tmp / "kv", wait_for_instances=2, poll_interval=0.2, router_mode="kv"
    )
    async with contextlib.AsyncExitStack() as stack:
        workers = [await stack.enter_async_context(Worker(c)) for c in configs]
        run.workers = sorted(w.instance_id for w in workers)
        frontend = await stack.enter_async_context(Frontend(frontend_config))
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def post(name: str, path: str, body: Any) -> None:
            run.http[name] = await _post(session, frontend, path, body)

        chat, cmpl = "/v1/chat/completions", "/v1/completions"
        multibyte = {"model": "tiny", "max_tokens": len(run.prompt_ids["multibyte"])}
        await post("multibyte", cmpl, multibyte | {"prompt": MULTIBYTE})
        await post("multibyte_stream", cmpl, multibyte | {"prompt": MULTIBYTE, "stream": True})
        chat_body = {"model": "tiny", "messages": CHAT_MULTIBYTE}
        chat_body["max_tokens"] = len(run.prompt_ids["chat"])
        await post("chat_multibyte", chat, chat_body)
        await post("chat_multibyte_stream", chat, chat_body | {"stream": True})

        usage = {"stream_options": {"include_usage": True}}
        choices = {"model": "tiny", "max_tokens": 3, "n": 2, "temperature": 1.0}
        await post("chat_n", chat, choices | {"messages": [{"role": "user", "content": "hi"}]})
        await post(
            "chat_n_stream",
            chat,
            choices | usage | {"messages": [{"role": "user", "content": "hi"}], "stream": True},
        )
        await post("cmpl_n", cmpl, choices | {"prompt": "hello there", "n": 3})
        batch = {"model": "tiny", "prompt": BATCH, "max_tokens": 4}
        await post("batch", cmpl, batch)
        await post("batch_ids", cmpl, batch | {"prompt": [[5, 6, 7, 8], [9, 10, 11]]})
        await post("batch_stream", cmpl, batch | usage | {"stream": True})
        await post("batch_n", cmpl, batch | {"n": 2, "temperature": 0.7})

        lp_chat = {"model": "tiny", "messages": [{"role": "user", "content": "hi"}]}
        lp_chat |= {"max_tokens": 4, "logprobs": True, "top_logprobs": 2}
        await post("chat_logprobs", chat, lp_chat)
        await post("chat_logprobs_again", chat, lp_chat)
        await post("chat_logprobs_stream", chat, lp_chat | {"stream": True})
        lp_cmpl = {"model": "tiny", "prompt": "hello there", "max_tokens": 4, "logprobs": 2}
        await post("cmpl_logprobs", cmpl, lp_cmpl)
        await post("cmpl_logprobs_stream", cmpl, lp_cmpl | {"stream": True})
        await post("cmpl_logprobs_zero", cmpl, lp_cmpl | {"logprobs": 0})

        # KV-aware routing: the long prompt goes to the higher id (pinned), its blocks reach
        # the frontend through the worker's kv-events, and a request sharing the prefix
        # follows them there; an unrelated prompt ties and goes to the lower id.
        worker_id = {"extra_fields": ["worker_id"]}
        high = run.workers[1]
        kv = {"model": "tiny", "max_tokens": 2}
        pinned = {"backend_instance_id": high} | worker_id
        await post("kv_first", cmpl, kv | {"prompt": LONG, "nvext": pinned})
        hashes = [h for h, _ in chain_hashes(run.prompt_ids["long"], ENGINE.block_size)]
        await _wait_for_blocks(frontend, high, hashes)
        await post("kv_prefix", cmpl, kv | {"prompt": LONG + " again", "nvext": worker_id})
        await post("kv_unrelated", cmpl, kv | {"prompt": UNRELATED, "nvext": worker_id})
        stream = kv | {"prompt": LONG, "stream": True, "nvext": worker_id} | usage
        await post("kv_stream", cmpl, stream)
        await post("kv_unknown", cmpl, kv | {"prompt": LONG, "nvext": {"backend_instance_id": 7}})
        run.index_blocks = {w: frontend.router.index.blocks(w) for w in run.workers}
    return run


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_model_path: Path) -> Run:
    return asyncio.run(_scenario(tmp_path_factory.mktemp("features"), tiny_model_path))


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator()


def _body(run: Run, name: str, validator: Validator, contract: str) -> dict[str, Any]:
    status, text = run.http[name]
    assert status == 200, text
    body: dict[str, Any] = json.loads(text)
    report = validator.validate(contract, body)
    assert report.ok, [str(v) for v in report.violations[:5]]
    return body


def _chunks(run: Run, name: str, validator: Validator) -> list[dict[str, Any]]:
    status, text = run.http[name]
    assert status == 200, text
    report = validator.validate("http.sse-stream", text)
    assert report.ok, [str(v) for v in report.violations[:5]]
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: {")]


def _streamed_text(chunks: list[dict[str, Any]]) -> dict[int, list[str]]:
    pieces: dict[int, list[str]] = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            text = choice["delta"].get("content") if "delta" in choice else choice["text"]
            pieces.setdefault(choice["index"], []).append(text or "")
    return pieces


# -- incremental detokenization -----------------------------------------------------------------


def test_streamed_multibyte_text_equals_the_whole_text(run: Run, validator: Validator) -> None:
    whole = _body(run, "multibyte", validator, "http.completion")["choices"][0]["text"]
    assert whole == MULTIBYTE  # echo: the prompt's tokens back
    (deltas,) = _streamed_text(_chunks(run, "multibyte_stream", validator)).values()
    assert "".join(deltas) == whole
    assert [d for d in deltas if REPLACEMENT in d] == []
    assert len([d for d in deltas if d]) > 10  # streamed piece by piece, not all at the end


def test_chat_streams_multibyte_text_whole(run: Run, validator: Validator) -> None:
    body = _body(run, "chat_multibyte", validator, "http.chat-completion")
    whole = body["choices"][0]["message"]["content"]
    assert MULTIBYTE in whole
    (deltas,) = _streamed_text(_chunks(run, "chat_multibyte_stream", validator)).values()
    assert "".join(deltas) == whole
    assert [d for d in deltas if REPLACEMENT in d] == []


# -- several choices and batched prompts --------------------------------------------------------


def test_chat_answers_n_choices(run: Run, validator: Validator) -> None:
    body = _body(run, "chat_n", validator, "http.chat-completion")
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]
    usage = body["usage"]
    assert usage["completion_tokens"] == 2 * 3
    assert usage["total_tokens"] == usage["prompt_tokens"] + 6


def test_chat_streams_n_choices(run: Run, validator: Validator) -> None:
    chunks = _chunks(run, "chat_n_stream", validator)
    finishes = [
        (c["index"], c["finish_reason"])
        for chunk in chunks
        for c in chunk["choices"]
        if c["finish_reason"]
    ]
    assert sorted(finishes) == [(0, "length"), (1, "length")]
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 6
    whole = _body(run, "chat_n", validator, "http.chat-completion")
    streamed = {i: "".join(p) for i, p in _streamed_text(chunks[:-1]).items()}
    assert streamed == {c["index"]: c["message"]["content"] for c in whole["choices"]}


def test_completions_answer_n_choices(run: Run, validator: Validator) -> None:
    body = _body(run, "cmpl_n", validator, "http.completion")
    assert [c["index"] for c in body["choices"]] == [0, 1, 2]
    assert body["usage"]["completion_tokens"] == 3 * 3


def test_a_batch_answers_one_choice_per_prompt(run: Run, validator: Validator) -> None:
    body = _body(run, "batch", validator, "http.completion")
    assert [c["index"] for c in body["choices"]] == [0, 1]
    assert [c["text"] for c in body["choices"]] == run.batch_texts
    assert [c["finish_reason"] for c in body["choices"]] == ["length", "length"]
    usage = body["usage"]
    assert usage["completion_tokens"] == 2 * 4
    assert usage["prompt_tokens"] == sum(len(p) for p in run.batch_ids)
    assert usage["total_tokens"] == usage["prompt_tokens"] + 8
    ids = _body(run, "batch_ids", validator, "http.completion")
    assert [c["index"] for c in ids["choices"]] == [0, 1]
    assert ids["usage"]["prompt_tokens"] == 4 + 3
    assert ids["usage"]["completion_tokens"] == 2 * 4


def test_a_streamed_batch_matches_the_whole_batch(run: Run, validator: Validator) -> None:
    chunks = _chunks(run, "batch_stream", validator)
    assert len({chunk["id"] for chunk in chunks}) == 1
    whole = _body(run, "batch", validator, "http.completion")
    streamed = {i: "".join(p) for i, p in _streamed_text(chunks[:-1]).items()}
    assert streamed == {c["index"]: c["text"] for c in whole["choices"]}
    assert chunks[-1]["usage"]["prompt_tokens"] == whole["usage"]["prompt_tokens"]


def test_a_batch_of_n_choices_numbers_them_prompt_by_prompt(run: Run, validator: Validator) -> None:
    body = _body(run, "batch_n", validator, "http.completion")
    single = _body(run, "batch", validator, "http.completion")["choices"]
    assert [c["index"] for c in body["choices"]] == [0, 1, 2, 3]
    # echo: both choices of a prompt repeat it; choice 2p and 2p+1 belong to prompt p
    assert [c["text"] for c in body["choices"]] == [
        single[0]["text"],
        single[0]["text"],
        single[1]["text"],
        single[1]["text"],
    ]
    assert body["usage"]["completion_tokens"] == 4 * 4


# -- log probabilities --------------------------------------------------------------------------


def test_chat_logprobs_are_seeded_and_complete(run: Run, validator: Validator) -> None:
    body = _body(run, "chat_logprobs", validator, "http.chat-completion")
    again = _body(run, "chat_logprobs_again", validator, "http.chat-completion")
    logprobs = body["choices"][0]["logprobs"]
    assert logprobs == again["choices"][0]["logprobs"]
    assert logprobs["refusal"] is None
    entries = logprobs["content"]
    assert len(entries) == body["usage"]["completion_tokens"] == 4
    for entry in entries:
        assert entry["logprob"] < 0
        assert entry["bytes"] == (list(entry["token"].encode()) or None)  # null: special
        alternatives = entry["top_logprobs"]
        assert 2 <= len(alternatives) <= 3  # the worker's two, then the token if not among them
        assert any(a["logprob"] == entry["logprob"] for a in alternatives)  # the token itself
    chunks = _chunks(run, "chat_logprobs_stream", validator)
    streamed = [e for chunk in chunks for c in chunk["choices"] for e in c["logprobs"]["content"]]
    assert streamed == entries


def test_completion_logprobs(run: Run, validator: Validator) -> None:
    body = _body(run, "cmpl_logprobs", validator, "http.completion")
    (choice,) = body["choices"]
    logprobs = choice["logprobs"]
    assert "".join(logprobs["tokens"]) == choice["text"]
    assert len(logprobs["token_logprobs"]) == len(logprobs["top_logprobs"]) == 4
    for token, top in zip(logprobs["tokens"], logprobs["top_logprobs"], strict=True):
        assert token in top
        assert 2 <= len(top) <= 3
    chunks = _chunks(run, "cmpl_logprobs_stream", validator)
    streamed = [t for chunk in chunks for c in chunk["choices"] for t in c["logprobs"]["tokens"]]
    assert streamed == logprobs["tokens"]
    zero = _body(run, "cmpl_logprobs_zero", validator, "http.completion")["choices"][0]
    assert [list(top) for top in zero["logprobs"]["top_logprobs"]] == [
        [t] for t in zero["logprobs"]["tokens"]
    ]


# -- KV-aware routing -------------------------------------------------------------------------


def _worker(body: dict[str, Any]) -> int:
    ids = body["nvext"]["worker_id"]
    assert ids["prefill_worker_id"] == ids["decode_worker_id"]
    assert ids["prefill_dp_rank"] == ids["decode_dp_rank"] == 0
    return int(ids["decode_worker_id"])


def test_the_frontend_follows_the_workers_kv_events(run: Run) -> None:
    low, high = run.workers
    long = {h for h, _ in chain_hashes(run.prompt_ids["long"], run.block_size)}
    assert long <= run.index_blocks[high]
    assert not long & run.index_blocks[low]


def test_a_shared_prefix_goes_where_its_blocks_are(run: Run, validator: Validator) -> None:
    low, high = run.workers
    first = _body(run, "kv_first", validator, "http.completion")
    assert _worker(first) == high  # pinned by nvext.backend_instance_id
    prefix = _body(run, "kv_prefix", validator, "http.completion")
    assert _worker(prefix) == high  # not the tie-break's choice: the cached blocks decide
    assert prefix["usage"]["prompt_tokens_details"]["cached_tokens"] >= 16
    unrelated = _body(run, "kv_unrelated", validator, "http.completion")
    assert _worker(unrelated) == low  # nothing cached anywhere: a tie, the lower id
    assert unrelated["usage"]["prompt_tokens_details"]["cached_tokens"] == 0


def test_streamed_chunks_name_the_worker(run: Run, validator: Validator) -> None:
    chunks = _chunks(run, "kv_stream", validator)
    high = run.workers[1]
    assert [_worker(chunk) for chunk in chunks[:-1]] == [high] * (len(chunks) - 1)
    assert "nvext" not in chunks[-1]  # the usage chunk


def test_an_unknown_backend_instance_is_refused(run: Run, validator: Validator) -> None:
    status, text = run.http["kv_unknown"]
    assert status == 400
    body = json.loads(text)
    assert validator.validate("http.error", body).ok
    assert body["message"] == "Invalid request"


@pytest.mark.slow
def test_kv_mode_follows_kv_events_over_nats(tmp_path: Path, tiny_model_path: Path) -> None:
    with Services(nats=True, workdir=tmp_path / "services") as services:
        url = services.url("nats")

        async def main() -> None:
            frontend = {"router_mode": "kv", "nats_url": url}
            async with reference(
                tmp_path,
                tiny_model_path,
                event_plane="nats",
                nats_url=url,
                frontend_options=frontend,
            ) as ref:
                body = {"model": "tiny", "prompt": LONG, "max_tokens": 2}
                status, _ = await ref.post("/v1/completions", body)
                assert status == 200
                ids = load_model_dir(tiny_model_path).tokenizer.encode(LONG)
                block_size = ref.worker.config.engine.block_size
                hashes = [h for h, _ in chain_hashes(ids, block_size)]
                await _wait_for_blocks(ref.frontend, ref.worker.instance_id, hashes)
                kv_events = ref.frontend.kv_events
                assert kv_events is not None
                assert any(s.endswith(".kv-events") for s in kv_events.subscribed)
                # the worker leaves: its subject is unsubscribed and its blocks forgotten
                await ref.worker.stop()
                deadline = time.monotonic() + 10
                while kv_events.following or ref.frontend.router.index.blocks(
                    ref.worker.instance_id
                ):
                    assert time.monotonic() < deadline, "the frontend kept the worker that left"
                    await asyncio.sleep(0.05)
                assert not kv_events.subscribed

        asyncio.run(main())


def test_kv_mode_forgets_a_worker_that_left(tmp_path: Path, tiny_model_path: Path) -> None:
    """When a worker's records leave discovery, the frontend drops its blocks from the index
    and stops following its kv-events channel."""

    async def main() -> None:
        options = {"router_mode": "kv", "poll_interval": 0.1}
        async with reference(tmp_path, tiny_model_path, frontend_options=options) as ref:
            body = {"model": "tiny", "prompt": LONG, "max_tokens": 2}
            status, _ = await ref.post("/v1/completions", body)
            assert status == 200
            ids = load_model_dir(tiny_model_path).tokenizer.encode(LONG)
            hashes = [h for h, _ in chain_hashes(ids, ref.worker.config.engine.block_size)]
            worker = ref.worker.instance_id
            await _wait_for_blocks(ref.frontend, worker, hashes)
            kv_events = ref.frontend.kv_events
            assert kv_events is not None
            assert len(kv_events.following) == 1
            await ref.worker.stop()  # deregisters
            deadline = time.monotonic() + 10
            while ref.frontend.router.index.blocks(worker) or kv_events.following:
                assert time.monotonic() < deadline, "the frontend kept the worker that left"
                await asyncio.sleep(0.05)

    asyncio.run(main())
