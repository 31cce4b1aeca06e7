"""The KV block manager: prefix caching, LRU eviction and Dynamo's kv-events semantics."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker import (
    BlockTable,
    KvBlockManager,
    KvCleared,
    KvEvent,
    KvRemoved,
    KvStored,
    StoredBlock,
)

BS = 4


def _manager(num_blocks: int = 16, **kwargs: bool) -> tuple[KvBlockManager, list[KvEvent]]:
    events: list[KvEvent] = []
    return KvBlockManager(BS, num_blocks, sink=events.append, **kwargs), events


def _table(kv: KvBlockManager, tokens: list[int]) -> BlockTable:
    table = kv.new_table(tokens)
    assert kv.allocate(table, len(tokens))
    return table


def _blocks(tokens: list[int], parent: int | None = None) -> tuple[StoredBlock, ...]:
    return tuple(StoredBlock(bh, th) for bh, th in chain_hashes(tokens, BS, parent))


def test_stored_hashes_are_the_chain_hashes() -> None:
    kv, events = _manager()
    tokens = list(range(100, 111))  # two full blocks and a partial one
    table = _table(kv, tokens)
    assert events == [KvStored(1, None, _blocks(tokens))]
    assert table.block_hashes() == chain_hashes(tokens, BS)
    assert kv.used_blocks == 3
    assert kv.cached_hashes() == [bh for bh, _ in chain_hashes(tokens, BS)]


def test_prefix_hit_stores_only_new_blocks() -> None:
    kv, events = _manager()
    a = list(range(12))
    b = [*range(8), 50, 51, 52, 53]
    _table(kv, a)
    table_b = kv.new_table(b)
    assert kv.cached_prefix_blocks(table_b) == 2
    assert kv.blocks_required(table_b, len(b)) == 1
    assert kv.allocate(table_b, len(b))
    parent = chain_hashes(a, BS)[1][0]
    assert events[-1] == KvStored(2, parent, _blocks(b)[2:])
    assert kv.used_blocks == 4  # shared blocks count once


def test_shared_blocks_stay_held_until_every_holder_frees() -> None:
    kv, _ = _manager()
    a = _table(kv, list(range(12)))
    b = _table(kv, [*range(8), 50, 51, 52, 53])
    kv.free(a)
    assert kv.used_blocks == 3
    assert kv.cached_blocks == 1
    kv.free(b)
    assert kv.used_blocks == 0
    assert kv.cached_blocks == 4


def test_eviction_is_lru_and_tail_first() -> None:
    kv, events = _manager(num_blocks=6)
    a = _table(kv, list(range(0, 8)))
    b = _table(kv, list(range(10, 18)))
    _table(kv, list(range(20, 28)))
    kv.free(a)
    kv.free(b)
    (a0, _), (a1, _) = a.block_hashes()
    (b0, _), (b1, _) = b.block_hashes()
    assert kv.cached_hashes()[-4:] == [a1, a0, b1, b0]
    d = list(range(30, 42))
    _table(kv, d)
    assert events[-2:] == [KvRemoved(4, (a1, a0, b1)), KvStored(5, None, _blocks(d))]
    assert kv.is_cached(b0)
    assert not kv.is_cached(a0)


def test_reuse_moves_blocks_to_the_recent_end() -> None:
    kv, events = _manager(num_blocks=6)
    a_tokens = list(range(0, 8))
    a = _table(kv, a_tokens)
    b = _table(kv, list(range(10, 18)))
    _table(kv, list(range(20, 28)))
    kv.free(a)
    kv.free(b)
    again = _table(kv, a_tokens)  # prefix hit: no new stored event
    assert events[-1].event_id == 3
    kv.free(again)
    _table(kv, list(range(30, 38)))
    assert events[-2] == KvRemoved(4, tuple(h for h, _ in reversed(b.block_hashes())))


def test_partial_blocks_are_never_stored_or_removed() -> None:
    kv, events = _manager(num_blocks=3)
    a = _table(kv, [1, 2, 3, 4, 5, 6])  # one full block, one partial
    kv.free(a)
    assert kv.cached_blocks == 1
    _table(kv, list(range(10, 22)))  # needs all three blocks
    removed = [e for e in events if isinstance(e, KvRemoved)]
    assert removed == [KvRemoved(2, (a.block_hashes()[0][0],))]


def test_decode_stores_a_block_when_a_token_fills_it() -> None:
    kv, events = _manager()
    tokens = [7, 8, 9, 10]
    table = _table(kv, tokens)
    assert events == [KvStored(1, None, _blocks(tokens))]
    assert kv.append_token(table, 11)  # starts block 1: allocated, not stored
    assert (table.num_blocks, kv.used_blocks, len(events)) == (2, 2, 1)
    for token in (12, 13):
        assert kv.append_token(table, token)
    assert len(events) == 1
    assert kv.append_token(table, 14)  # fills block 1
    all_tokens = [*tokens, 11, 12, 13, 14]
    assert events[-1] == KvStored(2, _blocks(tokens)[0].block_hash, _blocks(all_tokens)[1:])
    assert table.block_hashes() == chain_hashes(all_tokens, BS)


def test_append_without_room_keeps_the_token_and_holds_nothing_new() -> None:
    kv, events = _manager(num_blocks=2)
    table = _table(kv, list(range(8)))
    assert not kv.append_token(table, 99)
    assert table.token_ids[-1] == 99
    assert table.num_blocks == 2
    assert len(events) == 1
    kv.free(table)
    assert kv.used_blocks == 0


def test_failed_allocation_changes_nothing() -> None:
    kv, events = _manager(num_blocks=3)
    held = _table(kv, list(range(8)))
    table = kv.new_table(list(range(20, 30)))
    before = (kv.used_blocks, kv.cached_blocks, kv.next_event_id, list(events))
    assert not kv.allocate(table, 10)
    assert (kv.used_blocks, kv.cached_blocks, kv.next_event_id, events) == before
    assert table.num_blocks == 0
    kv.free(held)
    assert kv.allocate(table, 10)


def test_clear_needs_an_idle_cache() -> None:
    kv, events = _manager()
    tokens = list(range(8))
    table = _table(kv, tokens)
    assert not kv.clear()
    kv.free(table)
    assert kv.clear()
    assert events[-1] == KvCleared(2)
    assert kv.cached_blocks == 0
    _table(kv, tokens)
    assert events[-1] == KvStored(3, None, _blocks(tokens))


def test_without_prefix_caching_nothing_is_shared_or_reported() -> None:
    kv, events = _manager(enable_prefix_caching=False)
    tokens = list(range(12))
    a = _table(kv, tokens)
    b = kv.new_table(tokens)
    assert kv.cached_prefix_blocks(b) == 0
    assert kv.allocate(b, len(tokens))
    assert kv.used_blocks == 6
    kv.free(a)
    kv.free(b)
    assert (kv.used_blocks, kv.cached_blocks, events) == (0, 0, [])
    assert kv.clear()
    assert events == []


def test_identical_decodes_share_the_promoted_block() -> None:
    kv, events = _manager()
    a = _table(kv, [1, 2, 3, 4, 5])
    b = _table(kv, [1, 2, 3, 4, 5])
    for token in (6, 7, 8):
        kv.append_token(a, token)
        kv.append_token(b, token)
    stored = [e for e in events if isinstance(e, KvStored)]
    assert len(stored) == 2  # the prompt block, then block 1 once
    assert a.held == b.held
    assert kv.used_blocks == 2


def test_coalesced_removals_form_one_event() -> None:
    kv, events = _manager(num_blocks=4, coalesce_removals=True)
    old = [_table(kv, list(range(10 * i, 10 * i + 4))) for i in range(4)]
    for table in old:
        kv.free(table)
    a = kv.new_table([100, 101, 102])  # partial blocks only: no stored event
    b = kv.new_table([200, 201, 202])
    assert kv.allocate(a, 3)
    assert kv.allocate(b, 3)
    assert len(events) == 4
    kv.flush()
    expected = tuple(t.block_hashes()[0][0] for t in old[:2])
    assert events[-1] == KvRemoved(5, expected)
    c = _table(kv, list(range(300, 304)))  # a stored event flushes pending evictions first
    assert [type(e) for e in events[-2:]] == [KvRemoved, KvStored]
    assert events[-2] == KvRemoved(6, (old[2].block_hashes()[0][0],))
    assert c.num_blocks == 1


def test_events_have_dynamo_wire_form() -> None:
    stored = KvStored(7, 11, (StoredBlock(1, 2),))
    assert stored.to_wire(dp_rank=3) == {
        "event_id": 7,
        "data": {
            "stored": {
                "parent_hash": 11,
                "start_position": None,
                "blocks": [{"block_hash": 1, "tokens_hash": 2, "mm_extra_info": None}],
            }
        },
        "dp_rank": 3,
    }
    assert KvRemoved(8, (1, 5)).to_wire() == {
        "event_id": 8,
        "data": {"removed": {"block_hashes": [1, 5]}},
        "dp_rank": 0,
    }
    assert KvCleared(9).to_wire() == {"event_id": 9, "data": "cleared", "dp_rank": 0}


_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.lists(st.integers(0, 3), min_size=1, max_size=14)),
        st.tuples(st.just("append"), st.integers(0, 3)),
        st.tuples(st.just("free"), st.integers(0, 7)),
    ),
    max_size=40,
)


@given(_OPS)
def test_random_workload_keeps_the_event_stream_consistent(ops: list[tuple[str, object]]) -> None:
    """Replaying the events reproduces the cache; removals name only stored blocks."""
    kv, events = _manager(num_blocks=10)
    tables: list[BlockTable] = []
    for op, arg in ops:
        if op == "new":
            table = kv.new_table(arg)  # type: ignore[arg-type]
            if kv.allocate(table, len(table.token_ids)):
                tables.append(table)
        elif op == "append" and tables:
            table = tables[-1]
            if not kv.append_token(table, int(arg)):  # type: ignore[call-overload]
                kv.free(table)
                tables.remove(table)
        elif op == "free" and tables:
            kv.free(tables.pop(int(arg) % len(tables)))  # type: ignore[call-overload]
        assert kv.used_blocks + kv.cached_blocks <= kv.num_blocks
    cached: set[int] = set()
    for expected_id, event in enumerate(events, 1):
        assert event.event_id == expected_id
        if isinstance(event, KvStored):
            assert event.parent_hash is None or event.parent_hash in cached
            for block in event.blocks:
                assert block.block_hash not in cached
                cached.add(block.block_hash)
        elif isinstance(event, KvRemoved):
            assert set(event.block_hashes) <= cached
            cached -= set(event.block_hashes)
    assert cached == set(kv.cached_hashes())
    for table in tables:
        full = table.block_hashes()
        assert table.held == [h for h, _ in full[: len(table.held)]]
