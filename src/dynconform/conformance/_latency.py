"""The run's latency record: every frontend response the checks received, by route.

Series (milliseconds, successful responses only, so that error paths and fuzzing do not
skew them): ``http.<route>.total`` from sending the request to the last byte, and for event
streams ``http.<route>.ttft``, the time to the first streamed byte (the first SSE event).
Routes: ``chat`` (/v1/chat/completions), ``completions``, ``models``, ``embeddings``,
``responses``, else the first path segment (``health``, ``live``, ``metrics``).
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

from dynconform.conformance._http import Response
from dynconform.reports import Measurement

__all__ = ["LatencyLog", "route_of"]

_ROUTES = {
    "/v1/chat/completions": "chat",
    "/v1/completions": "completions",
    "/v1/models": "models",
    "/v1/embeddings": "embeddings",
    "/v1/responses": "responses",
}
_SEGMENT = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def route_of(path: str) -> str:
    """The series name part for a request path (``other`` for anything unexpected)."""
    bare = path.split("?", 1)[0].rstrip("/") or "/"
    if bare in _ROUTES:
        return _ROUTES[bare]
    first = bare.strip("/").split("/", 1)[0]
    return first if _SEGMENT.match(first) else "other"


class LatencyLog:
    """Collects response latencies (thread-safe); :meth:`measurements` summarises them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._series: dict[str, list[float]] = defaultdict(list)

    def record(self, response: Response) -> None:
        if not 200 <= response.status < 300:
            return
        route = route_of(response.url)
        with self._lock:
            self._series[f"http.{route}.total"].append(response.elapsed * 1000)
            if response.content_type == "text/event-stream" and response.first_byte is not None:
                self._series[f"http.{route}.ttft"].append(response.first_byte * 1000)

    def measurements(self) -> list[Measurement]:
        with self._lock:
            return [Measurement.of(name, values) for name, values in sorted(self._series.items())]
