"""The mock engine: scheduling, timing, finish reasons, usage, metrics and the asyncio API."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence

import pytest

from dynconform.contracts import Validator
from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker import (
    EngineClosedError,
    EngineConfig,
    EngineEvent,
    EngineOutput,
    FinishReason,
    ForwardPassMetrics,
    GenerateRequest,
    KvMetrics,
    KvRemoved,
    KvStored,
    MockEngine,
    ModelDir,
    PrefillCompleted,
    RequestError,
    Scheduler,
    TimingModel,
)

FAST = EngineConfig(speedup_ratio=0, block_size=16, num_gpu_blocks=256)


def _scheduler(
    config: EngineConfig = FAST, **kwargs: object
) -> tuple[Scheduler, list[EngineEvent]]:
    events: list[EngineEvent] = []
    return Scheduler(config, sink=events.append, **kwargs), events  # type: ignore[arg-type]


def _run(scheduler: Scheduler, limit: int = 10_000) -> dict[str, list[EngineOutput]]:
    outputs: dict[str, list[EngineOutput]] = {}
    for _ in range(limit):
        if not scheduler.has_work:
            return outputs
        _, chunk = scheduler.step()
        for output in chunk:
            outputs.setdefault(output.request_id, []).append(output)
    raise AssertionError("the scheduler did not finish")


def _tokens(outputs: Sequence[EngineOutput]) -> list[int]:
    return [t for o in outputs for t in o.token_ids]


def _of(events: list[EngineEvent], kind: type) -> list:  # type: ignore[type-arg]
    return [e for e in events if isinstance(e, kind)]


def _req(
    rid: str, tokens: Sequence[int], max_tokens: int | None = 8, **kw: object
) -> GenerateRequest:
    return GenerateRequest(rid, tuple(tokens), max_tokens, **kw)  # type: ignore[arg-type]


# -- asyncio engine ------------------------------------------------------------------------


def test_end_to_end_chat_with_speedup_zero(tiny_model: ModelDir) -> None:
    events: list[EngineEvent] = []
    prompt = tuple(tiny_model.encode_chat([{"role": "user", "content": "hello world " * 6}]))

    async def main() -> list[EngineOutput]:
        engine = MockEngine.from_model_dir(tiny_model, FAST, sink=events.append)
        async with engine:
            return [o async for o in engine.generate(GenerateRequest("r1", prompt, 40))]

    chunks = asyncio.run(main())
    assert [len(c.token_ids) for c in chunks] == [1] * 40
    assert all(c.finish_reason is None for c in chunks[:-1])
    last = chunks[-1]
    assert last.finish_reason is FinishReason.LENGTH
    assert last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (len(prompt), 40)
    assert (last.usage.cached_tokens, last.usage.total_tokens) == (0, len(prompt) + 40)
    generated = _tokens(chunks)
    special = tiny_model.tokenizer.special_token_ids
    assert all(0 <= t < tiny_model.vocab_size and t not in special for t in generated)
    assert isinstance(tiny_model.tokenizer.decode(generated), str)

    fpms = _of(events, ForwardPassMetrics)
    assert [m.counter_id for m in fpms] == list(range(1, len(fpms) + 1))
    assert fpms[0].scheduled.num_prefill_requests == 0  # the start-up heartbeat
    assert fpms[1].scheduled.sum_prefill_tokens == len(prompt)
    assert [m.scheduled.sum_decode_kv_tokens for m in fpms[2:]] == [
        len(prompt) + i for i in range(1, 40)
    ]
    assert _of(events, PrefillCompleted) == [PrefillCompleted("r1")]
    assert _of(events, KvMetrics)[0] == KvMetrics(0)
    assert _of(events, KvMetrics)[-1] == KvMetrics(0)
    stored = [(b.block_hash, b.tokens_hash) for e in _of(events, KvStored) for b in e.blocks]
    assert stored == chain_hashes([*prompt, *generated[:-1]], 16)


def test_runs_are_deterministic(tiny_model: ModelDir) -> None:
    def run() -> tuple[list[EngineOutput], list[EngineEvent]]:
        scheduler, events = _scheduler(
            EngineConfig(speedup_ratio=0, num_gpu_blocks=20),
            vocab_size=tiny_model.vocab_size,
            special_token_ids=tiny_model.tokenizer.special_token_ids,
        )
        for i in range(6):
            scheduler.add(_req(f"r{i}", range(i, 60 + 7 * i), 30))
        outputs = _run(scheduler)
        return [o for rid in sorted(outputs) for o in outputs[rid]], events

    assert run() == run()


def test_seed_picks_the_random_tokens() -> None:
    scheduler, _ = _scheduler()
    for rid, seed in (("a", 1), ("b", 1), ("c", 2)):
        scheduler.add(_req(rid, [5, 6, 7], 20, seed=seed))
    outputs = _run(scheduler)
    assert _tokens(outputs["a"]) == _tokens(outputs["b"]) != _tokens(outputs["c"])


def test_timing_follows_the_speedup_ratio() -> None:
    timing = TimingModel()
    config = EngineConfig(speedup_ratio=4, decode_speedup_ratio=2)
    expected = (timing.prefill_seconds(100) + timing.decode_seconds(3, 600) / 2) / 4
    assert math.isclose(config.pass_seconds(100, 3, 600), expected)
    assert config.pass_seconds(0, 0, 0) == 0.0
    assert EngineConfig(speedup_ratio=0).pass_seconds(100, 3, 600) == 0.0

    events: list[EngineEvent] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        async with MockEngine(EngineConfig(speedup_ratio=10), sink=events.append) as engine:
            started = loop.time()
            await engine.complete(_req("r", range(20), 4))
            return loop.time() - started

    elapsed = asyncio.run(main())
    passes = [m for m in _of(events, ForwardPassMetrics) if m.wall_time > 0]
    assert len(passes) == 4
    assert passes[0].wall_time == EngineConfig(speedup_ratio=10).pass_seconds(20, 0, 0)
    assert elapsed >= 0.9 * sum(m.wall_time for m in passes)


def test_leaving_the_stream_early_aborts_the_request() -> None:
    async def main() -> tuple[int, int]:
        async with MockEngine(FAST) as engine:
            stream = engine.generate(_req("r", range(40), 100))
            async with contextlib.aclosing(stream):
                async for _ in stream:
                    break
            return engine.scheduler.num_running, engine.kv.used_blocks

    assert asyncio.run(main()) == (0, 0)


def test_abort_and_close_end_streams_with_cancelled() -> None:
    async def main() -> tuple[EngineOutput, EngineOutput, bool]:
        engine = MockEngine(EngineConfig(speedup_ratio=0.001))  # slow passes
        await engine.start()
        first = asyncio.create_task(engine.complete(_req("a", range(10), 50)))
        second = asyncio.create_task(engine.complete(_req("b", range(10), 50)))
        await asyncio.sleep(0)
        assert engine.abort("a")
        assert not engine.abort("a")
        await engine.aclose()
        return await first, await second, engine.running

    aborted, closed, running = asyncio.run(main())
    assert aborted.finish_reason is FinishReason.CANCELLED
    assert closed.finish_reason is FinishReason.CANCELLED
    assert not running


def test_closed_engine_takes_no_requests() -> None:
    async def main() -> None:
        engine = MockEngine(FAST)
        await engine.aclose()
        with pytest.raises(EngineClosedError):
            engine.submit(_req("r", [1, 2, 3]))
        with pytest.raises(EngineClosedError):
            await engine.start()

    asyncio.run(main())


def test_a_failing_loop_ends_every_stream_with_an_error() -> None:
    def sink(event: EngineEvent) -> None:
        if isinstance(event, PrefillCompleted):
            raise RuntimeError("sink broke")

    async def main() -> EngineOutput:
        async with MockEngine(FAST, sink=sink) as engine:
            output = await engine.complete(_req("r", range(10), 5))
            with pytest.raises(EngineClosedError, match="sink broke"):
                engine.submit(_req("s", range(10), 5))
            return output

    output = asyncio.run(main())
    assert output.finish_reason is FinishReason.ERROR
    assert output.error == "the engine failed: sink broke"


def test_engine_rejects_bad_requests_before_queueing() -> None:
    async def main() -> None:
        async with MockEngine(FAST) as engine:
            with pytest.raises(RequestError, match="no tokens"):
                await engine.complete(_req("r", []))
            assert not engine.scheduler.has_work

    asyncio.run(main())


# -- finish reasons and usage ----------------------------------------------------------------


def test_echo_mode_repeats_the_prompt() -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, output_mode="echo"))
    scheduler.add(_req("r", [5, 6, 7], 7))
    outputs = _run(scheduler)["r"]
    assert _tokens(outputs) == [5, 6, 7, 5, 6, 7, 5]
    assert outputs[-1].finish_reason is FinishReason.LENGTH


@pytest.mark.parametrize(
    ("kwargs", "tokens", "reason", "stop_reason"),
    [
        ({"eos_token_ids": (2,)}, [5, 2], FinishReason.EOS, 2),
        (
            {"eos_token_ids": (2,), "ignore_eos": True},
            [5, 2, 6, 5, 2, 6],
            FinishReason.LENGTH,
            None,
        ),
        ({"eos_token_ids": (2,), "min_tokens": 3}, [5, 2, 6, 5, 2], FinishReason.EOS, 2),
        ({"stop_token_ids": (6,)}, [5, 2, 6], FinishReason.STOP, 6),
        ({"stop_token_ids": (6,), "eos_token_ids": (2,)}, [5, 2], FinishReason.EOS, 2),
    ],
)
def test_finish_reasons(
    kwargs: dict[str, object], tokens: list[int], reason: FinishReason, stop_reason: int | None
) -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, output_mode="echo"))
    scheduler.add(_req("r", [5, 2, 6], 6, **kwargs))
    outputs = _run(scheduler)["r"]
    assert _tokens(outputs) == tokens
    last = outputs[-1]
    assert (last.finish_reason, last.stop_reason) == (reason, stop_reason)
    assert last.usage is not None
    assert last.usage.completion_tokens == len(tokens)


def test_stop_strings_need_and_use_the_tokenizer(tiny_model: ModelDir) -> None:
    prompt = tiny_model.tokenizer.encode("say hello world again")
    bare, _ = _scheduler(EngineConfig(speedup_ratio=0, output_mode="echo"))
    with pytest.raises(RequestError, match="stop strings"):
        bare.add(_req("r", prompt, 20, stop=("world",)))
    scheduler, _ = _scheduler(
        EngineConfig(speedup_ratio=0, output_mode="echo"), detokenize=tiny_model.tokenizer.decode
    )
    scheduler.add(_req("r", prompt, 20, stop=("xyz", "world")))
    outputs = _run(scheduler)["r"]
    assert "world" in tiny_model.tokenizer.decode(_tokens(outputs))
    assert "world" not in tiny_model.tokenizer.decode(_tokens(outputs)[:-1])
    assert (outputs[-1].finish_reason, outputs[-1].stop_reason) == (FinishReason.STOP, "world")


def test_context_length_limits_generation() -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, max_model_len=10))
    scheduler.add(_req("a", range(6), None))
    scheduler.add(_req("b", range(6), 2))
    outputs = _run(scheduler)
    assert len(_tokens(outputs["a"])) == 4
    assert len(_tokens(outputs["b"])) == 2
    assert outputs["a"][-1].finish_reason is FinishReason.LENGTH
    with pytest.raises(RequestError, match="context length is 10"):
        scheduler.add(_req("c", range(10)))


def test_default_max_tokens() -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, default_max_tokens=5))
    scheduler.add(_req("a", range(6), None))
    assert len(_tokens(_run(scheduler)["a"])) == 5


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (_req("r", []), "no tokens"),
        (_req("r", [1, -1]), "unsigned 32-bit"),
        (_req("r", [2**32]), "unsigned 32-bit"),
        (_req("r", [1], 0), "max_tokens must be at least 1"),
        (_req("r", range(100), 20), "needs 8 KV blocks; the cache has 4"),
    ],
)
def test_requests_that_can_never_be_served(request_: GenerateRequest, message: str) -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, num_gpu_blocks=4))
    with pytest.raises(RequestError, match=message):
        scheduler.add(request_)
    assert not scheduler.has_work


def test_duplicate_request_id() -> None:
    scheduler, _ = _scheduler()
    scheduler.add(_req("r", [1, 2]))
    with pytest.raises(RequestError, match="already active"):
        scheduler.add(_req("r", [1, 2]))


def test_prefix_cache_hits_are_reported_as_cached_tokens() -> None:
    scheduler, events = _scheduler()
    prompt = list(range(40))
    scheduler.add(_req("a", prompt, 4))
    _run(scheduler)
    scheduler.add(_req("b", [*prompt[:35], 99, 98], 4))
    scheduler.add(_req("c", prompt[:32], 4))  # fully cached: the last block is recomputed
    outputs = _run(scheduler)
    assert outputs["b"][-1].usage is not None
    assert outputs["b"][-1].usage.cached_tokens == 32
    assert outputs["c"][-1].usage is not None
    assert outputs["c"][-1].usage.cached_tokens == 16
    admission = [m for m in _of(events, ForwardPassMetrics) if m.scheduled.num_prefill_requests][-1]
    assert admission.scheduled.sum_prefill_kv_tokens == 32 + 16
    assert admission.scheduled.sum_prefill_tokens == (37 - 32) + (32 - 16)


# -- scheduling ----------------------------------------------------------------------------


def test_max_num_seqs_limits_the_batch() -> None:
    scheduler, _ = _scheduler(EngineConfig(speedup_ratio=0, max_num_seqs=2))
    for i in range(3):
        scheduler.add(_req(f"r{i}", range(10 + i), 3))
    batch, _ = scheduler.step()
    assert batch.metrics.scheduled.num_prefill_requests == 2
    assert batch.metrics.queued.num_prefill_requests == 1
    assert batch.metrics.queued.sum_prefill_tokens == 12
    assert scheduler.num_running == 2


def test_chunked_prefill_spreads_a_long_prompt_over_passes() -> None:
    scheduler, events = _scheduler(EngineConfig(speedup_ratio=0, max_num_batched_tokens=32))
    scheduler.add(_req("r", range(100), 2))
    outputs = _run(scheduler)["r"]
    fpms = _of(events, ForwardPassMetrics)
    prefill = [m.scheduled for m in fpms if m.scheduled.num_prefill_requests]
    assert [s.sum_prefill_tokens for s in prefill] == [32, 32, 32, 4]
    assert [s.sum_prefill_kv_tokens for s in prefill] == [0, 32, 64, 96]
    assert all(s.var_prefill_length == 0.0 for s in prefill)
    assert events.index(PrefillCompleted("r")) > events.index(fpms[3])
    assert len(_tokens(outputs)) == 2


def test_without_chunked_prefill_long_prompts_are_rejected() -> None:
    config = EngineConfig(speedup_ratio=0, max_num_batched_tokens=32, enable_chunked_prefill=False)
    scheduler, _ = _scheduler(config)
    with pytest.raises(RequestError, match="max_num_batched_tokens"):
        scheduler.add(_req("r", range(33)))
    scheduler.add(_req("a", range(30), 2))
    scheduler.add(_req("b", range(100, 130), 2))  # does not fit next to a in one pass
    batch, _ = scheduler.step()
    assert batch.metrics.scheduled.num_prefill_requests == 1


def test_preemption_keeps_outputs_and_usage_exact() -> None:
    def run(num_blocks: int) -> tuple[dict[str, list[EngineOutput]], Scheduler, list[EngineEvent]]:
        scheduler, events = _scheduler(EngineConfig(speedup_ratio=0, num_gpu_blocks=num_blocks))
        for i in range(4):
            scheduler.add(_req(f"r{i}", range(100 * i, 100 * i + 40), 40))
        return _run(scheduler), scheduler, events

    roomy, roomy_scheduler, _ = run(256)
    tight, tight_scheduler, events = run(12)
    assert roomy_scheduler.num_preemptions == 0
    assert tight_scheduler.num_preemptions > 0
    for rid, outputs in roomy.items():
        assert _tokens(tight[rid]) == _tokens(outputs)
        assert tight[rid][-1].usage == outputs[-1].usage
    assert any(m.queued.num_decode_requests for m in _of(events, ForwardPassMetrics))
    assert sorted(e.request_id for e in _of(events, PrefillCompleted)) == sorted(roomy)
    assert tight_scheduler.kv.used_blocks == 0


@pytest.mark.parametrize(("mode", "victim"), [("lifo", "r2"), ("fifo", "r0")])
def test_preemption_mode_picks_the_victim(mode: str, victim: str) -> None:
    config = EngineConfig(speedup_ratio=0, num_gpu_blocks=8, preemption_mode=mode)  # type: ignore[arg-type]
    scheduler, _ = _scheduler(config)
    for i in range(3):
        scheduler.add(_req(f"r{i}", range(100 * i, 100 * i + 30), 30))
    scheduler.step()
    assert scheduler.num_running == 3
    while not scheduler.waiting_ids:
        scheduler.step()
    assert scheduler.waiting_ids == (victim,)
    assert scheduler.num_preemptions == 1


def test_heartbeat_and_kv_metrics() -> None:
    scheduler, events = _scheduler()
    scheduler.add(_req("r", range(20), 2))
    beat = scheduler.heartbeat()
    assert beat.counter_id == 1
    assert beat.wall_time == 0.0
    assert beat.scheduled.num_prefill_requests == beat.scheduled.num_decode_requests == 0
    assert (beat.queued.num_prefill_requests, beat.queued.sum_prefill_tokens) == (1, 20)
    batch, _ = scheduler.step()
    assert batch.metrics.counter_id == 2
    assert scheduler.kv_metrics() == KvMetrics(2)
    assert events[-1] == KvMetrics(2)


def test_metrics_have_dynamo_wire_form() -> None:
    scheduler, _ = _scheduler()
    scheduler.add(_req("r", range(20), 2))
    batch, _ = scheduler.step()
    wire = batch.metrics.to_wire(worker_id=7587899083018119687, dp_rank=0)
    assert wire["version"] == 1
    assert wire["worker_id"] == "7587899083018119687"
    assert wire["scheduled_requests"]["sum_prefill_tokens"] == 20
    assert set(wire["queued_requests"]) == {
        "num_prefill_requests",
        "sum_prefill_tokens",
        "var_prefill_length",
        "num_decode_requests",
        "sum_decode_kv_tokens",
        "var_decode_kv_tokens",
    }
    assert KvMetrics(3).to_wire(5, 1) == {
        "worker_id": 5,
        "dp_rank": 1,
        "active_decode_blocks": None,
        "active_prefill_tokens": None,
        "kv_used_blocks": 3,
    }
    assert PrefillCompleted("x").to_wire(5) == {
        "request_id": "x",
        "worker": {"worker_id": 5, "dp_rank": 0},
        "data": "MarkPrefillCompleted",
        "router_id": 5,
        "lora_name": None,
    }


def test_from_preprocessed_request() -> None:
    body = {
        "model": "tiny",
        "token_ids": [1, 2, 3],
        "stop_conditions": {
            "max_tokens": 9,
            "stop": ["END"],
            "stop_token_ids": [7],
            "stop_token_ids_hidden": [2],
            "min_tokens": 1,
            "ignore_eos": None,
        },
        "sampling_options": {"seed": 42},
        "eos_token_ids": [2],
        "annotations": [],
    }
    request = GenerateRequest.from_preprocessed("id-1", body)
    assert request == GenerateRequest(
        "id-1", (1, 2, 3), 9, 1, ("END",), (7, 2), (2,), False, 42, ()
    )
    body["stop_conditions"]["ignore_eos"] = True  # type: ignore[index]
    assert GenerateRequest.from_preprocessed("id-1", body).stop_token_ids == (7,)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"block_size": 1}, "block_size"),
        ({"num_gpu_blocks": 0}, "num_gpu_blocks"),
        ({"max_num_seqs": 0}, "max_num_seqs"),
        ({"speedup_ratio": -1}, "speedup_ratio"),
        ({"decode_speedup_ratio": 0}, "decode_speedup_ratio"),
        ({"preemption_mode": "random"}, "preemption_mode"),
        ({"output_mode": "greedy"}, "output_mode"),
        ({"max_model_len": 1}, "max_model_len"),
    ],
)
def test_invalid_config(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        EngineConfig(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="prefill_base_s"):
        TimingModel(prefill_base_s=-1)


def test_emitted_events_validate_against_the_contracts() -> None:
    """The wire form of every event kind passes the events contracts and their rules."""
    scheduler, events = _scheduler(EngineConfig(speedup_ratio=0, num_gpu_blocks=8))
    for i in range(3):
        scheduler.add(_req(f"r{i}", range(100 * i, 100 * i + 30), 30))
    scheduler.heartbeat()
    _run(scheduler)
    assert scheduler.num_preemptions > 0
    worker = 7587899083018119687
    kv_payloads = [
        [
            {
                "worker_id": worker,
                "storage_tier": "device",
                "residency_domain": "worker",
                "event": e.to_wire(),
            }
        ]
        for e in events
        if isinstance(e, (KvStored, KvRemoved))
    ]
    streams = {
        "events.kv-events": kv_payloads,
        "events.forward-pass-metrics": [
            e.to_wire(worker) for e in events if isinstance(e, ForwardPassMetrics)
        ],
        "events.kv-metrics": [e.to_wire(worker) for e in events if isinstance(e, KvMetrics)],
        "events.active-sequences": [
            e.to_wire(worker) for e in events if isinstance(e, PrefillCompleted)
        ],
    }
    validator = Validator()
    for contract, stream in streams.items():
        assert stream, contract
        report = validator.validate_stream(contract, stream)
        assert report.ok, (contract, report.violations[:3])
