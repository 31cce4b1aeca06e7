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
from types import TracebackType

from dynconform.mocker.config import EngineConfig
from dynconform.mocker.events import EventSink, ForwardPassMetrics, KvMetrics
from dynconform.mocker.kv_cache import KvBlockManager
from dynconform.mocker.model_dir import ModelDir
from dynconform.mocker.protocol import EngineOutput, FinishReason, GenerateRequest
from dynconform.mocker.scheduler import Detokenize, Scheduler

__all__ = ["EngineClosedError", "MockEngine"]


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
        self._queues: dict[str, asyncio.Queue[EngineOutput]] = {}
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

        Raises :class:`~dynconform.mocker.protocol.RequestError` for a request that can never
        be served and :class:`EngineClosedError` after :meth:`aclose`.
        """
        if self._closed is not None:
            raise EngineClosedError(self._closed)
        self.scheduler.add(request)
        queue: asyncio.Queue[EngineOutput] = asyncio.Queue()
        self._queues[request.request_id] = queue
        self._wakeup.set()
        return queue

    async def generate(self, request: GenerateRequest) -> AsyncIterator[EngineOutput]:
        """Stream a request's chunks; closing the iterator early aborts the request.

        Wrap it in :func:`contextlib.aclosing` to abort as soon as the loop is left.
        """
        await self.start()
        queue = self.submit(request)
        finished = False
        try:
            while not finished:
                output = await queue.get()
                finished = output.finished
                yield output
        finally:
            self._queues.pop(request.request_id, None)
            if not finished:
                self.scheduler.abort(request.request_id)

    async def complete(self, request: GenerateRequest) -> EngineOutput:
        """Run a request to the end and return one output with all its tokens."""
        tokens: list[int] = []
        last: EngineOutput | None = None
        async for last in self.generate(request):
            tokens.extend(last.token_ids)
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
        if not self.scheduler.abort(request_id):
            return False
        queue = self._queues.pop(request_id, None)
        if queue is not None:
            queue.put_nowait(EngineOutput(request_id, (), FinishReason.CANCELLED))
        self._wakeup.set()
        return True

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
                for output in scheduler.complete(batch):
                    queue = self._queues.get(output.request_id)
                    if queue is not None:
                        queue.put_nowait(output)
                        if output.finished:
                            del self._queues[output.request_id]
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._closed = f"the engine failed: {exc}"
            self._end_all(FinishReason.ERROR, self._closed)

    def _end_all(self, reason: FinishReason, error: str | None) -> None:
        for request_id, queue in list(self._queues.items()):
            self.scheduler.abort(request_id)
            queue.put_nowait(EngineOutput(request_id, (), reason, error=error))
        self._queues.clear()
        self.scheduler.abort_all()
