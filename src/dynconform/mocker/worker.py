"""A mock worker process: one :class:`MockEngine` served the way an ai-dynamo 1.6.1 worker is.

``python -m dynconform.mocker.worker --model-path DIR`` registers the worker in discovery
(file directory or etcd), publishes its events (ZMQ or NATS), serves requests on Dynamo's TCP
request plane and answers ``/health``, ``/live`` and ``/metrics`` on its system port. SIGTERM
or Ctrl-C deregisters it and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal, cast

from dynconform.contracts.discovery_keys import format_key
from dynconform.contracts.event_subjects import KNOWN_TOPICS, TOPIC_KV_EVENTS
from dynconform.contracts.tcp_wire import KV_QUERY_ENDPOINT_PREFIX
from dynconform.mocker._signals import serve_until_signalled
from dynconform.mocker.config import EngineConfig
from dynconform.mocker.discovery import DiscoveryError, DiscoveryStore, EtcdStore, FileStore
from dynconform.mocker.engine import EngineClosedError, MockEngine
from dynconform.mocker.event_plane import NatsPublisher, Publisher, ZmqPublisher
from dynconform.mocker.kv_query import LocalKvIndex
from dynconform.mocker.logprobs import TokenText, engine_fields
from dynconform.mocker.model_dir import ModelDir, ModelDirError, load_model_dir
from dynconform.mocker.protocol import EngineOutput, GenerateRequest, RequestError
from dynconform.mocker.publishing import HEARTBEAT_TOPIC, EventPump
from dynconform.mocker.records import (
    EndpointId,
    build_card,
    endpoint_path,
    endpoint_record,
    event_channel_record,
    key_of,
    kv_event_source_record,
    model_record,
    new_instance_id,
    new_publisher_id,
    tcp_transport,
)
from dynconform.mocker.request_plane import IncomingRequest, RequestPlaneServer
from dynconform.mocker.system_server import SystemServer
from dynconform.mocker.violations import UnknownViolationError, check_modes
from dynconform.mocker.worker_metrics import WorkerMetrics

__all__ = ["Worker", "WorkerConfig", "WorkerError", "main"]

DEFAULT_FILE_KV = "/tmp/dynamo_store_kv"


class WorkerError(RuntimeError):
    """The worker cannot start (bad input, unreachable etcd/NATS, port in use); one line."""


@dataclass
class WorkerConfig:
    """Everything a worker needs; defaults give the embedded topology (file + ZMQ)."""

    model_path: Path
    model_name: str | None = None
    endpoint: EndpointId = field(default_factory=EndpointId)
    host: str = "127.0.0.1"
    request_port: int = 0
    system_port: int = 0
    discovery: Literal["file", "etcd"] = "file"
    file_kv: Path = Path(DEFAULT_FILE_KV)
    etcd_url: str = "http://127.0.0.1:2379"
    event_plane: Literal["zmq", "nats"] = "zmq"
    nats_url: str = "nats://127.0.0.1:4222"
    lease_ttl: int = 10
    engine: EngineConfig = field(default_factory=EngineConfig)
    violations: frozenset[str] = frozenset()
    record_requests: Path | None = None
    ready_file: Path | None = None
    startup_time: float = 0.0
    crash_after_tokens: int | None = None
    stall_after_tokens: int | None = None
    heartbeat_s: float = 1.0


def _annotated(
    output: EngineOutput, token_text: TokenText | None = None, *, indexed: bool = False
) -> dict[str, Any]:
    """An ``Annotated<LLMEngineOutput>`` as 1.6.1 serializes it (``None`` options left out).

    ``indexed``: the request has several choices, so each output names its ``index``;
    ``token_text`` names the tokens of the log probabilities.
    """
    if output.error:
        return _error(output.error)
    usage = output.usage
    data: dict[str, Any] = {
        "token_ids": list(output.token_ids),
        "tokens": None,
        "text": None,
        "output_type": "text",
        "cum_log_probs": None,
        "log_probs": None,
        "top_logprobs": None,
        "finish_reason": None if output.finish_reason is None else output.finish_reason.value,
        "index": output.index if indexed else None,
    }
    if output.logprobs is not None and token_text is not None:
        data.update(engine_fields(output.logprobs, token_text))
    if output.stop_reason is not None:
        data["stop_reason"] = output.stop_reason
    if usage is not None:
        data["completion_usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"audio_tokens": None, "cached_tokens": usage.cached_tokens},
        }
    return {"data": data}


def _error(message: str) -> dict[str, Any]:
    return {"event": "error", "comment": [message]}


class Worker:
    """One mock worker; ``async with Worker(config) as worker:`` serves until the block ends."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self.violations = config.violations
        self.instance_id = new_instance_id()
        self.model: ModelDir | None = None
        self.engine: MockEngine | None = None
        self.publishers: dict[str, Publisher] = {}
        self.pump: EventPump | None = None
        self.store: DiscoveryStore | None = None
        self.server: RequestPlaneServer | None = None
        self.system: SystemServer | None = None
        self.metrics: WorkerMetrics | None = None
        self.keys: list[str] = []
        self.card: dict[str, Any] = {}
        self._nc: Any = None
        self._record: IO[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._tokens_sent = 0
        self.kv_query_endpoint = ""
        self.kv_index = LocalKvIndex(self.instance_id)

    # -- identity ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> EndpointId:
        return self.config.endpoint

    @property
    def model_name(self) -> str:
        assert self.model is not None
        return self.config.model_name or self.model.name

    @property
    def request_path(self) -> str:
        """The request-plane path of the generate endpoint."""
        return endpoint_path(self.instance_id, self.endpoint)

    @property
    def kv_query_path(self) -> str:
        """The request-plane path of the KV state query source (once started)."""
        return endpoint_path(self.instance_id, self.endpoint.with_endpoint(self.kv_query_endpoint))

    @property
    def request_address(self) -> str:
        assert self.server is not None
        return f"{self.config.host}:{self.server.port}"

    def info(self) -> dict[str, Any]:
        """What the ready file holds: identity, addresses and event endpoints."""
        assert self.system is not None
        return {
            "pid": os.getpid(),
            "instance_id": self.instance_id,
            "instance_hex": f"{self.instance_id:x}",
            "model": self.model_name,
            "request_address": self.request_address,
            "system_url": self.system.url,
            "discovery": self.config.discovery,
            "event_plane": self.config.event_plane,
            "keys": list(self.keys),
            "events": {
                topic: getattr(p, "endpoint", "") or getattr(p, "subject", "")
                for topic, p in self.publishers.items()
            },
        }

    # -- lifecycle -----------------------------------------------------------------------------

    async def __aenter__(self) -> Worker:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def start(self) -> None:
        cfg = self.config
        try:
            self.model = load_model_dir(cfg.model_path)
        except ModelDirError as exc:
            raise WorkerError(str(exc)) from None
        if cfg.startup_time > 0:
            await asyncio.sleep(cfg.startup_time)
        resumed = self._resume()
        await self._start_publishers()
        assert self.model is not None
        self.kv_index = LocalKvIndex(self.instance_id)
        self.pump = EventPump(
            self.instance_id, self.publishers, violations=self.violations, index=self.kv_index
        )
        self.pump.start()
        self.engine = MockEngine.from_model_dir(self.model, cfg.engine, sink=self.pump.sink)
        await self.engine.start()
        self.metrics = WorkerMetrics(
            namespace=self.endpoint.namespace,
            component=self.endpoint.component,
            endpoint=self.endpoint.endpoint,
            worker_id=self.instance_id,
            model_name=self.model_name,
            violations=self.violations,
        )
        if cfg.record_requests is not None:
            self._record = cfg.record_requests.open("a", encoding="utf-8")
        kv_publisher = self.publishers[TOPIC_KV_EVENTS].publisher_id
        self.kv_query_endpoint = f"{KV_QUERY_ENDPOINT_PREFIX}{kv_publisher:x}"
        self.server = RequestPlaneServer(
            cfg.host,
            cfg.request_port,
            {self.request_path: self._generate, self.kv_query_path: self._kv_query},
            record=self._record,
            on_accept=self._on_accept,
        )
        try:
            await self.server.start()
        except OSError as exc:
            raise WorkerError(f"cannot listen on {cfg.host}:{cfg.request_port}: {exc}") from None
        self.system = SystemServer(
            cfg.host,
            cfg.system_port,
            endpoints=self._endpoint_status,
            metrics=self._render_metrics,
            violations=self.violations,
        )
        try:
            await self.system.start()
        except OSError as exc:
            raise WorkerError(f"cannot listen on {cfg.host}:{cfg.system_port}: {exc}") from None
        if not resumed:
            await self._register()
        self.system.mark_ready()
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="heartbeats"))
        if cfg.ready_file is not None:
            tmp = cfg.ready_file.with_name(cfg.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(self.info(), indent=2))
            tmp.replace(cfg.ready_file)

    async def stop(self) -> None:
        """Deregister, stop serving and close every socket (safe to call twice)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.store is not None:
            with contextlib.suppress(DiscoveryError):
                await self.store.close(deregister=True)
            self.store = None
        if self.server is not None:
            await self.server.close()
            self.server = None
        if self.engine is not None:
            await self.engine.aclose()
            self.engine = None
        if self.pump is not None:
            await self.pump.close()
            self.pump = None
        for publisher in self.publishers.values():
            await publisher.close()
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()
            self._nc = None
        if self.system is not None:
            await self.system.close()
            self.system = None
        if self._record is not None:
            self._record.close()
            self._record = None

    def _resume(self) -> bool:
        """``fault.worker-restart-recovers``: take over the instance id in the ready file a
        killed predecessor left, and skip registering as if its records were still there."""
        ready = self.config.ready_file
        if "fault.worker-restart-recovers" not in self.violations or ready is None:
            return False
        try:
            self.instance_id = int(json.loads(ready.read_text())["instance_id"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        return True

    # -- event plane ---------------------------------------------------------------------------

    async def _start_publishers(self) -> None:
        cfg = self.config
        topics = list(KNOWN_TOPICS)
        if "events.topic-known" in self.violations:
            topics.append(HEARTBEAT_TOPIC)
        ep = self.endpoint
        prefix = f"namespace.{ep.namespace}.component.{ep.component}.endpoint.{ep.endpoint}"
        if cfg.event_plane == "nats":
            import nats

            try:
                self._nc = await nats.connect(
                    cfg.nats_url, connect_timeout=3, max_reconnect_attempts=0, allow_reconnect=False
                )
            except Exception as exc:
                raise WorkerError(f"cannot reach NATS at {cfg.nats_url}: {exc}") from None
        for topic in topics:
            options: dict[str, Any] = {}
            if (
                topic == "forward-pass-metrics"
                and "events.subject-matches-topic" in self.violations
            ):
                options["wire_topic"] = "forward_pass_metrics"
            if topic == TOPIC_KV_EVENTS and "kv.sequence-monotonic" in self.violations:
                options["skip_sequence"] = 2
            if "events.envelope.missing-field" in self.violations:
                options["with_published_at"] = False
            publisher: Publisher
            if cfg.event_plane == "nats":
                nats_publisher = NatsPublisher(
                    topic, new_publisher_id(), nc=self._nc, subject_prefix=prefix, **options
                )
                if "discovery.event-channel-subject" in self.violations:
                    nats_publisher.advertised_prefix = prefix.rsplit(".endpoint.", 1)[0]
                publisher = nats_publisher
            else:
                publisher = ZmqPublisher(
                    topic,
                    new_publisher_id(),
                    host=cfg.host,
                    little_endian_id="events.zmq-framing" in self.violations,
                    **options,
                )
            await publisher.start()
            self.publishers[topic] = publisher

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_s)
            engine = self.engine
            if engine is not None and not engine.scheduler.has_work:
                engine.heartbeat()
            if self.pump is not None:
                await self.pump.heartbeat_extra()

    # -- discovery -----------------------------------------------------------------------------

    def _records(self) -> list[tuple[str, dict[str, Any]]]:
        """``(key, record)`` for every record of this worker, violation modes applied."""
        assert self.model is not None
        assert self.server is not None
        cfg, ep, iid = self.config, self.endpoint, self.instance_id
        form: Literal["etcd", "file"] = "etcd" if cfg.discovery == "etcd" else "file"
        host, port = cfg.host, self.server.port
        out: list[tuple[str, dict[str, Any]]] = []

        def add(key: Any, record: dict[str, Any]) -> None:
            out.append((format_key(key, form), record))

        card = build_card(self.model, cfg.engine, name=cfg.model_name)
        if "mdc.context-length-consistent" in self.violations:
            card["context_length"] = (card["runtime_config"]["context_length"] or 0) + 1024
        if "mdc.runtime-config-consistent" in self.violations:
            card["runtime_config"]["data_parallel_size"] = 0
        if "mdc.block-size-consistent" in self.violations:
            card["kv_cache_block_size"] = cfg.engine.block_size * 2
        if "discovery.mdc.missing-field" in self.violations:
            del card["migration_limit"]
        self.card = card
        endpoint_key = key_of("instances", ep, iid)
        if "discovery.key-matches-record" in self.violations:
            endpoint_key = key_of("instances", ep, iid + 1)
        endpoint_text = format_key(endpoint_key, form)
        if "discovery.key-grammar" in self.violations:
            head, _, tail = endpoint_text.rpartition(f"{endpoint_key.instance_id:x}")
            endpoint_text = head + f"{endpoint_key.instance_id:X}" + tail
        out.append((endpoint_text, endpoint_record(ep, iid, tcp_transport(host, port, iid, ep))))
        kvq = ep.with_endpoint(self.kv_query_endpoint)
        kvq_record = endpoint_record(kvq, iid, tcp_transport(host, port, iid, kvq))
        add(key_of("instances", kvq, iid), kvq_record)
        model_iid = iid
        if "discovery.worker-registered" in self.violations:
            model_iid = iid + 1
        add(key_of("mdc", ep, model_iid), model_record(ep, model_iid, card))
        for topic, publisher in self.publishers.items():
            pid = publisher.publisher_id
            add(
                key_of("event_channels", ep, pid, topic),
                event_channel_record(ep, topic, pid, publisher.transport()),
            )
        kv_pid = self.publishers[TOPIC_KV_EVENTS].publisher_id
        source = kv_event_source_record(ep, kv_pid, iid, kvq_record | {})
        del source["metadata"]["recovery_target"]["type"]
        if "discovery.event-source-identity" in self.violations:
            source["metadata"]["publisher_id"] = kv_pid + 1
        add(key_of("event_sources", ep, kv_pid, TOPIC_KV_EVENTS), source)
        return out

    async def _register(self) -> None:
        cfg = self.config
        store: DiscoveryStore
        if cfg.discovery == "etcd":
            lease = self.instance_id
            if "discovery.lease-matches-instance" in self.violations:
                lease = (self.instance_id + 1) % 2**63 or 1
            store = EtcdStore(cfg.etcd_url, lease, ttl=cfg.lease_ttl)
        else:
            store = FileStore(cfg.file_kv, ttl=cfg.lease_ttl)
        try:
            await store.start()
        except DiscoveryError as exc:
            raise WorkerError(str(exc)) from None
        self.store = store
        try:
            for key, record in self._records():
                await store.put(key, record)
                self.keys.append(key)
        except (DiscoveryError, OSError) as exc:
            raise WorkerError(f"cannot register in discovery: {exc}") from None

    # -- serving -------------------------------------------------------------------------------

    def _endpoint_status(self) -> dict[str, str]:
        return {self.endpoint.endpoint: "ready", self.kv_query_endpoint: "ready"}

    def _render_metrics(self) -> str:
        assert self.metrics is not None
        engine = self.engine
        if engine is not None:
            self.metrics.running.set(engine.scheduler.num_running)
            self.metrics.waiting.set(engine.scheduler.num_waiting)
            used = engine.kv_metrics().kv_used_blocks
            self.metrics.kv_usage.set(used / self.config.engine.num_gpu_blocks)
        return self.metrics.render()

    def _on_accept(self, request: IncomingRequest, size: int) -> None:
        assert self.metrics is not None
        if request.path == self.request_path:  # the metrics are the generate endpoint's
            self.metrics.started(size)

    async def _kv_query(self, request: IncomingRequest) -> AsyncGenerator[dict[str, Any], None]:
        if self.pump is not None:
            await self.pump.flush(1.0)
        yield self.kv_index.answer(request.body)

    async def _generate(self, request: IncomingRequest) -> AsyncGenerator[dict[str, Any], None]:
        assert self.engine is not None
        assert self.metrics is not None
        started = time.monotonic()
        cancelled = False
        try:
            generate = GenerateRequest.from_preprocessed(request.request_id, request.body)
        except (TypeError, ValueError) as exc:
            self.metrics.error("invalid_request")
            self.metrics.finished(0.0, 0, cancelled=False)
            yield _error(f"invalid request: {exc}")
            return
        try:
            stream = cast(AsyncGenerator[EngineOutput, None], self.engine.generate(generate))
            async with contextlib.aclosing(stream) as outputs:
                async for output in outputs:
                    if request.cancelled.is_set():
                        cancelled = True
                        break
                    yield _annotated(output, self._token_text, indexed=generate.n > 1)
                    await self._faults(len(output.token_ids))
        except (RequestError, EngineClosedError) as exc:
            self.metrics.error("engine")
            yield _error(str(exc))
        finally:
            # the request plane counts the response frames it wrote
            elapsed = time.monotonic() - started
            self.metrics.finished(elapsed, request.sent_bytes, cancelled=cancelled)

    def _token_text(self, token_id: int) -> str:
        assert self.model is not None
        return self.model.tokenizer.decode([token_id], skip_special_tokens=False)

    async def _faults(self, tokens: int) -> None:
        cfg = self.config
        before = self._tokens_sent
        self._tokens_sent += tokens
        if cfg.crash_after_tokens is not None and self._tokens_sent >= cfg.crash_after_tokens:
            os._exit(3)
        if (
            cfg.stall_after_tokens is not None
            and before < cfg.stall_after_tokens <= self._tokens_sent
        ):
            await asyncio.Event().wait()


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dynconform.mocker.worker",
        description="A mock worker of dynconform's reference implementation.",
    )
    p.add_argument("--model-path", required=True, type=Path, help="local HF-style model dir")
    p.add_argument("--model-name", help="served model name (default: the directory's name)")
    p.add_argument("--namespace", default="dynamo")
    p.add_argument("--component", default="backend")
    p.add_argument("--endpoint", default="generate")
    p.add_argument("--host", default="127.0.0.1", help="address to serve and advertise")
    p.add_argument("--request-port", type=int, default=0, help="TCP request plane (0: free)")
    p.add_argument("--system-port", type=int, default=0, help="system server (0: free)")
    p.add_argument("--discovery-backend", choices=("file", "etcd"), default="file")
    p.add_argument(
        "--file-kv",
        type=Path,
        default=Path(os.environ.get("DYN_FILE_KV", DEFAULT_FILE_KV)),
        help="file discovery directory (default: $DYN_FILE_KV or /tmp/dynamo_store_kv)",
    )
    p.add_argument("--etcd-url", default=os.environ.get("ETCD_ENDPOINTS", "http://127.0.0.1:2379"))
    p.add_argument("--event-plane", choices=("zmq", "nats"), default="zmq")
    p.add_argument("--nats-url", default=os.environ.get("NATS_SERVER", "nats://127.0.0.1:4222"))
    p.add_argument("--lease-ttl", type=int, default=10, help="etcd lease / file TTL in seconds")
    p.add_argument("--block-size", type=int, default=16)
    p.add_argument("--num-gpu-blocks-override", dest="num_gpu_blocks", type=int, default=16384)
    p.add_argument("--max-num-seqs", type=int, default=256)
    p.add_argument("--max-num-batched-tokens", type=int, default=8192)
    p.add_argument("--max-model-len", type=int)
    p.add_argument("--speedup-ratio", type=float, default=1.0)
    p.add_argument("--decode-speedup-ratio", type=float, default=1.0)
    p.add_argument("--output-mode", choices=("random", "echo"), default="random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--violate", action="append", default=[], metavar="MODE")
    p.add_argument("--record-requests", type=Path, help="append received request frames here")
    p.add_argument("--ready-file", type=Path, help="write the worker's addresses here when ready")
    p.add_argument("--startup-time", type=float, default=0.0, help="seconds before registering")
    p.add_argument("--crash-after-tokens", type=int, help="exit abruptly after N output tokens")
    p.add_argument("--stall-after-tokens", type=int, help="stop streaming after N output tokens")
    return p


def config_from_args(args: argparse.Namespace) -> WorkerConfig:
    """A :class:`WorkerConfig` from parsed arguments; raises :class:`WorkerError` if invalid."""
    try:
        engine = EngineConfig(
            block_size=args.block_size,
            num_gpu_blocks=args.num_gpu_blocks,
            max_num_seqs=args.max_num_seqs,
            max_num_batched_tokens=args.max_num_batched_tokens,
            max_model_len=args.max_model_len,
            speedup_ratio=args.speedup_ratio,
            decode_speedup_ratio=args.decode_speedup_ratio,
            output_mode=args.output_mode,
            seed=args.seed,
        )
        violations = check_modes(args.violate)
    except (ValueError, UnknownViolationError) as exc:
        raise WorkerError(str(exc)) from None
    return WorkerConfig(
        model_path=args.model_path,
        model_name=args.model_name,
        endpoint=EndpointId(args.namespace, args.component, args.endpoint),
        host=args.host,
        request_port=args.request_port,
        system_port=args.system_port,
        discovery=args.discovery_backend,
        file_kv=args.file_kv,
        etcd_url=args.etcd_url,
        event_plane=args.event_plane,
        nats_url=args.nats_url,
        lease_ttl=args.lease_ttl,
        engine=engine,
        violations=violations,
        record_requests=args.record_requests,
        ready_file=args.ready_file,
        startup_time=args.startup_time,
        crash_after_tokens=args.crash_after_tokens,
        stall_after_tokens=args.stall_after_tokens,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run a worker until SIGTERM/SIGINT; exit 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        asyncio.run(serve_until_signalled(Worker(config)))
    except WorkerError as exc:
        sys.stderr.write(f"dynconform mocker worker: error: {exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
