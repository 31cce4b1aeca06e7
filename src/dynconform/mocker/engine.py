"""The asyncio mock engine: a background loop running forward passes in simulated time.

::

    async with MockEngine.from_model_dir(load_model_dir(path), EngineConfig(speedup_ratio=0),
                                         sink=events.append) as engine:
        async for chunk in engine.generate(GenerateRequest("r1", tuple(token_ids), 8)):
            ...  # chunk.token_ids; the last chunk has finish_reason and usage

The loop schedules a pass, sleeps its simulated duration, then streams the pass's tokens to
each request's iterator. Everything runs on the caller's event loop; no threads.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from types import TracebackType

from dynconform.contracts.hashing import tokens_hash
from dynconform.mocker.config import EngineConfig
from dynconform.mocker.events import EventSink, ForwardPassMetrics, KvMetrics
from dynconform.mocker.kv_cache import KvBlockManager
from dynconform.mocker.model_dir import ModelDir
from dynconform.mocker.protocol import EngineOutput, FinishReason, GenerateRequest, RequestError
from dynconform.mocker.scheduler import Detokenize, Scheduler

__all__ = ["EngineClosedError", "MockEngine"]

_GOLDEN = 0x9E3779B97F4A7C15


@dataclass(frozen=True, slots=True)
class _Route:
    """Where the outputs of one scheduled sequence go: a request's queue, as choice ``index``."""

    queue: asyncio.Queue[EngineOutput]
    request_id: str
    index: int


def _choices(request: GenerateRequest) -> list[GenerateRequest]:
    """The sequences of a request: itself, or one per choice (choice 0 seeded as ``n=1``)."""
    if request.n == 1:
        return [request]
    base = request.seed if request.seed is not None else tokens_hash(request.token_ids)
    return [
        replace(
            request,
            request_id=f"{request.request_id}#{i}",
            n=1,
            seed=base if i == 0 else (base + i * _GOLDEN) % 2**64,
        )
        for i in range(request.n)
    ]


class EngineClosedError(RuntimeError):
    """The engine was closed (or its loop failed) and takes no more requests."""


class MockEngine:
    """A mock LLM engine with a real KV block manager and simulated timing.

    ``sink`` receives every :data:`~dynconform.mocker.events.EngineEvent`, synchronously on
    the event loop; it must not block or raise (put the event on a queue to publish it).
    """

    def __init__(
        self,
        config: EngineConfig | None = None,
        *,
        vocab_size: int = 32000,
        special_token_ids: frozenset[int] = frozenset(),
        detokenize: Detokenize | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.config = config or EngineConfig()
        self.scheduler = Scheduler(
            self.config,
            vocab_size=vocab_size,
            special_token_ids=special_token_ids,
            detokenize=detokenize,
            sink=sink,
        )
        self._routes: dict[str, _Route] = {}  # by sequence id
        self._sequences: dict[str, list[str]] = {}  # request id -> its sequence ids
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed: str | None = None

    @classmethod
    def from_model_dir(
        cls,
        model_dir: ModelDir,
        config: EngineConfig | None = None,
        *,
        sink: EventSink | None = None,
    ) -> MockEngine:
        """An engine whose output tokens come from ``model_dir``'s tokenizer vocabulary."""
        tokenizer = model_dir.tokenizer
        return cls(
            config,
            vocab_size=tokenizer.vocab_size,
            special_token_ids=tokenizer.special_token_ids,
            detokenize=tokenizer.decode,
            sink=sink,
        )

    @property
    def kv(self) -> KvBlockManager:
        """The KV block manager."""
        return self.scheduler.kv

    @property
    def running(self) -> bool:
        """Whether the background loop is running."""
        return self._task is not None and not self._task.done()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the loop (idempotent); emits an idle snapshot and the KV usage first."""
        if self._closed is not None:
            raise EngineClosedError(self._closed)
        if self._task is None:
            self.scheduler.heartbeat()
            self.scheduler.report_kv_metrics()
            self._task = asyncio.create_task(self._run(), name="mock-engine")

    async def aclose(self) -> None:
        """Stop the loop; pending requests end with ``cancelled``."""
        if self._closed is None:
            self._closed = "the engine is closed"
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._end_all(FinishReason.CANCELLED, None)

    async def __aenter__(self) -> MockEngine:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- requests ----------------------------------------------------------------------------

    def submit(self, request: GenerateRequest) -> asyncio.Queue[EngineOutput]:
        """Queue a request and return the queue its chunks arrive on.

        A request with ``n`` choices runs as ``n`` sequences; their chunks share the queue,
        each with its choice's ``index``, and ``n`` of them are ``finished``.
        Raises :class:`~dynconform.mocker.protocol.RequestError` for a request that can never
        be served and :class:`EngineClosedError` after :meth:`aclose`.
        """
        if self._closed is not None:
            raise EngineClosedError(self._closed)
        if request.n < 1:
            raise RequestError(f"n must be at least 1, got {request.n}")
        if request.request_id in self._sequences:
            raise RequestError(f"request id {request.request_id!r} is already active")
        sequences = _choices(request)
        added: list[str] = []
        try:
            for sequence in sequences:
                self.scheduler.add(sequence)
                added.append(sequence.request_id)
        except RequestError:
            for sequence_id in added:
                self.scheduler.abort(sequence_id)
            raise
        queue: asyncio.Queue[EngineOutput] = asyncio.Queue()
        for index, sequence_id in enumerate(added):
            self._routes[sequence_id] = _Route(queue, request.request_id, index)
        self._sequences[request.request_id] = added
        self._wakeup.set()
        return queue

    async def generate(self, request: GenerateRequest) -> AsyncIterator[EngineOutput]:
        """Stream a request's chunks (of every choice); closing the iterator early aborts
        the request.

        Wrap it in :func:`contextlib.aclosing` to abort as soon as the loop is left.
        """
        await self.start()
        queue = self.submit(request)
        remaining = request.n
        try:
            while remaining:
                output = await queue.get()
                if output.finished:
                    remaining -= 1
                yield output
        finally:
            if remaining:
                self._drop(request.request_id)
            self._sequences.pop(request.request_id, None)

    async def complete(self, request: GenerateRequest) -> EngineOutput:
        """Run a request to the end and return one output with all tokens of choice 0."""
        tokens: list[int] = []
        last: EngineOutput | None = None
        async for output in self.generate(request):
            if output.index == 0:
                tokens.extend(output.token_ids)
                last = output
        assert last is not None
        return EngineOutput(
            request.request_id,
            tuple(tokens),
            last.finish_reason,
            last.stop_reason,
            last.usage,
            last.error,
        )

    def abort(self, request_id: str) -> bool:
        """Cancel a request: its stream ends with ``cancelled``; ``False`` if not active."""
        if not self._drop(request_id, FinishReason.CANCELLED):
            return False
        self._wakeup.set()
        return True

    def _drop(self, request_id: str, reason: FinishReason | None = None) -> bool:
        """Abort a request's active sequences; with ``reason``, end each choice's stream."""
        dropped = False
        for sequence_id in self._sequences.pop(request_id, ()):
            route = self._routes.pop(sequence_id, None)
            if not self.scheduler.abort(sequence_id) or route is None:
                continue
            dropped = True
            if reason is not None:
                route.queue.put_nowait(EngineOutput(request_id, (), reason, index=route.index))
        return dropped

    # -- snapshots ---------------------------------------------------------------------------

    def heartbeat(self) -> ForwardPassMetrics:
        """Emit and return an idle forward-pass snapshot (publish one a second when idle)."""
        return self.scheduler.heartbeat()

    def kv_metrics(self) -> KvMetrics:
        """Current KV usage."""
        return self.scheduler.kv_metrics()

    # -- loop --------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        scheduler = self.scheduler
        try:
            while True:
                if not scheduler.has_work:
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                started = loop.time()
                batch = scheduler.schedule()
                if batch.empty:  # pragma: no cover - a lone request always fits
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await asyncio.sleep(max(0.0, batch.duration_s - (loop.time() - started)))
                routes = self._routes
                for output in scheduler.complete(batch):
                    sequence_id = output.request_id
                    route = routes.get(sequence_id)
                    if route is None:
                        continue
                    if route.request_id != sequence_id:
                        output = replace(output, request_id=route.request_id, index=route.index)
                    route.queue.put_nowait(output)
                    if output.finished:
                        del routes[sequence_id]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._closed = f"the engine failed: {exc}"
            self._end_all(FinishReason.ERROR, self._closed)

    def _end_all(self, reason: FinishReason, error: str | None) -> None:
        for sequence_id, route in list(self._routes.items()):
            self.scheduler.abort(sequence_id)
            output = EngineOutput(route.request_id, (), reason, error=error, index=route.index)
            route.queue.put_nowait(output)
        self._routes.clear()
        self._sequences.clear()
        self.scheduler.abort_all()
