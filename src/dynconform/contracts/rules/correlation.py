"""Rules that span contract families: what one surface promises, another must show."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from dynconform.contracts._rules import Issue, Rule, correlation_rule
from dynconform.contracts.hashing import chain_hashes


def _const(value: int, _model: str) -> int:
    return value


#: Prompts kept for the end-of-run judgement; a long tap keeps only the first ones.
MAX_PROMPTS = 10_000
#: Stored block hashes recorded with ``add_stored`` before they are merged into ``stored``.
MAX_PENDING = 65_536
#: Distinct stored block hashes kept, in two generations of half this many: a long tap forgets
#: the older generation when the newer one is full (about 70 MiB at most).
MAX_STORED = 1 << 20


class BlockSizeConsistent:
    """A worker whose block size differs from its MDC is never matched by the KV router.

    Stored blocks are kept by block hash (a block hash is the hash of its parent's and its own
    tokens hash, so it stands for the pair). Memory is bounded: after :data:`MAX_STORED`
    distinct blocks the oldest are forgotten, and from then on only prompts none of whose
    blocks is remembered count, since a forgotten block may be a prefix that a prompt reused.
    """

    def __init__(self) -> None:
        self.block_sizes: dict[str, int] = {}
        self.prompts: list[tuple[str, list[int]]] = []
        self._forgotten = False
        self._recent: set[int] = set()
        self._older: set[int] = set()
        self._pending: list[list[int]] = []
        self._pending_size = 0

    @property
    def stored(self) -> set[int]:
        """The block hashes of the stored blocks still remembered."""
        self._merge()
        return self._older | self._recent

    @property
    def forgotten(self) -> bool:
        """Whether stored blocks were forgotten to bound memory."""
        self._merge()
        return self._forgotten

    def holds(self, block_hash: int) -> bool:
        """Whether a block with ``block_hash`` was stored (and is still remembered)."""
        self._merge()
        return block_hash in self._recent or block_hash in self._older

    def add_stored(self, hashes: list[int]) -> None:
        """Record stored blocks by their block hashes; they join :attr:`stored` when it is
        next read, so a run that never judges pays little."""
        self._pending.append(hashes)
        self._pending_size += len(hashes)
        if self._pending_size > MAX_PENDING:
            self._merge()

    def _merge(self) -> None:
        recent = self._recent
        for hashes in self._pending:
            recent.update(hashes)
            if len(recent) >= MAX_STORED // 2:
                self._forgotten = self._forgotten or bool(self._older - recent)
                self._older, recent = recent, set()
        self._recent = recent
        self._pending.clear()
        self._pending_size = 0

    def observe(self, contract: str, instance: Any, index: int | None) -> Iterator[Issue]:
        if contract == "discovery.mdc":
            size = instance.get("kv_cache_block_size")
            if isinstance(size, int) and size > 0:
                for name in (instance.get("display_name"), instance.get("slug")):
                    if isinstance(name, str):
                        self.block_sizes[name] = size
        elif contract == "request-plane.preprocessed-request":
            if len(self.prompts) < MAX_PROMPTS:
                self.prompts.append((str(instance["model"]), list(instance["token_ids"])))
        else:
            for event in instance:
                data = event["event"]["data"]
                if isinstance(data, dict) and "stored" in data:
                    self.add_stored([block["block_hash"] for block in data["stored"]["blocks"]])
        return iter(())

    def _block_size(self, model: str) -> int | None:
        if model in self.block_sizes:
            return self.block_sizes[model]
        sizes = set(self.block_sizes.values())
        return sizes.pop() if len(sizes) == 1 else None

    def _count_missing(self, size_of: Callable[[str], int | None]) -> tuple[int, int]:
        """Prompt blocks absent from the stored blocks, and all prompt blocks judged. Once
        blocks were forgotten, the blocks of a prompt count as absent only when none of
        them is remembered."""
        total = missing = 0
        for model, tokens in self.prompts:
            size = size_of(model)
            if size is not None:
                absent = [not self.holds(h) for h, _ in chain_hashes(tokens, size)]
                total += len(absent)
                lost = sum(absent)
                missing += 0 if self._forgotten and lost < len(absent) else lost
        return missing, total

    def finish(self) -> Iterator[Issue]:
        if not self.block_sizes or not self.prompts:
            return  # nothing to correlate: no MDC or no prompt seen in this run
        self._merge()
        if not (self._recent or self._older):
            return  # no stored block seen in this run
        missing, total = self._count_missing(self._block_size)
        if not missing:
            return
        sizes = sorted({s for m, _ in self.prompts if (s := self._block_size(m)) is not None})
        message = (
            f"{missing} of {total} prompt blocks hashed with kv_cache_block_size "
            f"{'/'.join(map(str, sizes))} never appeared in a stored KV event"
        )
        for candidate in (8, 16, 32, 64, 128, 256):
            if candidate in sizes:
                continue
            lost, judged = self._count_missing(functools.partial(_const, candidate))
            if judged and not lost:  # a size that leaves no full block proves nothing
                message += f"; all of them match block size {candidate}"
                break
        yield "/kv_cache_block_size", message


BLOCK_SIZE_CONSISTENT = correlation_rule(
    "mdc.block-size-consistent",
    contracts=("discovery.mdc", "request-plane.preprocessed-request", "events.kv-events"),
    summary=(
        "Prompt blocks of routed requests, hashed with the MDC's kv_cache_block_size, appear "
        "in stored KV events (publishers that use Dynamo's block hashing)."
    ),
)(BlockSizeConsistent)

RULES: tuple[Rule, ...] = (BLOCK_SIZE_CONSISTENT,)
