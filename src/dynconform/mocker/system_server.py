"""A worker's system server: ``/health``, ``/live`` and ``/metrics`` on a port of its own."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection

from aiohttp import web

__all__ = ["SystemServer"]


class SystemServer:
    """Serves the worker's health and metrics.

    ``endpoints`` returns each served endpoint's readiness; the worker is ``ready`` (200)
    once it has registered (:meth:`mark_ready`), else ``notready`` (503).
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        endpoints: Callable[[], dict[str, str]],
        metrics: Callable[[], str],
        violations: Collection[str] = (),
    ) -> None:
        self.host = host
        self.port = port
        self.endpoints = endpoints
        self.metrics = metrics
        self.violations = frozenset(violations)
        self.ready = False
        self._started = time.monotonic()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def mark_ready(self) -> None:
        self.ready = True

    def health_body(self) -> tuple[int, dict[str, object]]:
        """The status code and JSON body of ``/health`` and ``/live``."""
        uptime = time.monotonic() - self._started
        body: dict[str, object] = {
            "status": "ready" if self.ready else "notready",
            "uptime": {"secs": int(uptime), "nanos": int((uptime % 1) * 1e9)},
            "endpoints": self.endpoints(),
        }
        if "health.worker.missing-status" in self.violations:
            del body["status"]
        return (200 if self.ready else 503), body

    async def _health(self, request: web.Request) -> web.Response:
        status, body = self.health_body()
        return web.Response(
            status=status, text=json.dumps(body), content_type="text/plain", charset="utf-8"
        )

    async def _metrics(self, request: web.Request) -> web.Response:
        return web.Response(text=self.metrics(), content_type="text/plain", charset="utf-8")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/health", self._health)
        app.router.add_get("/live", self._health)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
