"""The synchronous core of the mock engine: vLLM-style continuous batching.

A forward pass is :meth:`Scheduler.schedule` then :meth:`Scheduler.complete`; the asyncio
engine sleeps the pass's simulated duration in between. The behaviour follows what ai-dynamo
1.6.1's mocker shows on the wire (its KV events and forward-pass metrics):

- *schedule*: running requests first, in admission order: a decoding request takes one
  token of the ``max_num_batched_tokens`` budget, a request in chunked prefill its next
  chunk. Then waiting requests are admitted in arrival order while the budget,
  ``max_num_seqs`` and KV blocks allow; the first that does not fit blocks the queue.
  Admission reuses cached prefix blocks and allocates (stores) the rest of the prompt.
  A preempted request whose prompt is still cached resumes decoding without a prefill.
  The pass's :class:`ForwardPassMetrics` is emitted here.
- *complete*: every request whose prefill is done generates one token; finished requests
  release their blocks; the others then extend their KV in admission order: a token that
  fills a block stores it, one that starts a block allocates it (evicting cached blocks).
  If no block is left, the newest (``lifo``) or oldest (``fifo``) running request is
  preempted: its blocks are freed, it keeps its tokens and waits at the head of the queue.

Evictions within one phase are reported as one ``removed`` event.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dynconform.contracts.hashing import tokens_hash
from dynconform.mocker.config import EngineConfig
from dynconform.mocker.events import (
    EventSink,
    ForwardPassMetrics,
    KvMetrics,
    PrefillCompleted,
    QueuedRequests,
    ScheduledRequests,
)
from dynconform.mocker.kv_cache import BlockTable, KvBlockManager
from dynconform.mocker.protocol import (
    EngineOutput,
    FinishReason,
    GenerateRequest,
    RequestError,
    TokenLogprob,
    Usage,
)

__all__ = ["Batch", "Scheduler"]

U32 = 2**32
#: Mixed into a sequence's seed for its log-probability stream, so that asking for logprobs
#: never changes the generated tokens.
_LOGPROB_SALT = 0x6C6F6770726F6273
Detokenize = Callable[[Sequence[int]], str]


class _Sequence:
    __slots__ = (
        "cached_tokens",
        "computed",
        "decoding",
        "generated",
        "lp_rng",
        "max_tokens",
        "prefill_reported",
        "prompt_len",
        "request",
        "rng",
        "running",
        "stop_ids",
        "table",
    )

    def __init__(self, request: GenerateRequest, table: BlockTable, max_tokens: int) -> None:
        self.request = request
        self.table = table
        self.prompt_len = len(request.token_ids)
        self.max_tokens = max_tokens
        self.computed = 0
        self.decoding = False
        self.running = False
        self.generated: list[int] = []
        self.cached_tokens: int | None = None
        self.prefill_reported = False
        self.stop_ids = frozenset(request.stop_token_ids)
        material = request.seed if request.seed is not None else tokens_hash(request.token_ids)
        self.rng = random.Random(material)
        self.lp_rng = None if request.logprobs is None else random.Random(material ^ _LOGPROB_SALT)

    @property
    def length(self) -> int:
        return len(self.table.token_ids)


@dataclass
class Batch:
    """The work of one forward pass, between :meth:`~Scheduler.schedule` and ``complete``."""

    duration_s: float
    """Simulated wall time of the pass (after the speedup ratios)."""
    preempted: tuple[str, ...]
    """Requests preempted while scheduling (to fit a chunked prefill's next chunk)."""
    metrics: ForwardPassMetrics
    """What was scheduled (as emitted) and what still waits."""
    _work: list[tuple[_Sequence, int]] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        """Whether the pass has nothing to compute."""
        return not self._work

    @property
    def request_ids(self) -> tuple[str, ...]:
        """Requests in this pass, in running order."""
        return tuple(seq.request.request_id for seq, _ in self._work)


class Scheduler:
    """Continuous batching over a :class:`KvBlockManager`, reporting through one sink.

    ``vocab_size`` and ``special_token_ids`` bound the random output tokens; ``detokenize``
    (token ids -> text) is needed for requests with stop strings. Events: KV events from
    the block manager, :class:`ForwardPassMetrics` after each pass, :class:`PrefillCompleted`
    once per request, and :class:`KvMetrics` whenever the used block count changed.
    """

    def __init__(
        self,
        config: EngineConfig,
        *,
        vocab_size: int = 32000,
        special_token_ids: frozenset[int] = frozenset(),
        detokenize: Detokenize | None = None,
        sink: EventSink | None = None,
    ) -> None:
        self.config = config
        self._sink = sink
        self.kv = KvBlockManager(
            config.block_size,
            config.num_gpu_blocks,
            enable_prefix_caching=config.enable_prefix_caching,
            sink=sink,
            coalesce_removals=True,
        )
        self._pool = [t for t in range(min(vocab_size, U32)) if t not in special_token_ids]
        if config.output_mode == "random" and not self._pool:
            raise ValueError("the vocabulary has no non-special token to generate")
        self._detokenize = detokenize
        self._waiting: deque[_Sequence] = deque()
        self._running: list[_Sequence] = []
        self._by_id: dict[str, _Sequence] = {}
        self._counter = 0
        self._last_kv_used: int | None = None
        self.num_preemptions = 0

    # -- requests ----------------------------------------------------------------------------

    @property
    def num_waiting(self) -> int:
        """Requests waiting to be (re)admitted."""
        return len(self._waiting)

    @property
    def num_running(self) -> int:
        """Requests holding KV blocks (in prefill or decode)."""
        return len(self._running)

    @property
    def waiting_ids(self) -> tuple[str, ...]:
        """Ids of the waiting requests, next to be admitted first."""
        return tuple(seq.request.request_id for seq in self._waiting)

    @property
    def has_work(self) -> bool:
        """Whether any request is waiting or running."""
        return bool(self._by_id)

    def add(self, request: GenerateRequest) -> None:
        """Queue a request; raises :class:`RequestError` when it can never be served."""
        cfg = self.config
        rid = request.request_id
        prompt = len(request.token_ids)
        if rid in self._by_id:
            raise RequestError(f"request id {rid!r} is already active")
        if not prompt:
            raise RequestError("the prompt has no tokens")
        if min(request.token_ids) < 0 or max(request.token_ids) >= U32:
            raise RequestError("token ids must be unsigned 32-bit integers")
        if request.max_tokens is not None and request.max_tokens < 1:
            raise RequestError(f"max_tokens must be at least 1, got {request.max_tokens}")
        if request.stop and self._detokenize is None:
            raise RequestError("stop strings need an engine with a tokenizer")
        if cfg.max_model_len is not None and prompt >= cfg.max_model_len:
            raise RequestError(
                f"the prompt has {prompt} tokens; the model's context length is {cfg.max_model_len}"
            )
        if cfg.max_model_len is not None:
            room = cfg.max_model_len - prompt
            max_tokens = room if request.max_tokens is None else min(request.max_tokens, room)
        else:
            max_tokens = request.max_tokens or cfg.default_max_tokens
        if not cfg.enable_chunked_prefill and prompt > cfg.max_num_batched_tokens:
            raise RequestError(
                f"the prompt has {prompt} tokens, more than max_num_batched_tokens "
                f"({cfg.max_num_batched_tokens}) without chunked prefill"
            )
        blocks = -(-(prompt + max_tokens) // cfg.block_size)
        if blocks > cfg.num_gpu_blocks:
            raise RequestError(
                f"the request needs {blocks} KV blocks; the cache has {cfg.num_gpu_blocks}"
            )
        seq = _Sequence(request, self.kv.new_table(request.token_ids), max_tokens)
        self._by_id[rid] = seq
        self._waiting.append(seq)

    def abort(self, request_id: str) -> bool:
        """Drop a request and free its blocks; ``False`` if it is not active."""
        seq = self._by_id.pop(request_id, None)
        if seq is None:
            return False
        if seq.running:
            seq.running = False
            self._running.remove(seq)
            self.kv.free(seq.table)
        else:
            self._waiting.remove(seq)
        self.report_kv_metrics()
        return True

    def abort_all(self) -> list[str]:
        """Drop every active request; returns their ids."""
        request_ids = list(self._by_id)
        for request_id in request_ids:
            self.abort(request_id)
        return request_ids

    # -- one forward pass --------------------------------------------------------------------

    def schedule(self) -> Batch:
        """Choose the next pass's work and allocate its prompt blocks.

        Emits the KV events of those allocations, then the pass's
        :class:`ForwardPassMetrics` (what was scheduled, what still waits).
        """
        cfg, kv = self.config, self.kv
        bs = cfg.block_size
        budget = cfg.max_num_batched_tokens
        work: list[tuple[_Sequence, int, int]] = []  # (sequence, prompt tokens now, kv before)
        preempted: list[str] = []

        for seq in list(self._running):
            if budget <= 0:
                break
            if not seq.running:
                continue
            if seq.decoding:
                budget -= 1
                work.append((seq, 0, 0))
                continue
            chunk = min(seq.length - seq.computed, budget)
            while seq.running and not kv.allocate(seq.table, seq.computed + chunk):
                victim = self._victim()
                for i, (other, other_chunk, _) in enumerate(work):
                    if other is victim:
                        budget += other_chunk or 1
                        del work[i]
                        break
                self._preempt(victim)
                preempted.append(victim.request.request_id)
            if seq.running:
                budget -= chunk
                work.append((seq, chunk, seq.computed))

        while (
            not preempted and self._waiting and budget > 0 and len(self._running) < cfg.max_num_seqs
        ):
            seq = self._waiting[0]
            # Whole cached blocks, but at least one token to compute (like vLLM).
            hit_blocks = min(kv.cached_prefix_blocks(seq.table), (seq.length - 1) // bs)
            hit = hit_blocks * bs
            remaining = seq.length - hit
            # A preempted request whose prompt is still cached resumes decoding directly.
            resume = bool(seq.generated) and hit >= seq.prompt_len
            if resume:
                chunk, cost = 0, 1
            elif remaining <= budget or (
                not cfg.enable_chunked_prefill and budget == cfg.max_num_batched_tokens
            ):
                chunk = cost = remaining
            elif cfg.enable_chunked_prefill:
                chunk = cost = budget
            else:
                break
            if not kv.allocate(seq.table, seq.length if resume else hit + chunk):
                break
            budget -= cost
            seq.computed = hit
            seq.running = True
            seq.decoding = resume
            if seq.cached_tokens is None:
                seq.cached_tokens = hit
            self._waiting.popleft()
            self._running.append(seq)
            work.append((seq, chunk, hit))

        kv.flush()
        prefills = [(chunk, seq.prompt_len, before) for seq, chunk, before in work if chunk]
        decode_lengths = [seq.length for seq, chunk, _ in work if not chunk]
        scheduled = ScheduledRequests.of(prefills, decode_lengths)
        duration = cfg.pass_seconds(
            scheduled.sum_prefill_tokens, len(decode_lengths), sum(decode_lengths)
        )
        if work:
            self._counter += 1
        metrics = ForwardPassMetrics(self._counter, duration, scheduled, self._queued())
        if work:
            self._emit(metrics)
        return Batch(
            duration_s=duration,
            preempted=tuple(preempted),
            metrics=metrics,
            _work=[(seq, chunk) for seq, chunk, _ in work],
        )

    def complete(self, batch: Batch) -> list[EngineOutput]:
        """Compute the pass: generate one token per sequence (emits KV and prefill events).

        Every sequence whose prefill is done generates a token; finished requests release
        their blocks; then the others extend their KV in running order. A token that needs a
        new block when none is free preempts the newest (``lifo``) or oldest (``fifo``)
        running request, possibly its own; a request preempted so keeps its token.
        """
        generated: list[
            tuple[_Sequence, int, tuple[FinishReason, int | str | None] | None, TokenLogprob | None]
        ] = []
        for seq, chunk in batch._work:
            if not seq.running:
                continue
            if chunk:
                seq.computed += chunk
                if seq.computed < seq.length:
                    continue
                seq.decoding = True
            else:
                seq.computed = seq.length
            if not seq.prefill_reported:
                seq.prefill_reported = True
                self._emit(PrefillCompleted(seq.request.request_id))
            token = self._next_token(seq)
            seq.generated.append(token)
            logprob = None if seq.lp_rng is None else self._logprob(seq, token)
            generated.append((seq, token, self._finish_reason(seq, token), logprob))
        outputs: list[EngineOutput] = []
        for seq, token, finish, logprob in generated:
            if finish is not None:
                output = self._finish(seq, token, *finish)
                if logprob is not None:
                    output = replace(output, logprobs=(logprob,))
                outputs.append(output)
        for seq, token, finish, logprob in generated:
            if finish is None:
                self._extend(seq, token)
                logprobs = None if logprob is None else (logprob,)
                outputs.append(EngineOutput(seq.request.request_id, (token,), logprobs=logprobs))
        self.kv.flush()
        self.report_kv_metrics()
        return outputs

    def step(self) -> tuple[Batch, list[EngineOutput]]:
        """One whole pass without waiting: :meth:`schedule` then :meth:`complete`."""
        batch = self.schedule()
        return batch, self.complete(batch)

    # -- snapshots ---------------------------------------------------------------------------

    def heartbeat(self) -> ForwardPassMetrics:
        """Emit and return an idle forward-pass snapshot (the real worker sends one a second)."""
        self._counter += 1
        metrics = ForwardPassMetrics(self._counter, 0.0, ScheduledRequests(), self._queued())
        self._emit(metrics)
        return metrics

    def kv_metrics(self) -> KvMetrics:
        """Current KV usage."""
        return KvMetrics(self.kv.used_blocks)

    def report_kv_metrics(self) -> None:
        """Emit :class:`KvMetrics` if the used block count changed since the last one."""
        used = self.kv.used_blocks
        if used != self._last_kv_used:
            self._last_kv_used = used
            self._emit(KvMetrics(used))

    # -- internals ---------------------------------------------------------------------------

    def _emit(self, event: ForwardPassMetrics | KvMetrics | PrefillCompleted) -> None:
        if self._sink is not None:
            self._sink(event)

    def _queued(self) -> QueuedRequests:
        return QueuedRequests.of(
            [s.length for s in self._waiting if not s.generated],
            [s.length for s in self._waiting if s.generated],
        )

    def _victim(self) -> _Sequence:
        return self._running[-1] if self.config.preemption_mode == "lifo" else self._running[0]

    def _preempt(self, seq: _Sequence) -> None:
        self._running.remove(seq)
        self.kv.free(seq.table)
        seq.running = False
        seq.computed = 0
        seq.decoding = False
        self._waiting.appendleft(seq)
        self.num_preemptions += 1

    def _next_token(self, seq: _Sequence) -> int:
        if self.config.output_mode == "echo":
            prompt = seq.request.token_ids
            return prompt[len(seq.generated) % len(prompt)]
        return self._pool[seq.rng.randrange(len(self._pool))]

    def _logprob(self, seq: _Sequence, token: int) -> TokenLogprob:
        """A seeded, plausible distribution at this position: the token's probability, and
        ``logprobs`` alternatives that share the rest of the mass (so they sum below 1)."""
        rng = seq.lp_rng
        assert rng is not None
        chosen = 0.05 + 0.9 * rng.random()
        count = seq.request.logprobs or 0
        if count == 0:
            return TokenLogprob(token, math.log(chosen))
        pool = self._pool or list(seq.request.token_ids)
        others = [t for t in rng.sample(pool, min(len(pool), count + 1)) if t != token][:count]
        weights = [rng.random() + 1e-3 for _ in others]
        scale = (1.0 - chosen) * 0.9 / sum(weights)
        entries = [(token, math.log(chosen))]
        entries += [(t, math.log(w * scale)) for t, w in zip(others, weights, strict=True)]
        entries.sort(key=lambda entry: (-entry[1], entry[0]))
        return TokenLogprob(token, math.log(chosen), tuple(entries[:count]))

    def _finish_reason(
        self, seq: _Sequence, token: int
    ) -> tuple[FinishReason, int | str | None] | None:
        request = seq.request
        if len(seq.generated) >= request.min_tokens:
            if token in request.eos_token_ids and not request.ignore_eos:
                return FinishReason.EOS, token
            if token in seq.stop_ids:
                return FinishReason.STOP, token
            if request.stop and self._detokenize is not None:
                text = self._detokenize(seq.generated)
                for stop in request.stop:
                    if stop and stop in text:
                        return FinishReason.STOP, stop
        if len(seq.generated) >= seq.max_tokens:
            return FinishReason.LENGTH, None
        return None

    def _extend(self, seq: _Sequence, token: int) -> None:
        if not seq.running:  # preempted by another sequence's token in this pass
            seq.table.token_ids.append(token)
            return
        held = self.kv.append_token(seq.table, token)
        while not held:
            victim = self._victim()
            self._preempt(victim)
            held = victim is seq or self.kv.allocate(seq.table, seq.length)

    def _finish(
        self, seq: _Sequence, token: int, reason: FinishReason, stop_reason: int | str | None
    ) -> EngineOutput:
        rid = seq.request.request_id
        seq.table.token_ids.append(token)  # the last token's KV is never computed
        seq.running = False
        self._running.remove(seq)
        del self._by_id[rid]
        self.kv.free(seq.table)
        usage = Usage(seq.prompt_len, len(seq.generated), seq.cached_tokens or 0)
        return EngineOutput(rid, (token,), reason, stop_reason, usage)
