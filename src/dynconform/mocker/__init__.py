"""The reference implementation: a mock engine behind a frontend and workers that speak
ai-dynamo 1.6.1's discovery, event and request planes.

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

The servers run as processes (:class:`MockerStack`, ``dynconform mocker serve``) or in-process
(:class:`Worker`, :class:`Frontend`); a stack kills and restarts its workers on request
(:mod:`dynconform.mocker.control`); :data:`VIOLATIONS` lists the modes that break one
contract rule or behaviour on purpose.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from dynconform.mocker.config import EngineConfig, TimingModel
from dynconform.mocker.detokenizer import IncrementalDetokenizer
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
    TokenLogprob,
    Usage,
)
from dynconform.mocker.scheduler import Batch, Scheduler
from dynconform.mocker.tokenizer import ChatTemplate, ChatTemplateError, Tokenizer
from dynconform.mocker.violations import VIOLATIONS, ViolationMode

__all__ = [
    "CHAT_TEMPLATE",
    "MODEL_FILES",
    "VIOLATIONS",
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
    "Frontend",
    "FrontendConfig",
    "GenerateRequest",
    "IncrementalDetokenizer",
    "KvBlockManager",
    "KvCleared",
    "KvEvent",
    "KvMetrics",
    "KvRemoved",
    "KvStored",
    "MockEngine",
    "MockerStack",
    "ModelDir",
    "ModelDirError",
    "PrefillCompleted",
    "QueuedRequests",
    "RequestError",
    "ScheduledRequests",
    "Scheduler",
    "ServeError",
    "ServeOptions",
    "StoredBlock",
    "TimingModel",
    "TokenLogprob",
    "Tokenizer",
    "Usage",
    "ViolationMode",
    "Worker",
    "WorkerConfig",
    "WorkerError",
    "build_model_dir",
    "load_model_dir",
    "serve",
]

#: The servers load on first use: ``python -m dynconform.mocker.worker`` must not import
#: its own module before running it.
_LAZY = {
    "Frontend": "frontend",
    "FrontendConfig": "frontend",
    "MockerStack": "serve",
    "ServeError": "serve",
    "ServeOptions": "serve",
    "serve": "serve",
    "Worker": "worker",
    "WorkerConfig": "worker",
    "WorkerError": "worker",
}

if TYPE_CHECKING:
    from dynconform.mocker.frontend import Frontend, FrontendConfig
    from dynconform.mocker.serve import MockerStack, ServeError, ServeOptions, serve
    from dynconform.mocker.worker import Worker, WorkerConfig, WorkerError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"dynconform.mocker.{module}"), name)
