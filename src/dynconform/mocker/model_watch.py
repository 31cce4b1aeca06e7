"""The frontend's view of discovery: which models are served, by which worker instances.

:class:`ModelWatcher` polls the file store or etcd and keeps, per served model name, its card,
its loaded model directory (for the tokenizer and chat template) and the instances that serve
it: the instances of the endpoint its Model record names (ai-dynamo's frontend routes by
endpoint, not by the Model record's instance id). An instance that fails is set aside for a
few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dynconform.mocker.discovery import DiscoveryError, EtcdClient, read_file_store
from dynconform.mocker.model_dir import ModelDir, ModelDirError, load_model_dir
from dynconform.mocker.records import card_checksum

__all__ = ["EtcdSource", "FileSource", "Instance", "ModelWatcher", "ServedModel"]


class Source(Protocol):
    async def entries(self) -> list[dict[str, Any]]: ...

    async def close(self) -> None: ...


class FileSource:
    """Records of a file store directory; files untouched for ``ttl`` seconds are ignored."""

    def __init__(self, root: Path, *, ttl: float = 10.0) -> None:
        self.root = Path(root)
        self.ttl = ttl

    async def entries(self) -> list[dict[str, Any]]:
        return read_file_store(self.root, max_age=self.ttl)

    async def close(self) -> None:
        return None


class EtcdSource:
    """Records under ``v1/`` in etcd."""

    def __init__(self, url: str) -> None:
        self.client = EtcdClient(url)

    async def entries(self) -> list[dict[str, Any]]:
        return await self.client.range_prefix("v1/")

    async def close(self) -> None:
        await self.client.close()


@dataclass(frozen=True, slots=True)
class Instance:
    """One worker endpoint instance, as its ``Endpoint`` record describes it."""

    record: dict[str, Any]

    @property
    def instance_id(self) -> int:
        return int(self.record["instance_id"])

    @property
    def scope(self) -> tuple[str, str, str]:
        return (self.record["namespace"], self.record["component"], self.record["endpoint"])

    @property
    def address(self) -> str:
        """``host:port`` of its TCP request plane (empty for other transports)."""
        tcp = self.record.get("transport", {}).get("tcp", "")
        return str(tcp).split("/", 1)[0]

    @property
    def path(self) -> str:
        tcp = self.record.get("transport", {}).get("tcp", "")
        return str(tcp).split("/", 1)[1] if "/" in str(tcp) else ""

    def health_view(self) -> dict[str, Any]:
        """The instance as the frontend's ``/health`` lists it."""
        return {k: v for k, v in self.record.items() if k != "type"}


@dataclass
class ServedModel:
    """A model the frontend serves."""

    name: str
    card: dict[str, Any]
    model_dir: ModelDir
    mdc_sum: str
    instances: list[Instance] = field(default_factory=list)


class ModelWatcher:
    """Keeps :attr:`models` and :attr:`instances` in step with discovery."""

    def __init__(self, source: Source, *, interval: float = 0.5, keep_gone: bool = False) -> None:
        self.source = source
        self.interval = interval
        #: keep serving (listing) models whose records left discovery: a violation mode
        self.keep_gone = keep_gone
        self.models: dict[str, ServedModel] = {}
        self.instances: list[Instance] = []
        #: the ``EventChannel`` records in discovery (where each worker publishes each topic)
        self.event_channels: list[dict[str, Any]] = []
        self._dirs: dict[str, ModelDir | None] = {}
        self._down: dict[int, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._next = 0
        self.changed = asyncio.Event()
        self.polled = 0

    async def start(self) -> None:
        with contextlib.suppress(DiscoveryError):
            await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="model-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.source.close()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            with contextlib.suppress(DiscoveryError):
                await self.refresh()

    def _model_dir(self, source_path: str) -> ModelDir | None:
        if source_path not in self._dirs:
            try:
                self._dirs[source_path] = load_model_dir(source_path)
            except ModelDirError:
                self._dirs[source_path] = None
        return self._dirs[source_path]

    async def refresh(self) -> None:
        """Read discovery once and rebuild the view."""
        entries = await self.source.entries()
        endpoints: dict[tuple[tuple[str, str, str], int], Instance] = {}
        cards: list[dict[str, Any]] = []
        channels: list[dict[str, Any]] = []
        for entry in entries:
            record = entry.get("value")
            if not isinstance(record, dict):
                continue
            try:
                if record.get("type") == "Endpoint":
                    instance = Instance(record)
                    endpoints[(instance.scope, instance.instance_id)] = instance
                elif record.get("type") == "Model" and isinstance(record.get("card_json"), dict):
                    cards.append(record)
                elif record.get("type") == "EventChannel":
                    channels.append(record)
            except (KeyError, TypeError, ValueError):
                continue
        by_scope: dict[tuple[str, str, str], list[Instance]] = {}
        for instance in endpoints.values():
            by_scope.setdefault(instance.scope, []).append(instance)
        models: dict[str, ServedModel] = {}
        for record in cards:
            card = record["card_json"]
            scope = (record.get("namespace"), record.get("component"), record.get("endpoint"))
            owners = by_scope.get(scope, [])  # type: ignore[arg-type]
            name = card.get("display_name")
            model_dir = self._model_dir(str(card.get("source_path", "")))
            if not owners or not isinstance(name, str) or model_dir is None:
                continue
            served = models.setdefault(
                name, ServedModel(name, card, model_dir, card_checksum(card))
            )
            known = {i.instance_id for i in served.instances}
            served.instances.extend(i for i in owners if i.instance_id not in known)
        for served in models.values():
            served.instances.sort(key=lambda i: i.instance_id)
        if self.keep_gone:
            for name, gone in self.models.items():
                if name not in models:
                    models[name] = ServedModel(name, gone.card, gone.model_dir, gone.mdc_sum)
        if set(models) != set(self.models) or any(
            [i.instance_id for i in m.instances]
            != [i.instance_id for i in self.models[n].instances]
            for n, m in models.items()
            if n in self.models
        ):
            self.changed.set()
        self.models = models
        self.instances = sorted(endpoints.values(), key=lambda i: (i.scope, i.instance_id))
        self.event_channels = channels
        self.polled += 1

    def set_aside(self, instance: Instance, seconds: float = 5.0) -> None:
        """Do not route to ``instance`` for ``seconds`` (it failed)."""
        self._down[instance.instance_id] = time.monotonic() + seconds

    def available(self, instance: Instance) -> bool:
        """Whether ``instance`` is not set aside."""
        return self._down.get(instance.instance_id, 0.0) <= time.monotonic()

    def candidates(self, model: ServedModel) -> list[Instance]:
        """The model's instances in round-robin order, failed ones last."""
        now = time.monotonic()
        instances = list(model.instances)
        if not instances:
            return []
        self._next = (self._next + 1) % len(instances)
        ordered = instances[self._next :] + instances[: self._next]
        up = [i for i in ordered if self._down.get(i.instance_id, 0.0) <= now]
        down = [i for i in ordered if i not in up]
        return up + down
