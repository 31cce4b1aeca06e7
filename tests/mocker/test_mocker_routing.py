"""The frontend's router modes and the KV index it builds from the workers' kv-events."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker.event_plane import ZmqPublisher
from dynconform.mocker.frontend import build_parser, config_from_args
from dynconform.mocker.routing import KvEventSubscriber, KvIndex, Router
from dynconform.mocker.serve import ServeError, ServeOptions, check_options

PROMPT = list(range(100, 132))  # 8 blocks of 4
HASHES = [h for h, _ in chain_hashes(PROMPT, 4)]


def _stored(worker: int, hashes: list[int], parent: int | None = None) -> dict[str, Any]:
    blocks = [{"block_hash": h, "tokens_hash": 0, "mm_extra_info": None} for h in hashes]
    stored = {"parent_hash": parent, "start_position": None, "blocks": blocks}
    return {"worker_id": worker, "event": {"event_id": 1, "data": {"stored": stored}}}


def _removed(worker: int, hashes: list[int]) -> dict[str, Any]:
    data = {"removed": {"block_hashes": hashes}}
    return {"worker_id": worker, "event": {"event_id": 2, "data": data}}


def test_the_index_follows_stored_removed_and_cleared() -> None:
    index = KvIndex()
    index.apply_payload([_stored(1, HASHES[:6]), _stored(2, HASHES[:2])])
    assert index.overlap(1, HASHES) == 6
    assert index.overlap(2, HASHES) == 2
    assert index.overlap(3, HASHES) == 0
    index.apply(_removed(1, [HASHES[3]]))
    assert index.overlap(1, HASHES) == 3  # a prefix: blocks after the gap do not count
    assert index.blocks(1) == frozenset(HASHES[:6]) - {HASHES[3]}
    index.apply({"worker_id": 1, "event": {"event_id": 3, "data": "cleared"}})
    assert index.overlap(1, HASHES) == 0
    assert index.workers == [2]
    index.forget(2)
    assert index.workers == []
    assert index.applied == 4


def test_retain_forgets_workers_that_left_discovery_only() -> None:
    index = KvIndex()
    index.apply_payload([_stored(1, HASHES[:2]), _stored(2, HASHES[:3]), _stored(3, HASHES[:1])])
    assert index.retain([1, 2]) == []
    assert index.retain([1]) == [2]  # listed before, gone now
    # 3 was never listed: its events may come before its record, so its blocks stay
    assert index.workers == [1, 3]
    assert index.retain([]) == [1]
    assert index.workers == [3]
    assert index.retain([3]) == []
    assert index.retain([]) == [3]
    assert index.workers == []


def _channel(endpoint: str) -> dict[str, Any]:
    return {"topic": "kv-events", "transport": {"kind": "Zmq", "config": {"endpoint": endpoint}}}


def test_the_subscriber_leaves_zmq_channels_that_left_discovery() -> None:
    async def main() -> None:
        index = KvIndex()
        subscriber = KvEventSubscriber(index)
        publishers = [ZmqPublisher("kv-events", n, host="127.0.0.1") for n in (1, 2)]
        try:
            for publisher in publishers:
                await publisher.start()
            channels = [_channel(p.endpoint) for p in publishers]
            await subscriber.sync([*channels, {"topic": "kv_metrics"}])
            assert subscriber.following == sorted(p.endpoint for p in publishers)

            async def deliver(worker: int, publisher: ZmqPublisher, hashes: list[int]) -> bool:
                # a PUB socket drops what it sends before the subscription reaches it
                deadline = time.monotonic() + 5
                while time.monotonic() < deadline:
                    await publisher.publish([_stored(worker, hashes)])
                    await asyncio.sleep(0.05)
                    if index.overlap(worker, hashes) == len(hashes):
                        return True
                return False

            assert await deliver(1, publishers[0], HASHES[:2])
            assert await deliver(2, publishers[1], HASHES[:3])
            await subscriber.sync(channels[:1])
            assert subscriber.following == [publishers[0].endpoint]
            before = index.applied
            for _ in range(5):
                await publishers[1].publish([_stored(2, HASHES[:6])])
            assert await deliver(1, publishers[0], HASHES[:4])  # the channel kept still flows
            assert index.overlap(2, HASHES) == 3  # nothing more came from the one left
            assert index.applied > before
        finally:
            await subscriber.close()
            for publisher in publishers:
                await publisher.close()

    asyncio.run(main())


@pytest.mark.parametrize(
    "event",
    [None, "x", {"worker_id": "1", "event": {}}, {"worker_id": 1}, {"worker_id": 1, "event": {}}],
)
def test_the_index_ignores_malformed_events(event: Any) -> None:
    index = KvIndex()
    index.apply(event)
    index.apply_payload(event)
    assert index.applied == 0


def test_kv_scores_prefer_cached_blocks_then_less_load() -> None:
    router = Router("kv")
    router.index.apply_payload([_stored(20, HASHES[:5])])
    order = router.order([10, 20, 30], PROMPT, 4)
    assert order == [20, 10, 30]  # 5 blocks cached on 20; 10 and 30 tie, the lower id first
    assert [(s.instance_id, s.overlap, s.cost) for s in router.last_scores] == [
        (20, 5, 3),
        (10, 0, 8),
        (30, 0, 8),
    ]
    router.started(20, 40, 4)  # 10 active blocks outweigh the 5 cached
    assert router.order([10, 20, 30], PROMPT, 4) == [10, 30, 20]
    router.started(10, 4, 4)
    router.started(30, 3, 4)  # one block each: a tie on cost, then on requests in flight
    router.started(30, 0, 4)
    assert router.order([10, 20, 30], PROMPT, 4)[:2] == [10, 30]
    for instance, tokens in ((20, 40), (10, 4), (30, 3), (30, 0)):
        router.finished(instance, tokens, 4)
    assert [router.in_flight(i) for i in (10, 20, 30)] == [0, 0, 0]
    assert router.order([10, 20, 30], PROMPT, 4) == [20, 10, 30]


def test_random_is_seeded_and_round_robin_keeps_the_order() -> None:
    ids = list(range(1, 9))
    first = [Router("random", seed=3).order(ids, PROMPT, 4) for _ in range(2)]
    assert first[0] == first[1] != ids
    assert sorted(first[0]) == ids
    assert Router().order(ids, PROMPT, 4) == ids


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown router mode 'least-loaded'"):
        Router("least-loaded")  # type: ignore[arg-type]


def test_the_frontend_takes_the_router_mode() -> None:
    args = build_parser().parse_args(["--router-mode", "kv", "--nats-url", "nats://x:1"])
    config = config_from_args(args)
    assert (config.router_mode, config.nats_url) == ("kv", "nats://x:1")
    assert config_from_args(build_parser().parse_args([])).router_mode == "round-robin"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--router-mode", "nearest"])


def test_serve_checks_the_router_mode() -> None:
    options = ServeOptions(router_mode="nearest", port=0)  # type: ignore[arg-type]
    with pytest.raises(ServeError, match="--router-mode must be round-robin, random or kv"):
        check_options(options)
    check_options(ServeOptions(router_mode="kv", port=0))
