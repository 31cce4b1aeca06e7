"""The control endpoint of ``dynconform mocker serve``: kill and restart workers on request.

A small HTTP server on loopback, run by the serve process, which started the workers and
knows their command lines. Fault injection needs nothing else (no reading of another
process's command line)::

    POST /workers/{index}/kill      SIGKILL the worker's process group (no deregistration)
    POST /workers/{index}/restart   start it again with its command line (killed first if it
                                    still runs); answers once the new process is ready
    GET  /workers                   the workers, as the ready file lists them

Answers are JSON: a worker's description, or ``{"message": ...}`` with 404 (unknown route or
worker) or 500 (the worker did not start again).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

__all__ = ["ControlError", "ControlServer", "WorkerSupervisor"]

_ACTION = re.compile(r"^/workers/(\d+)/(kill|restart)$")


class ControlError(RuntimeError):
    """A control request that cannot be carried out; ``status`` is the HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WorkerSupervisor(Protocol):
    """What the control endpoint drives (:class:`dynconform.mocker.serve.MockerStack`)."""

    def workers(self) -> list[dict[str, Any]]: ...

    def kill_worker(self, index: int) -> dict[str, Any]: ...

    def restart_worker(self, index: int) -> dict[str, Any]: ...


class ControlServer:
    """Serves the control routes for ``supervisor`` on ``host`` (port 0: a free one)."""

    def __init__(self, supervisor: WorkerSupervisor, host: str, port: int = 0) -> None:
        self.supervisor = supervisor
        self._server = ThreadingHTTPServer((host, port), _handler(supervisor))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="mocker-control", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(5)
            self._thread = None
        self._server.server_close()


def _handler(supervisor: WorkerSupervisor) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return None

        def _answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path != "/workers":
                self._answer(404, {"message": f"no route GET {self.path}"})
                return
            self._answer(200, supervisor.workers())

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            match = _ACTION.match(self.path)
            if match is None:
                self._answer(404, {"message": f"no route POST {self.path}"})
                return
            index, action = int(match.group(1)), match.group(2)
            try:
                if action == "kill":
                    result = supervisor.kill_worker(index)
                else:
                    result = supervisor.restart_worker(index)
            except ControlError as exc:
                self._answer(exc.status, {"message": str(exc)})
                return
            self._answer(200, result)

    return Handler
