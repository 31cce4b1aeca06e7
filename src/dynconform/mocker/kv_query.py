"""A worker's local KV index and its answers to KV state queries.

An ai-dynamo 1.6.1 KV router queries each worker's ``worker_kv_query_source_{publisher:x}``
endpoint (advertised as the ``recovery_target`` of its kv-events ``EventSource``) when it
discovers the worker, and again after a gap in the event sequence. The request body is a
``WorkerKvQueryRequest`` ``{worker_id, dp_rank, start_event_id, end_event_id,
supports_tree_dump_failed, kind}``; the worker streams back one ``WorkerKvQueryResponse``,
serde externally tagged:

- ``{"TreeDump": {"events", "last_event_id", "reset_scope": "all"}}``: the current state as
  replay-ordered ``stored`` RouterEvents (no ``start_event_id``, or one older than the buffer);
- ``{"Events": {"events", "last_event_id"}}``: buffered events from ``start_event_id`` on;
- ``{"TooNew": {...}}``, ``{"InvalidRange": {...}}`` or ``{"Error": "..."}``.

:class:`LocalKvIndex` follows the RouterEvents the worker publishes to answer them.
"""

from __future__ import annotations

from collections import deque
from typing import Any

__all__ = ["LocalKvIndex"]


class LocalKvIndex:
    """The blocks a worker's published kv-events leave stored, and a buffer of the events."""

    def __init__(self, worker_id: int, dp_rank: int = 0, *, buffer_size: int = 1024) -> None:
        self.worker_id = worker_id
        self.dp_rank = dp_rank
        #: block hash -> (parent hash, tokens hash, event id, router event fields), insertion order
        self._blocks: dict[int, tuple[int | None, int, int, dict[str, Any]]] = {}
        self._buffer: deque[dict[str, Any]] = deque(maxlen=buffer_size)
        self.last_event_id = 0

    def apply(self, router_event: dict[str, Any]) -> None:
        """Follow one published RouterEvent ``{worker_id, ..., event: {event_id, data}}``."""
        event = router_event["event"]
        data = event["data"]
        fields = {k: v for k, v in router_event.items() if k not in ("worker_id", "event")}
        if data == "cleared":
            self._blocks.clear()
        elif isinstance(data, dict) and "stored" in data:
            parent = data["stored"]["parent_hash"]
            for block in data["stored"]["blocks"]:
                entry = (parent, block["tokens_hash"], event["event_id"], fields)
                self._blocks[block["block_hash"]] = entry
                parent = block["block_hash"]
        elif isinstance(data, dict) and "removed" in data:
            for block_hash in data["removed"]["block_hashes"]:
                self._blocks.pop(block_hash, None)
        self._buffer.append(router_event)
        self.last_event_id = max(self.last_event_id, int(event["event_id"]))

    def tree_dump(self) -> list[dict[str, Any]]:
        """The stored blocks as ``stored`` RouterEvents, parents first, numbered from 1.

        Blocks stored by one event stay together while they still chain.
        """
        events: list[dict[str, Any]] = []
        last: tuple[int, int] | None = None  # (source event id, last block hash)
        for block_hash, (parent, tokens_hash, event_id, fields) in self._blocks.items():
            block = {"block_hash": block_hash, "tokens_hash": tokens_hash, "mm_extra_info": None}
            if last is not None and last == (event_id, parent):
                events[-1]["event"]["data"]["stored"]["blocks"].append(block)
            else:
                stored = {"parent_hash": parent, "start_position": None, "blocks": [block]}
                event = {"event_id": len(events) + 1, "data": {"stored": stored}}
                event["dp_rank"] = self.dp_rank
                events.append({"worker_id": self.worker_id, **fields, "event": event})
            last = (event_id, block_hash)
        return events

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """The ``WorkerKvQueryResponse`` to one ``WorkerKvQueryRequest``."""
        if request.get("worker_id") != self.worker_id or request.get("dp_rank") != self.dp_rank:
            return {
                "Error": f"this source serves worker {self.worker_id} rank {self.dp_rank}, not "
                f"worker {request.get('worker_id')} rank {request.get('dp_rank')}"
            }
        if request.get("kind", "recovery") != "recovery":
            return {"Error": "only recovery queries are served (this worker has no state agent)"}
        start, end = request.get("start_event_id"), request.get("end_event_id")
        if start is not None and end is not None and end < start:
            return {"InvalidRange": {"start_id": start, "end_id": end}}
        if start is None or not self._buffer:
            last = self.last_event_id if self._buffer else 0
            return self._dump(last if start is None else 0)
        first = int(self._buffer[0]["event"]["event_id"])
        if start > self.last_event_id:
            return {
                "TooNew": {
                    "requested_start": start,
                    "requested_end": self.last_event_id if end is None else end,
                    "newest_available": self.last_event_id,
                }
            }
        if start < first:
            return self._dump(self.last_event_id)
        events = [e for e in self._buffer if int(e["event"]["event_id"]) >= start]
        return {"Events": {"events": events, "last_event_id": self.last_event_id}}

    def _dump(self, last_event_id: int) -> dict[str, Any]:
        dump = {"events": self.tree_dump(), "last_event_id": last_event_id, "reset_scope": "all"}
        return {"TreeDump": dump}
