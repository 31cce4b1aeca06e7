"""The reference implementation's mock engine: model directory, KV cache, scheduler, timing.

A mock worker serves a tiny local model directory (:func:`build_model_dir`,
:func:`load_model_dir`) with a :class:`MockEngine`: continuous batching over a KV block
manager with prefix caching and LRU eviction, simulated prefill and decode time, and
deterministic output tokens. Everything a Dynamo worker publishes is reported as typed
events (:data:`EngineEvent`) whose ``to_wire`` gives the ai-dynamo 1.6.1 payloads::

    from dynconform.mocker import EngineConfig, GenerateRequest, MockEngine, load_model_dir

    model = load_model_dir("tiny")
    async with MockEngine.from_model_dir(model, EngineConfig(speedup_ratio=0)) as engine:
        prompt = tuple(model.encode_chat([{"role": "user", "content": "hello"}]))
        result = await engine.complete(GenerateRequest("r1", prompt, max_tokens=8))
"""

from __future__ import annotations

from dynconform.mocker.config import EngineConfig, TimingModel
from dynconform.mocker.engine import EngineClosedError, MockEngine
from dynconform.mocker.events import (
    EngineEvent,
    EventSink,
    ForwardPassMetrics,
    KvCleared,
    KvEvent,
    KvMetrics,
    KvRemoved,
    KvStored,
    PrefillCompleted,
    QueuedRequests,
    ScheduledRequests,
    StoredBlock,
)
from dynconform.mocker.kv_cache import BlockTable, KvBlockManager
from dynconform.mocker.model_dir import (
    CHAT_TEMPLATE,
    MODEL_FILES,
    ModelDir,
    ModelDirError,
    build_model_dir,
    load_model_dir,
)
from dynconform.mocker.protocol import (
    EngineOutput,
    FinishReason,
    GenerateRequest,
    RequestError,
    Usage,
)
from dynconform.mocker.scheduler import Batch, Scheduler
from dynconform.mocker.tokenizer import ChatTemplate, ChatTemplateError, Tokenizer

__all__ = [
    "CHAT_TEMPLATE",
    "MODEL_FILES",
    "Batch",
    "BlockTable",
    "ChatTemplate",
    "ChatTemplateError",
    "EngineClosedError",
    "EngineConfig",
    "EngineEvent",
    "EngineOutput",
    "EventSink",
    "FinishReason",
    "ForwardPassMetrics",
    "GenerateRequest",
    "KvBlockManager",
    "KvCleared",
    "KvEvent",
    "KvMetrics",
    "KvRemoved",
    "KvStored",
    "MockEngine",
    "ModelDir",
    "ModelDirError",
    "PrefillCompleted",
    "QueuedRequests",
    "RequestError",
    "ScheduledRequests",
    "Scheduler",
    "StoredBlock",
    "TimingModel",
    "Tokenizer",
    "Usage",
    "build_model_dir",
    "load_model_dir",
]
