"""KV block hashing exactly as ai-dynamo 1.6.1 computes it (XXH3-64, seed 1337).

A worker whose hashes differ from the router's is never matched, silently; these functions are
the reference that the ``kv.*`` rules and the reference implementation share.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import xxhash

__all__ = ["SEED", "block_hash", "chain_hashes", "tokens_hash"]

SEED = 1337


def tokens_hash(tokens: Sequence[int]) -> int:
    """Hash of one block's token ids, as little-endian u32."""
    return xxhash.xxh3_64_intdigest(struct.pack(f"<{len(tokens)}I", *tokens), seed=SEED)


def block_hash(parent: int | None, tokens_hash_: int) -> int:
    """Hash of a block given its parent's block hash (``None`` for the first block)."""
    if parent is None:
        return tokens_hash_
    # int(): JSON Schema's "integer" admits integral floats such as 1.0
    return xxhash.xxh3_64_intdigest(struct.pack("<QQ", int(parent), int(tokens_hash_)), seed=SEED)


def chain_hashes(
    token_ids: Sequence[int], block_size: int, parent: int | None = None
) -> list[tuple[int, int]]:
    """``(block_hash, tokens_hash)`` of every full block of ``token_ids``, in order."""
    if block_size <= 0:
        raise ValueError("block_size must be positive")
    out: list[tuple[int, int]] = []
    for start in range(0, len(token_ids) - block_size + 1, block_size):
        th = tokens_hash(token_ids[start : start + block_size])
        parent = block_hash(parent, th)
        out.append((parent, th))
    return out
