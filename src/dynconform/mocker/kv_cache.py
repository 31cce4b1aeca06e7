"""A KV block manager with prefix caching, LRU eviction and Dynamo kv-events.

It follows what ai-dynamo 1.6.1's mocker shows on the wire:

- A sequence's full blocks are identified by their chained block hash
  (:func:`dynconform.contracts.hashing.chain_hashes`); only full blocks are ever cached,
  stored or removed. The last block of a sequence may be partial (an anonymous slot).
- Allocating a range of blocks reuses cached ones (prefix hits), evicts the least recently
  freed cached blocks when it needs room (one ``removed`` event per allocation, or per run
  of evictions with ``coalesce_removals``), then stores the new full blocks (``stored``
  events in chain order, ``parent_hash`` = the block before them).
- During decode, a generated token that starts a block allocates it (evicting if needed)
  and one that fills a block stores it. A sequence's last token does neither (its KV is
  never computed), so the scheduler just appends it to the token ids.
- Freeing a sequence releases its blocks tail first, so its tail is evicted first.

Event ids start at 1 and increase by one per event.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable

from dynconform.contracts.hashing import chain_hashes
from dynconform.mocker.events import KvCleared, KvEvent, KvRemoved, KvStored, StoredBlock

__all__ = ["BlockTable", "KvBlockManager"]


class BlockTable:
    """The token ids of one sequence and the KV blocks it currently holds."""

    __slots__ = ("_hashes", "block_size", "held", "partial", "token_ids")

    def __init__(self, token_ids: Iterable[int], block_size: int) -> None:
        self.block_size = block_size
        self.token_ids: list[int] = list(token_ids)
        self._hashes: list[tuple[int, int]] = []
        self.held: list[int] = []
        """Keys of the full blocks held, in order (block hashes, or negative anonymous ids)."""
        self.partial = False
        """Whether a partial block is held after :attr:`held`."""

    @property
    def num_blocks(self) -> int:
        """Blocks held, the partial one included."""
        return len(self.held) + int(self.partial)

    @property
    def num_full_blocks(self) -> int:
        """Full blocks in the token ids (held or not)."""
        return len(self.token_ids) // self.block_size

    def hash_at(self, position: int) -> tuple[int, int]:
        """``(block_hash, tokens_hash)`` of the full block at ``position``."""
        if position >= self.num_full_blocks:
            raise IndexError(f"block {position} is not full")
        known = len(self._hashes)
        if position >= known:
            bs = self.block_size
            parent = self._hashes[-1][0] if self._hashes else None
            tokens = self.token_ids[known * bs : (position + 1) * bs]
            self._hashes.extend(chain_hashes(tokens, bs, parent))
        return self._hashes[position]

    def block_hashes(self) -> list[tuple[int, int]]:
        """``(block_hash, tokens_hash)`` of every full block, in order."""
        count = self.num_full_blocks
        if count:
            self.hash_at(count - 1)
        return list(self._hashes[:count])


class KvBlockManager:
    """Blocks of one worker's KV cache (one data-parallel rank).

    ``num_blocks`` slots hold active blocks (referenced by running sequences, partial blocks
    included) and cached free blocks (full blocks no sequence references, kept for prefix
    reuse and evicted least recently freed first). With ``enable_prefix_caching`` off, nothing
    is reused or cached and no KV events are emitted.
    """

    def __init__(
        self,
        block_size: int,
        num_blocks: int,
        *,
        enable_prefix_caching: bool = True,
        sink: Callable[[KvEvent], None] | None = None,
        coalesce_removals: bool = False,
    ) -> None:
        if block_size < 2:
            raise ValueError(f"block_size must be at least 2, got {block_size}")
        if num_blocks < 1:
            raise ValueError(f"num_blocks must be positive, got {num_blocks}")
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.enable_prefix_caching = enable_prefix_caching
        self.sink = sink
        self._active: dict[int, int] = {}
        self._inactive: OrderedDict[int, None] = OrderedDict()
        self._partials = 0
        self._next_anon = -1
        self._next_event_id = 1
        self._coalesce = coalesce_removals
        self._pending_removed: list[int] = []

    # -- state -------------------------------------------------------------------------------

    @property
    def used_blocks(self) -> int:
        """Blocks held by sequences (``kv_used_blocks``)."""
        return len(self._active) + self._partials

    @property
    def cached_blocks(self) -> int:
        """Cached blocks that no sequence holds (evictable)."""
        return len(self._inactive)

    @property
    def available_blocks(self) -> int:
        """Blocks a sequence could still take: empty slots plus evictable cached blocks."""
        return self.num_blocks - self.used_blocks

    @property
    def next_event_id(self) -> int:
        """The id the next KV event will carry."""
        return self._next_event_id

    def is_cached(self, block_hash: int) -> bool:
        """Whether a full block with this hash is in the cache (held or free)."""
        return block_hash in self._active or block_hash in self._inactive

    def cached_hashes(self) -> list[int]:
        """Hashes of every cached full block: held ones, then free ones from LRU to MRU."""
        return [h for h in self._active if h >= 0] + list(self._inactive)

    def new_table(self, token_ids: Iterable[int]) -> BlockTable:
        """An empty block table for a sequence with these token ids."""
        return BlockTable(token_ids, self.block_size)

    # -- planning ----------------------------------------------------------------------------

    def cached_prefix_blocks(self, table: BlockTable) -> int:
        """How many leading full blocks of ``table`` are cached (0 without prefix caching)."""
        if not self.enable_prefix_caching:
            return 0
        count = 0
        while count < table.num_full_blocks and self.is_cached(table.hash_at(count)[0]):
            count += 1
        return count

    def _plan(self, table: BlockTable, num_tokens: int) -> list[tuple[int, str]]:
        if num_tokens > len(table.token_ids):
            raise ValueError(f"cannot allocate {num_tokens} tokens of {len(table.token_ids)}")
        target = -(-num_tokens // self.block_size)
        start = table.num_blocks
        if target > start and table.partial:
            raise ValueError("cannot allocate past a partial block")
        full = table.num_full_blocks
        plan: list[tuple[int, str]] = []
        for position in range(start, target):
            if position >= full:
                plan.append((position, "partial"))
            elif not self.enable_prefix_caching:
                plan.append((position, "fresh"))
            else:
                block_hash = table.hash_at(position)[0]
                kind = (
                    "active"
                    if block_hash in self._active
                    else "inactive"
                    if block_hash in self._inactive
                    else "fresh"
                )
                plan.append((position, kind))
        return plan

    def blocks_required(self, table: BlockTable, num_tokens: int) -> int:
        """Available blocks that :meth:`allocate` ``(table, num_tokens)`` would consume."""
        return sum(kind != "active" for _, kind in self._plan(table, num_tokens))

    # -- operations --------------------------------------------------------------------------

    def allocate(self, table: BlockTable, num_tokens: int) -> bool:
        """Hold blocks covering the first ``num_tokens`` tokens of ``table``.

        Returns ``False`` and changes nothing when there is not enough room.
        """
        plan = self._plan(table, num_tokens)
        if sum(kind != "active" for _, kind in plan) > self.available_blocks:
            return False
        for position, kind in plan:
            if kind == "active":
                self._active[table.hash_at(position)[0]] += 1
            elif kind == "inactive":
                block_hash = table.hash_at(position)[0]
                del self._inactive[block_hash]
                self._active[block_hash] = 1
        self._make_room(sum(kind in ("fresh", "partial") for _, kind in plan))
        groups: list[tuple[int | None, list[StoredBlock]]] = []
        open_group = False
        for position, kind in plan:
            if kind == "partial":
                self._partials += 1
                table.partial = True
            elif kind != "fresh":
                table.held.append(table.hash_at(position)[0])
                open_group = False
            elif not self.enable_prefix_caching:
                table.held.append(self._anonymous())
            else:
                block_hash, tokens_hash = table.hash_at(position)
                self._active[block_hash] = 1
                table.held.append(block_hash)
                if not open_group:
                    parent = table.hash_at(position - 1)[0] if position else None
                    groups.append((parent, []))
                    open_group = True
                groups[-1][1].append(StoredBlock(block_hash, tokens_hash))
        for parent, blocks in groups:
            self._emit_stored(parent, blocks)
        return True

    def append_token(self, table: BlockTable, token_id: int) -> bool:
        """Add a generated token: hold a block for it, store the partial block it fills.

        Returns ``False`` when the token starts a new block and none is available: the token
        is appended all the same, and the caller must :meth:`allocate` its block later or
        :meth:`free` the table.
        """
        if table.num_blocks * self.block_size < len(table.token_ids):
            raise ValueError("append_token needs a table that holds all its tokens")
        table.token_ids.append(token_id)
        length = len(table.token_ids)
        if length > table.num_blocks * self.block_size and not self.allocate(table, length):
            return False
        if table.partial and length == table.num_blocks * self.block_size:
            self._promote(table)
        return True

    def free(self, table: BlockTable) -> None:
        """Release every block of ``table``, tail first; its token ids are kept."""
        if table.partial:
            self._partials -= 1
            table.partial = False
        for key in reversed(table.held):
            count = self._active[key] - 1
            if count:
                self._active[key] = count
                continue
            del self._active[key]
            if key >= 0:
                self._inactive[key] = None
        table.held.clear()

    def clear(self) -> bool:
        """Drop every cached block and emit ``cleared``; ``False`` while sequences hold blocks."""
        if self.used_blocks:
            return False
        self._inactive.clear()
        self._pending_removed.clear()
        if self.enable_prefix_caching:
            self._emit(KvCleared(self._take_event_id()))
        return True

    def flush(self) -> None:
        """Emit the evictions not yet reported, as one ``removed`` event.

        With ``coalesce_removals``, consecutive evictions are held back until the next
        ``stored`` event or this call, so that they form one event, as the real worker's
        are within one forward pass (the scheduler flushes at the end of each phase).
        """
        if self._pending_removed:
            removed = tuple(self._pending_removed)
            self._pending_removed.clear()
            self._emit(KvRemoved(self._take_event_id(), removed))

    # -- internals ---------------------------------------------------------------------------

    def _anonymous(self) -> int:
        key = self._next_anon
        self._next_anon -= 1
        self._active[key] = 1
        return key

    def _make_room(self, slots: int) -> None:
        empty = self.num_blocks - self.used_blocks - len(self._inactive)
        evict = slots - empty
        if evict <= 0:
            return
        if evict > len(self._inactive):
            raise RuntimeError(f"need {slots} KV blocks, {empty + len(self._inactive)} free")
        self._pending_removed.extend(self._inactive.popitem(last=False)[0] for _ in range(evict))
        if not self._coalesce:
            self.flush()

    def _promote(self, table: BlockTable) -> None:
        position = len(table.held)
        self._partials -= 1
        table.partial = False
        if not self.enable_prefix_caching:
            table.held.append(self._anonymous())
            return
        block_hash, tokens_hash = table.hash_at(position)
        if block_hash in self._active:
            self._active[block_hash] += 1
        elif block_hash in self._inactive:
            del self._inactive[block_hash]
            self._active[block_hash] = 1
        else:
            self._active[block_hash] = 1
            parent = table.hash_at(position - 1)[0] if position else None
            self._emit_stored(parent, [StoredBlock(block_hash, tokens_hash)])
        table.held.append(block_hash)

    def _emit_stored(self, parent: int | None, blocks: list[StoredBlock]) -> None:
        self.flush()
        self._emit(KvStored(self._take_event_id(), parent, tuple(blocks)))

    def _take_event_id(self) -> int:
        event_id = self._next_event_id
        self._next_event_id += 1
        return event_id

    def _emit(self, event: KvEvent) -> None:
        if self.sink is not None:
            self.sink(event)
