"""The reference frontend: an OpenAI-compatible HTTP server in front of the mock workers.

``python -m dynconform.mocker.frontend`` serves ``GET /v1/models``, ``POST
/v1/chat/completions`` and ``POST /v1/completions`` (streaming or not), ``/health``, ``/live``
and ``/metrics``. It finds workers in discovery (file directory or etcd), tokenizes with the
model directory named in their card, and routes each request over Dynamo's TCP request plane
to a worker the router mode picks (``round-robin``, ``random``, or ``kv``: by the prompt's
cached prefix blocks, which the workers' kv-events report, and load). Errors use Dynamo's flat
envelope ``{"message", "type", "code"}``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import random
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any, Literal

import msgspec
from aiohttp import web

from dynconform.contracts import Validator
from dynconform.mocker._signals import serve_until_signalled
from dynconform.mocker.faults import FAULT_HEADER, FAULT_TYPES, check_faults
from dynconform.mocker.frontend_metrics import FrontendMetrics
from dynconform.mocker.model_watch import (
    EtcdSource,
    FileSource,
    Instance,
    ModelWatcher,
    ServedModel,
    Source,
)
from dynconform.mocker.openai import (
    DESERIALIZE,
    ApiError,
    Completion,
    Kind,
    preprocess_batch,
    requested_logprobs,
    validate_request,
)
from dynconform.mocker.records import new_instance_id
from dynconform.mocker.request_plane import RequestPlaneClient, RequestPlaneError
from dynconform.mocker.routing import ROUTER_MODES, KvEventSubscriber, Router, RouterMode
from dynconform.mocker.violations import UnknownViolationError, check_modes

__all__ = ["FAULT_HEADER", "FAULT_TYPES", "Frontend", "FrontendConfig", "main"]

_JSON = {"separators": (",", ":")}


def error_response(
    code: int, message: str, *, violations: frozenset[str] = frozenset()
) -> web.Response:
    """Dynamo's flat error envelope."""
    phrase = HTTPStatus(code).phrase
    if code == 404 and "http.error-type-matches-code" in violations and message.startswith("Model"):
        phrase = "Model Not Found"
    return web.json_response({"message": message, "type": phrase, "code": code}, status=code)


@dataclass
class FrontendConfig:
    """Settings of the reference frontend."""

    host: str = "127.0.0.1"
    port: int = 8000
    discovery: Literal["file", "etcd"] = "file"
    file_kv: Path = Path("/tmp/dynamo_store_kv")
    etcd_url: str = "http://127.0.0.1:2379"
    ttl: float = 10.0
    poll_interval: float = 0.5
    violations: frozenset[str] = frozenset()
    failure_rate: float = 0.0
    failure_types: tuple[str, ...] = ("500",)
    seed: int | None = None
    ready_file: Path | None = None
    wait_for_instances: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``round-robin``, ``random`` or ``kv`` (as ``dynamo.frontend --router-mode``)
    router_mode: RouterMode = "round-robin"
    #: the NATS server of a NATS event plane (``kv`` mode follows kv-events there)
    nats_url: str | None = None


class Frontend:
    """``async with Frontend(config) as frontend:`` serves until the block ends."""

    def __init__(self, config: FrontendConfig) -> None:
        self.config = config
        self.violations = config.violations
        self.frontend_id = new_instance_id()
        self.validator = Validator()
        self.metrics = FrontendMetrics(frontend_id=self.frontend_id, violations=self.violations)
        source: Source
        if config.discovery == "etcd":
            source = EtcdSource(config.etcd_url)
        else:
            source = FileSource(config.file_kv, ttl=config.ttl)
        self.watcher = ModelWatcher(
            source,
            interval=config.poll_interval,
            keep_gone="fault.worker-kill-deregisters" in self.violations,
        )
        self.client = RequestPlaneClient(violations=self.violations, host=config.host)
        self.router = Router(config.router_mode, seed=config.seed)
        self.kv_events: KvEventSubscriber | None = None
        if config.router_mode == "kv":
            self.kv_events = KvEventSubscriber(self.router.index, nats_url=config.nats_url)
        self._kv_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._random = random.Random(config.seed)
        self._seen_models: set[str] = set()
        self.port = config.port

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.port}"

    async def __aenter__(self) -> Frontend:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._errors], client_max_size=64 * 1024 * 1024)
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/health", self._health)
        app.router.add_get("/live", self._live)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> None:
        await self.client.start()
        await self.watcher.start()
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.host, self.config.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        if self.config.wait_for_instances:
            await self.wait_for_instances(self.config.wait_for_instances)
        if self.kv_events is not None:
            await self.follow_kv_events()
            self._kv_task = asyncio.create_task(self._follow_kv_events(), name="kv-events")
        if self.config.ready_file is not None:
            info = {
                "pid": os.getpid(),
                "url": self.url,
                "response_address": self.client.responses.address,
                "models": sorted(self.watcher.models),
            }
            tmp = self.config.ready_file.with_name(self.config.ready_file.name + ".tmp")
            tmp.write_text(json.dumps(info, indent=2))
            tmp.replace(self.config.ready_file)

    async def wait_for_instances(self, count: int, timeout: float = 60.0) -> None:
        """Wait until discovery shows ``count`` instances serving models."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            served = sum(len(m.instances) for m in self.watcher.models.values())
            if served >= count:
                return
            await asyncio.sleep(0.05)
            with contextlib.suppress(Exception):
                await self.watcher.refresh()

    async def follow_kv_events(self, timeout: float = 5.0) -> None:
        """Follow the kv-events channels discovery lists now; wait (up to ``timeout``) until
        every ZMQ subscription is established."""
        assert self.kv_events is not None
        channels = [c for c in self.watcher.event_channels if c.get("topic") == "kv-events"]
        await self.kv_events.sync(channels)
        self.router.index.retain(i.instance_id for i in self.watcher.instances)
        endpoints = {
            str((c.get("transport") or {}).get("config", {}).get("endpoint"))
            for c in channels
            if (c.get("transport") or {}).get("kind") == "Zmq"
        }
        deadline = time.monotonic() + timeout
        while not endpoints <= self.kv_events.subscribed and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.05)  # a PUB socket applies a subscription after the handshake

    async def _follow_kv_events(self) -> None:
        assert self.kv_events is not None
        while True:
            await asyncio.sleep(self.config.poll_interval)
            with contextlib.suppress(Exception):
                await self.kv_events.sync(self.watcher.event_channels)
            self.router.index.retain(i.instance_id for i in self.watcher.instances)

    async def stop(self) -> None:
        if self._kv_task is not None:
            self._kv_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._kv_task
            self._kv_task = None
        await self.client.close()  # ends in-flight streams, so their handlers return
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.kv_events is not None:
            await self.kv_events.close()
        await self.watcher.close()

    # -- middleware and small routes -----------------------------------------------------------

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            return await handler(request)
        except web.HTTPMethodNotAllowed as exc:
            return web.Response(
                status=405, headers={"allow": ",".join(sorted(exc.allowed_methods))}
            )
        except web.HTTPNotFound:
            message = f"Route not found: {request.method} {request.path}"
            return error_response(404, message, violations=self.violations)

    def _track_models(self) -> None:
        for name, model in self.watcher.models.items():
            if name not in self._seen_models:
                self._seen_models.add(name)
                self.metrics.model_seen(name, model.card)

    async def _models(self, request: web.Request) -> web.Response:
        created = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "nvidia",
                "context_window": int(model.card.get("context_length") or 0),
            }
            for name, model in sorted(self.watcher.models.items())
        ]
        obj = "models" if "http.models.wrong-object" in self.violations else "list"
        return web.json_response({"object": obj, "data": data})

    async def _health(self, request: web.Request) -> web.Response:
        instances = [i.health_view() for i in self.watcher.instances]
        endpoints = sorted(
            {f"dyn://{i['namespace']}.{i['component']}.{i['endpoint']}" for i in instances}
        )
        if "health.frontend-endpoints-match-instances" in self.violations and endpoints:
            endpoints = endpoints[1:]
        body = {"status": "healthy", "endpoints": endpoints, "instances": instances}
        return web.json_response(body)

    async def _live(self, request: web.Request) -> web.Response:
        if "health.frontend-live.missing-status" in self.violations:
            return web.json_response({"message": "Service is live"})
        return web.json_response({"status": "live", "message": "Service is live"})

    async def _metrics(self, request: web.Request) -> web.Response:
        self._track_models()
        return web.Response(text=self.metrics.render(), content_type="text/plain", charset="utf-8")

    # -- completions ---------------------------------------------------------------------------

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, "chat")

    async def _completions(self, request: web.Request) -> web.StreamResponse:
        return await self._complete(request, "completion")

    def _fault(self, request: web.Request) -> None:
        forced = request.headers.get(FAULT_HEADER)
        rate = self.config.failure_rate
        if forced is None and rate > 0 and self._random.random() < rate:
            forced = self._random.choice(self.config.failure_types)
        if forced is not None:
            code, message = FAULT_TYPES.get(forced, FAULT_TYPES["500"])
            raise ApiError(code, message, "injected")

    async def _parse(self, request: web.Request) -> Any:
        raw = await request.read()
        code = 422 if "http.errors.malformed-json" in self.violations else 400
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            where = f"at line {exc.lineno} column {exc.colno}"
            raise ApiError(code, f"{DESERIALIZE}{exc.msg} {where}", "validation") from None
        except UnicodeDecodeError:
            raise ApiError(code, f"{DESERIALIZE}the body is not UTF-8", "validation") from None

    async def _complete(self, request: web.Request, kind: Kind) -> web.StreamResponse:
        endpoint = "chat_completions" if kind == "chat" else "completions"
        self._track_models()
        body: Any = None
        model_label = "unknown_model"
        request_type = "unary"
        try:
            body = await self._parse(request)
            if isinstance(body, dict) and isinstance(body.get("stream"), bool) and body["stream"]:
                request_type = "stream"
            validate_request(self.validator, kind, body, modes=self.violations)
            served = self.watcher.models.get(body["model"])
            if served is None:
                raise ApiError(404, "Model not found", "not_found")
            model_label = served.name
            self._fault(request)
            batch = preprocess_batch(kind, body, model=served, card_sum=served.mdc_sum)
        except ApiError as exc:
            labels = (endpoint, exc.error_type, model_label, request_type, "error")
            self.metrics.requests.labels(*labels).inc()
            return error_response(exc.code, exc.message, violations=self.violations)
        self.metrics.started.labels(endpoint, served.name, request_type).inc()
        tokenizer = served.model_dir.tokenizer
        prompt_tokens = sum(len(token_ids) for token_ids, _ in batch)
        nvext = body.get("nvext") or {}
        completion = Completion(
            kind,
            served.name,
            prompt_tokens,
            self.violations,
            decode=tokenizer.decode,
            token_text=lambda token_id: tokenizer.decode([token_id]),
            n=int(body.get("n") or 1),
            prompts=len(batch),
            logprobs=requested_logprobs(kind, body) is not None,
            nvext_fields=frozenset(str(f) for f in nvext.get("extra_fields") or ()),
            worker_ranks=self.router.mode == "kv",
        )
        pinned = nvext.get("backend_instance_id")
        started = time.monotonic()
        self.metrics.inflight.labels(served.name).inc()
        self.metrics.active.labels(served.name).inc()
        self.metrics.isl.labels(served.name).observe(prompt_tokens)
        status, error_type = "success", ""
        try:
            outputs = await self._route_all(served, completion, batch, pinned)
            if request_type == "stream":
                options = body.get("stream_options") or {}
                include_usage = bool(options.get("include_usage"))
                return await self._stream(request, served, completion, outputs, include_usage)
            return await self._unary(served, completion, outputs)
        except ApiError as exc:
            status, error_type = "error", exc.error_type
            return error_response(exc.code, exc.message, violations=self.violations)
        except (ConnectionError, asyncio.CancelledError):
            status, error_type = "error", "cancelled"
            self.metrics.cancellations.labels(served.name).inc()
            raise
        finally:
            self.metrics.inflight.labels(served.name).dec()
            self.metrics.active.labels(served.name).dec()
            self.metrics.duration.labels(served.name).observe(time.monotonic() - started)
            self.metrics.requests.labels(
                endpoint, error_type, served.name, request_type, status
            ).inc()

    async def _route_all(
        self,
        served: ServedModel,
        completion: Completion,
        batch: list[tuple[list[int], dict[str, Any]]],
        pinned: int | None = None,
    ) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
        """Route every prompt of the request (to instance ``pinned`` if given: the request's
        ``nvext.backend_instance_id``); yields ``(prompt, output)`` as they arrive."""
        streams: list[AsyncGenerator[dict[str, Any], None]] = []
        try:
            for prompt, (token_ids, preprocessed) in enumerate(batch):
                streams.append(
                    await self._route(served, completion, prompt, token_ids, preprocessed, pinned)
                )
        except BaseException:
            for stream in streams:
                await stream.aclose()
            raise
        return _merge(streams)

    def _candidates(
        self, served: ServedModel, token_ids: list[int], block_size: int, pinned: int | None
    ) -> list[Instance]:
        """The model's instances in the order the router mode tries them (set-aside last), or
        only instance ``pinned`` (400 ``Invalid request`` if it does not serve the model)."""
        if pinned is not None:
            chosen = [i for i in served.instances if i.instance_id == pinned]
            if not chosen:
                raise ApiError(400, "Invalid request", "validation")
            return chosen
        candidates = self.watcher.candidates(served)
        if self.router.mode == "round-robin":
            return candidates
        up = {i.instance_id: i for i in candidates if self.watcher.available(i)}
        order = self.router.order(list(up), token_ids, block_size)
        return [up[i] for i in order] + [i for i in candidates if i.instance_id not in up]

    async def _route(
        self,
        served: ServedModel,
        completion: Completion,
        prompt: int,
        token_ids: list[int],
        preprocessed: dict[str, Any],
        pinned: int | None = None,
    ) -> AsyncGenerator[dict[str, Any], None]:
        """One prompt's outputs, from the first instance that accepts it."""
        block_size = int(served.card.get("kv_cache_block_size") or 0)
        request_id = completion.request_id
        if completion.prompts > 1:
            request_id = f"{request_id}-{prompt}"
        last = "no instance serves the model"
        for instance in self._candidates(served, token_ids, block_size, pinned):
            load = (instance.instance_id, len(token_ids), block_size)
            self.router.started(*load)
            outputs = self.client.generate(
                instance.address, instance.path, request_id, preprocessed
            )
            try:
                first = await outputs.__anext__()
            except StopAsyncIteration:
                first = None
            except RequestPlaneError as exc:
                self.router.finished(*load)
                last = str(exc)
                self.watcher.set_aside(instance)
                await outputs.aclose()
                continue
            except BaseException:
                self.router.finished(*load)
                await outputs.aclose()
                raise
            completion.workers[prompt] = instance.instance_id
            return _chain(first, outputs, functools.partial(self.router.finished, *load))
        raise ApiError(503, f"Service unavailable: {last}", "no_instances")

    async def _unary(
        self,
        served: ServedModel,
        completion: Completion,
        outputs: AsyncGenerator[tuple[int, dict[str, Any]], None],
    ) -> web.Response:
        first_at: float | None = None
        started = time.monotonic()
        output_tokens = self.metrics.output_tokens.labels(served.name)
        async with contextlib.aclosing(outputs):
            async for prompt, item in outputs:
                update = completion.apply(item, prompt)
                if update.tokens:
                    output_tokens.inc(update.tokens)
                    if first_at is None:
                        first_at = time.monotonic()
                        self.metrics.ttft.labels(served.name).observe(first_at - started)
        self.metrics.osl.labels(served.name).observe(completion.completion_tokens)
        return web.json_response(completion.response(), dumps=_dumps)

    async def _stream(
        self,
        request: web.Request,
        served: ServedModel,
        completion: Completion,
        outputs: AsyncGenerator[tuple[int, dict[str, Any]], None],
        include_usage: bool,
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        violations = self.violations
        encode = msgspec.json.encode

        async def send(chunk: dict[str, Any]) -> None:
            await response.write(b"data: " + encode(chunk) + b"\n\n")

        if "http.sse.data-lines-only" in violations:
            await response.write(b": dynconform reference\n\n")
        output_tokens = self.metrics.output_tokens.labels(served.name)
        ttft, itl = self.metrics.ttft.labels(served.name), self.metrics.itl.labels(served.name)
        started = last = time.monotonic()
        first = True
        try:
            async with contextlib.aclosing(outputs):
                async for prompt, item in outputs:
                    update = completion.apply(item, prompt)
                    if update.tokens:
                        output_tokens.inc(update.tokens)
                    chunk = completion.update_chunk(update)
                    if chunk is None:
                        # Nothing to write, so a client that went away goes unnoticed by
                        # the writes: look at the connection, and stop the worker if gone.
                        transport = request.transport
                        if transport is None or transport.is_closing():
                            raise ConnectionResetError("the client went away")
                        continue
                    if update.text:
                        now = time.monotonic()
                        if first:
                            ttft.observe(now - started)
                            first = False
                        else:
                            itl.observe(now - last)
                        last = now
                    if update.finish is not None:
                        if "http.sse.chunks-valid" in violations:
                            chunk["created"] = str(chunk["created"])
                        if "http.sse.consistent-chunks" in violations:
                            chunk["id"] += "-last"
                    await send(chunk)
        except ApiError as exc:
            for chunk in completion.error_chunks(exc.message):
                await send(chunk)
        self.metrics.osl.labels(served.name).observe(completion.completion_tokens)
        if include_usage:
            await send(completion.usage_chunk())
        if "http.sse.done-terminator" not in violations:
            await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


def _dumps(value: Any) -> str:
    return msgspec.json.encode(value).decode("utf-8")


async def _chain(
    first: dict[str, Any] | None,
    rest: AsyncGenerator[dict[str, Any], None],
    done: Callable[[], None],
) -> AsyncGenerator[dict[str, Any], None]:
    try:
        if first is not None:
            yield first
        async for item in rest:
            yield item
    finally:
        done()
        await rest.aclose()


async def _merge(
    streams: list[AsyncGenerator[dict[str, Any], None]],
) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
    """The items of every stream as ``(stream number, item)``, in arrival order; a broken
    stream raises :class:`ApiError` (500)."""
    try:
        if len(streams) == 1:
            async with contextlib.aclosing(streams[0]) as only:
                async for item in only:
                    yield 0, item
            return
        async with contextlib.aclosing(_interleave(streams)) as interleaved:
            async for numbered in interleaved:
                yield numbered
    except RequestPlaneError as exc:
        raise ApiError(500, f"the worker failed: {exc}", "internal") from None


async def _interleave(
    streams: list[AsyncGenerator[dict[str, Any], None]],
) -> AsyncGenerator[tuple[int, dict[str, Any]], None]:
    """Several streams, read concurrently."""
    queue: asyncio.Queue[tuple[int, dict[str, Any] | None, Exception | None]] = asyncio.Queue()

    async def pump(number: int, stream: AsyncGenerator[dict[str, Any], None]) -> None:
        failure: Exception | None = None
        try:
            async with contextlib.aclosing(stream):
                async for output in stream:
                    queue.put_nowait((number, output, None))
        except Exception as exc:
            failure = exc
        finally:
            queue.put_nowait((number, None, failure))

    tasks = [asyncio.create_task(pump(i, stream)) for i, stream in enumerate(streams)]
    try:
        running = len(tasks)
        while running:
            number, received, failure = await queue.get()
            if failure is not None:
                raise failure
            if received is None:
                running -= 1
                continue
            yield number, received
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


# -- command line -----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m dynconform.mocker.frontend",
        description="The OpenAI-compatible frontend of dynconform's reference implementation.",
    )
    p.add_argument("--http-host", default="127.0.0.1")
    p.add_argument("--http-port", type=int, default=8000)
    p.add_argument("--discovery-backend", choices=("file", "etcd"), default="file")
    p.add_argument(
        "--file-kv", type=Path, default=Path(os.environ.get("DYN_FILE_KV", "/tmp/dynamo_store_kv"))
    )
    p.add_argument("--etcd-url", default=os.environ.get("ETCD_ENDPOINTS", "http://127.0.0.1:2379"))
    p.add_argument("--ttl", type=float, default=10.0, help="ignore file records older than this")
    p.add_argument("--violate", action="append", default=[], metavar="MODE")
    p.add_argument("--failure-rate", type=float, default=0.0, help="fraction of failed requests")
    p.add_argument(
        "--failure-types",
        default="500",
        help=f"comma-separated faults to inject: {', '.join(FAULT_TYPES)}",
    )
    p.add_argument("--seed", type=int, help="seed of the fault injection and random routing")
    p.add_argument(
        "--router-mode",
        choices=ROUTER_MODES,
        default="round-robin",
        help="how to pick a worker (kv: by cached prefix blocks and load)",
    )
    p.add_argument(
        "--nats-url",
        default=os.environ.get("NATS_SERVER"),
        help="NATS server of a NATS event plane (kv mode reads kv-events there)",
    )
    p.add_argument("--ready-file", type=Path)
    p.add_argument("--wait-for-instances", type=int, default=0, help="before writing ready file")
    return p


def config_from_args(args: argparse.Namespace) -> FrontendConfig:
    """A :class:`FrontendConfig` from parsed arguments; raises ``ValueError`` if invalid."""
    types = tuple(t.strip() for t in args.failure_types.split(",") if t.strip())
    check_faults(args.failure_rate, types)
    return FrontendConfig(
        host=args.http_host,
        port=args.http_port,
        discovery=args.discovery_backend,
        file_kv=args.file_kv,
        etcd_url=args.etcd_url,
        ttl=args.ttl,
        violations=check_modes(args.violate),
        failure_rate=args.failure_rate,
        failure_types=types or ("500",),
        seed=args.seed,
        ready_file=args.ready_file,
        wait_for_instances=args.wait_for_instances,
        router_mode=args.router_mode,
        nats_url=args.nats_url,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the frontend until SIGTERM/SIGINT; exit 2 with one line on bad input."""
    args = build_parser().parse_args(argv)
    try:
        config = config_from_args(args)
        asyncio.run(serve_until_signalled(Frontend(config)))
    except (ValueError, UnknownViolationError) as exc:
        sys.stderr.write(f"dynconform mocker frontend: error: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"dynconform mocker frontend: error: {exc.strerror or exc}\n")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
