"""A small HTTP/1.1 client for checks: raw bytes in, status, headers and raw body out.

Checks must see exactly what the server sent (malformed JSON, SSE framing, odd status codes),
so nothing is parsed or retried here.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from dynconform.conformance._errors import CheckFailed

__all__ = ["HttpClient", "Response"]


@dataclass(frozen=True, slots=True)
class Response:
    """One HTTP exchange as the server answered it."""

    method: str
    url: str
    status: int
    headers: dict[str, str]
    body: bytes
    elapsed: float
    request_body: bytes | None = field(default=None, repr=False)
    #: seconds from sending the request to the first byte of the body (None: empty body)
    first_byte: float | None = None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def json(self) -> Any:
        """The body as JSON; a :class:`CheckFailed` when it is not JSON."""
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise CheckFailed(
                f"{self.method} {self.url} -> {self.status}: body is not JSON ({exc}): "
                f"{self.text[:200]!r}"
            ) from None

    def describe(self) -> str:
        return f"{self.method} {self.url} -> {self.status}"


class HttpClient:
    """Sends requests to one base URL (``http://host:port``); ``on_response`` sees every
    response (the run's latency record)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 30.0,
        on_response: Callable[[Response], None] | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self.on_response = on_response

    def _connection(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request; connection failures raise :class:`CheckFailed`."""
        sent = dict(headers or {})
        if body is not None:
            sent.setdefault("content-type", "application/json")
        conn = self._connection()
        start = time.monotonic()
        url = self.prefix + path
        try:
            conn.request(method, url, body=body, headers=sent)
            raw = conn.getresponse()
            data = raw.read1()  # whatever arrived first: the first event of a stream
            first_byte = time.monotonic() - start if data else None
            data += raw.read()
            status = raw.status
            got = {k.lower(): v for k, v in raw.getheaders()}
        except (OSError, http.client.HTTPException) as exc:
            raise CheckFailed(
                f"{method} {self.base_url}{path}: {type(exc).__name__}: {exc}"
            ) from None
        finally:
            conn.close()
        elapsed = time.monotonic() - start
        response = Response(method, path, status, got, data, elapsed, body, first_byte)
        if self.on_response is not None:
            self.on_response(response)
        return response

    def get(self, path: str) -> Response:
        return self.request("GET", path)

    def post_json(self, path: str, payload: Any) -> Response:
        return self.request("POST", path, body=json.dumps(payload).encode("utf-8"))

    def post_raw(self, path: str, body: bytes, content_type: str = "application/json") -> Response:
        return self.request("POST", path, body=body, headers={"content-type": content_type})
