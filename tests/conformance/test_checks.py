"""Checks against small stand-in HTTP servers built from the real 1.6.1 captures: a check
passes on what Dynamo answered and fails on a targeted change of it."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from dynconform.conformance import (
    CheckFailed,
    Context,
    Shared,
    Sut,
    Timeouts,
    check,
    default_checks,
    execute,
)

CAPTURES = Path(__file__).parents[1] / "fixtures" / "ai-dynamo-1.6.1"
EXCHANGES = {
    e["name"]: e for e in json.loads((CAPTURES / "etcd_nats" / "http_exchanges.json").read_text())
}
CHECKS = default_checks()
SHARED = Shared()

Route = Callable[[str, str, bytes], tuple[int, str, bytes]]


def captured(name: str) -> tuple[int, str, bytes]:
    exchange = EXCHANGES[name]
    kind = exchange["headers"].get("content-type", "application/json")
    body = exchange.get("body_json")
    body = exchange["body_text"] if body is None else body
    raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return exchange["status"], kind, raw


def dynamo_like(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
    """Answers like the captured 1.6.1 frontend."""
    if path == "/v1/models":
        return captured("models")
    try:
        request = json.loads(body)
    except ValueError:
        return captured("err_bad_json")
    if request.get("model") != "tiny":
        return captured("err_unknown_model")
    if path == "/v1/completions":
        return captured("completion_stream" if request.get("stream") else "completion_nonstream")
    if request.get("stream"):
        return captured("chat_stream_usage" if request.get("stream_options") else "chat_stream")
    return captured("chat_nonstream")


@pytest.fixture
def serve() -> Iterator[Callable[[Route], str]]:
    servers: list[ThreadingHTTPServer] = []

    def start(route: Route) -> str:
        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                size = int(self.headers.get("content-length") or 0)
                status, kind, raw = route(self.command, self.path, self.rfile.read(size))
                self.send_response(status)
                self.send_header("content-type", kind)
                self.send_header("content-length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def context(check_id: str, url: str, features: frozenset[str] = frozenset()) -> Context:
    sut = Sut("stand-in", "0", "target", "external", url, features, model="tiny")
    return Context(
        CHECKS.get(check_id), sut, timeouts=Timeouts({"consistency": 0.3}), seed=1, shared=Shared()
    )


#: The captures hold no text-completion stream with a usage chunk.
STREAMING = [c.id for c in CHECKS.select(["streaming"]) if c.id != "http.stream.usage-chunk"]


def test_streaming_checks_pass_on_captured_streams(serve: Callable[[Route], str]) -> None:
    url = serve(dynamo_like)
    for check_id in STREAMING:
        result = execute(CHECKS.get(check_id), context(check_id, url))
        assert result.status == "passed", (check_id, result.reason)


def test_a_stream_without_done_fails_only_its_check(serve: Callable[[Route], str]) -> None:
    def no_done(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        status, kind, raw = dynamo_like(method, path, body)
        return status, kind, raw.replace(b"data: [DONE]\n\n", b"")

    url = serve(no_done)
    outcome = {c: execute(CHECKS.get(c), context(c, url)).status for c in STREAMING}
    assert outcome.pop("http.stream.done-terminator") == "failed"
    assert set(outcome.values()) == {"passed"}


def test_openai_envelope_check_can_pass(serve: Callable[[Route], str]) -> None:
    def openai_like(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        error = {"message": "no", "type": "invalid_request_error", "param": None, "code": None}
        return 404, "application/json", json.dumps({"error": error}).encode()

    check_id = "openai.errors.envelope"
    assert execute(CHECKS.get(check_id), context(check_id, serve(openai_like))).status == "passed"
    dynamo = execute(CHECKS.get(check_id), context(check_id, serve(dynamo_like)))
    assert dynamo.status == "failed"
    assert dynamo.violations[0]["rule"] == "schema.required"


def test_error_checks_on_captured_errors(serve: Callable[[Route], str]) -> None:
    url = serve(dynamo_like)
    result = execute(
        CHECKS.get("http.errors.unknown-model"), context("http.errors.unknown-model", url)
    )
    assert result.status == "passed", result.reason

    def server_error(method: str, path: str, body: bytes) -> tuple[int, str, bytes]:
        error = {"message": "boom", "type": "Internal Server Error", "code": 500}
        return 500, "application/json", json.dumps(error).encode()

    broken = execute(
        CHECKS.get("http.errors.no-server-errors"),
        context("http.errors.no-server-errors", serve(server_error)),
    )
    assert broken.status == "failed"
    assert "server error 500" in broken.reason


def test_execute_maps_every_outcome(serve: Callable[[Route], str]) -> None:
    url = serve(dynamo_like)

    @check("x.crash", title="t", description="It MUST not crash.", profiles=("core",))
    def crash(ctx: Context) -> None:
        raise RuntimeError("bug")

    @check("x.fail", title="t", description="It MUST hold.", profiles=("core",))
    def fail(ctx: Context) -> None:
        raise CheckFailed("nope", [{"rule": "r"}])

    @check("x.gated", title="t", description="It MAY run.", profiles=("core",),
           features=("kv-events",))  # fmt: skip
    def gated(ctx: Context) -> None:
        raise AssertionError("never runs")

    sut = Sut("stand-in", "0", "target", "external", url, frozenset(), model="tiny")
    outcomes = {}
    for item in (crash, fail, gated):
        ctx = Context(item, sut, timeouts=Timeouts(), seed=0, shared=SHARED)
        outcomes[item.id] = execute(item, ctx)
    assert (outcomes["x.crash"].status, outcomes["x.crash"].reason) == (
        "error",
        "RuntimeError: bug",
    )
    assert outcomes["x.fail"].status == "failed"
    assert outcomes["x.fail"].violations == ({"rule": "r"},)
    assert outcomes["x.gated"].status == "skipped"
    assert "kv-events" in outcomes["x.gated"].reason


def test_seeded_inputs_depend_only_on_seed_and_check() -> None:
    sut = Sut("s", "0", "target", "external", "http://127.0.0.1:9", frozenset(), model="tiny")
    item = CHECKS.get("kv.stored.hash-matches-prompt")

    def prompt(seed: int) -> list[int]:
        ctx = Context(item, sut, timeouts=Timeouts(), seed=seed, shared=Shared())
        return ctx.token_prompt(20)

    assert prompt(5) == prompt(5)
    assert prompt(5) != prompt(6)
