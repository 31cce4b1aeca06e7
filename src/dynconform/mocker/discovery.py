"""Discovery stores: Dynamo's file backend and etcd (through its v3 JSON gateway).

A worker writes its records with a :class:`FileStore` or an :class:`EtcdStore`; readers (the
frontend, tests) take snapshots in the capture form, one ``discovery.entry`` per key:
``{"path", "value"}`` for the file backend, ``{"key", "lease", "value"}`` for etcd.

The file backend is a directory (Dynamo's ``DYN_FILE_KV``): one JSON file per key, at the
key's file-form path. The owner touches its files while it lives, so readers can ignore files
of a worker that died (older than the TTL). In etcd every key is attached to a lease that the
owner keeps alive; when the owner dies the lease expires and its keys vanish.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import time
from pathlib import Path
from typing import Any, Protocol

import aiohttp

__all__ = [
    "DiscoveryError",
    "DiscoveryStore",
    "EtcdClient",
    "EtcdStore",
    "FileStore",
    "read_file_store",
]


class DiscoveryError(RuntimeError):
    """The discovery store cannot be reached or refused a request; the message is one line."""


class DiscoveryStore(Protocol):
    """Where a worker registers its records."""

    async def start(self) -> None: ...

    async def put(self, key: str, record: dict[str, Any]) -> None: ...

    async def close(self, *, deregister: bool = True) -> None: ...


def _dump(record: dict[str, Any]) -> bytes:
    return json.dumps(record, separators=(",", ":")).encode("utf-8")


class FileStore:
    """The file backend: ``root/<file-form key>``, touched every ``ttl / 3`` seconds."""

    def __init__(self, root: Path, *, ttl: float = 10.0) -> None:
        self.root = Path(root)
        self.ttl = ttl
        self.paths: list[Path] = []
        self._touch: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self._touch = asyncio.create_task(self._keep_alive(), name="file-store-touch")

    async def put(self, key: str, record: dict[str, Any]) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        # Dynamo's file store watcher skips names starting with ".tmp_" (its own temp files).
        tmp = path.with_name(f".tmp_{os.urandom(8).hex()}")
        tmp.write_bytes(_dump(record))
        tmp.replace(path)
        self.paths.append(path)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(max(self.ttl / 3, 0.2))
            now = time.time()
            for path in self.paths:
                with contextlib.suppress(OSError):
                    os.utime(path, (now, now))

    async def close(self, *, deregister: bool = True) -> None:
        if self._touch is not None:
            self._touch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._touch
            self._touch = None
        if deregister:
            for path in self.paths:
                with contextlib.suppress(OSError):
                    path.unlink()
            self.paths.clear()


def read_file_store(root: Path, *, max_age: float | None = None) -> list[dict[str, Any]]:
    """Every record under ``root`` as ``{"path", "value"}``, sorted by path.

    ``max_age`` skips files not touched for that many seconds (their owner died). Files that
    are not JSON (a write in progress) are skipped.
    """
    root = Path(root)
    entries: list[dict[str, Any]] = []
    now = time.time()
    base = root / "v1"
    if not base.is_dir():
        return entries
    for kind in sorted(base.iterdir()):
        if not kind.is_dir():
            continue
        for path in sorted(kind.iterdir()):
            if path.name.startswith("."):
                continue
            try:
                if max_age is not None and now - path.stat().st_mtime > max_age:
                    continue
                value = json.loads(path.read_bytes())
            except (OSError, ValueError):
                continue
            entries.append({"path": path.relative_to(root).as_posix(), "value": value})
    return entries


def _b64(text: str | bytes) -> str:
    raw = text.encode("utf-8") if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _prefix_end(prefix: bytes) -> bytes:
    end = bytearray(prefix)
    for i in range(len(end) - 1, -1, -1):
        if end[i] < 0xFF:
            end[i] += 1
            return bytes(end[: i + 1])
    return b"\x00"


class EtcdClient:
    """The few etcd v3 calls the reference needs, over the JSON gateway (``/v3/...``)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` to ``/v3/<path>``; raises :class:`DiscoveryError` on any failure."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(f"{self.url}/v3/{path}", json=body) as response:
                text = await response.text()
                status = response.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise DiscoveryError(f"cannot reach etcd at {self.url}: {exc or type(exc)}") from None
        try:
            data = json.loads(text.splitlines()[0]) if text.strip() else {}
        except ValueError:
            data = {}
        if status != 200 or not isinstance(data, dict) or "error" in data:
            detail = data.get("message") or data.get("error") if isinstance(data, dict) else text
            raise DiscoveryError(f"etcd {path} failed ({status}): {detail or text[:200]}")
        result = data.get("result", data)
        return result if isinstance(result, dict) else {}

    async def put(self, key: str, value: bytes, lease: int = 0) -> None:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        await self.call("kv/put", body)

    async def range_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Every key under ``prefix`` as ``{"key", "lease", "value"}`` (value parsed as JSON)."""
        raw = prefix.encode("utf-8")
        data = await self.call("kv/range", {"key": _b64(raw), "range_end": _b64(_prefix_end(raw))})
        entries = []
        for kv in data.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode("utf-8")
            raw_value = base64.b64decode(kv.get("value", ""))
            try:
                value = json.loads(raw_value)
            except ValueError:
                value = raw_value.decode("utf-8", "replace")
            entries.append({"key": key, "lease": str(int(kv.get("lease", 0))), "value": value})
        return entries

    async def grant(self, ttl: int, lease_id: int) -> int:
        data = await self.call("lease/grant", {"TTL": str(ttl), "ID": str(lease_id)})
        return int(data.get("ID", lease_id))

    async def keep_alive(self, lease_id: int) -> int:
        """Renew a lease once; returns its TTL (0 or less: the lease is gone)."""
        data = await self.call("lease/keepalive", {"ID": str(lease_id)})
        return int(data.get("TTL", 0))

    async def revoke(self, lease_id: int) -> None:
        await self.call("lease/revoke", {"ID": str(lease_id)})

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class EtcdStore:
    """Records under one lease (id ``lease_id``, TTL ``ttl`` s) kept alive every ``ttl / 3``."""

    def __init__(self, url: str, lease_id: int, *, ttl: int = 10) -> None:
        self.client = EtcdClient(url)
        self.lease_id = lease_id
        self.ttl = ttl
        self._keep: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.lease_id = await self.client.grant(self.ttl, self.lease_id)
        self._keep = asyncio.create_task(self._keep_alive(), name="etcd-keepalive")

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(max(self.ttl / 3, 0.2))
            with contextlib.suppress(DiscoveryError):
                await self.client.keep_alive(self.lease_id)

    async def put(self, key: str, record: dict[str, Any]) -> None:
        await self.client.put(key, _dump(record), self.lease_id)

    async def close(self, *, deregister: bool = True) -> None:
        if self._keep is not None:
            self._keep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._keep
            self._keep = None
        if deregister:
            with contextlib.suppress(DiscoveryError):
                await self.client.revoke(self.lease_id)
        await self.client.close()
