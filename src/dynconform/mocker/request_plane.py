"""The TCP request plane, in Dynamo's wire format.

A frontend sends each request to the worker's TCP server as one message: ``u16 BE`` endpoint
path length, the path (``{instance_id:x}/{namespace}/{component}/{endpoint}``), ``u16 BE``
headers length, the headers (a JSON object: ``request-id``, ``x-endpoint-path``,
``x-frontend-send-ts-ns``), ``u32 BE`` payload length and the payload, a TwoPartCodec frame
whose JSON header carries the request id, ``payload_codec`` and ``connection_info`` and whose
body is the request encoded with ``payload_codec`` (msgpack by default). The worker
acknowledges every message in order with ``u32 BE`` length and data (empty: accepted, else the
error text).

The responses flow the other way: the worker connects to the address in ``connection_info``
(the frontend's response server) and sends TwoPartCodec frames: a header-only handshake
``{"subject", "stream_type": "response"}``, a header-only prologue ``{"error": null}`` (or the
error text), one body-only frame per response ``{"data": <item>, "complete_final": false}``,
a body-only ``{"complete_final": true}`` and the header-only control message ``"sentinel"``.
Bodies use the request's ``payload_codec``. The frontend may send the header-only control
messages ``"stop"`` or ``"kill"`` back on that connection to cancel the request; the worker
then stops writing and closes the connection.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import struct
import time
import uuid
from collections import deque
from collections.abc import AsyncGenerator, Callable, Collection
from dataclasses import dataclass, field
from typing import IO, Any

import msgspec

from dynconform.contracts.tcp_wire import tcp_message_view
from dynconform.contracts.two_part import (
    PREFIX_SIZE,
    FrameError,
    TwoPartFrame,
    decode_frame,
    encode_frame,
    encode_header,
)

__all__ = [
    "KILL",
    "SENTINEL",
    "STOP",
    "IncomingRequest",
    "RequestPlaneClient",
    "RequestPlaneError",
    "RequestPlaneServer",
    "ResponseServer",
    "StreamHandler",
    "decode_body",
    "decode_tcp_request",
    "encode_body",
    "encode_tcp_request",
    "read_frame",
    "request_headers",
]

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_PREFIX = struct.Struct(">QQQ")
#: Header-only control messages (serde snake_case unit variants, JSON-encoded).
SENTINEL = b'"sentinel"'
STOP, KILL = b'"stop"', b'"kill"'
MAX_FRAME = 64 * 1024 * 1024
#: A response stream waits for the socket only once this much is buffered, not per frame.
_DRAIN_ABOVE = 64 * 1024
#: msgpack as ``msgpack.packb(value, use_bin_type=True)`` writes it, without a new packer
#: per call
_MSGPACK_ENCODE = msgspec.msgpack.Encoder().encode
#: and read as ``msgpack.unpackb(data, raw=False, strict_map_key=False)`` reads it
_MSGPACK_DECODE = msgspec.msgpack.Decoder().decode


class RequestPlaneError(RuntimeError):
    """A worker refused a request, could not be reached, or broke its response stream."""


def encode_tcp_request(path: str, headers: dict[str, str], payload: bytes) -> bytes:
    """One request-plane TCP message."""
    path_bytes = path.encode("utf-8")
    header_bytes = json.dumps(headers, separators=(",", ":")).encode("utf-8")
    return b"".join(
        (
            _U16.pack(len(path_bytes)),
            path_bytes,
            _U16.pack(len(header_bytes)),
            header_bytes,
            _U32.pack(len(payload)),
            payload,
        )
    )


def request_headers(path: str, request_id: str) -> dict[str, str]:
    """The headers a 1.6.1 frontend sends with each request message."""
    return {
        "request-id": request_id,
        "x-frontend-send-ts-ns": str(time.time_ns()),
        "x-endpoint-path": path,
    }


def decode_tcp_request(data: bytes) -> tuple[str, dict[str, Any], bytes]:
    """``(path, headers, payload)`` of one complete request message; raises ``ValueError``."""
    view = tcp_message_view(data)
    headers = view["headers"]
    if not isinstance(headers, dict):
        raise FrameError("request headers must be a JSON object")
    return view["endpoint_path"], headers, base64.b64decode(view["payload"]["__bytes_b64__"])


def encode_body(value: Any, codec: str) -> bytes:
    """A request or response body in ``codec`` (``msgpack``, else compact JSON)."""
    if codec == "msgpack":
        return _MSGPACK_ENCODE(value)
    return msgspec.json.encode(value)


def decode_body(data: bytes, codec: str) -> Any:
    """A body encoded with ``codec``; raises ``ValueError`` when it does not decode."""
    if codec == "msgpack":
        try:
            return _MSGPACK_DECODE(data)
        except ValueError as exc:
            raise ValueError(f"body is not msgpack: {exc}") from None
    return json.loads(data)


async def _read_tcp_request(reader: asyncio.StreamReader) -> tuple[str, dict[str, Any], bytes]:
    (path_len,) = _U16.unpack(await reader.readexactly(2))
    path = (await reader.readexactly(path_len)).decode("utf-8")
    (headers_len,) = _U16.unpack(await reader.readexactly(2))
    headers = json.loads(await reader.readexactly(headers_len) or b"{}")
    (payload_len,) = _U32.unpack(await reader.readexactly(4))
    if payload_len > MAX_FRAME:
        raise RequestPlaneError(f"request of {payload_len} bytes is too large")
    payload = await reader.readexactly(payload_len)
    return path, headers if isinstance(headers, dict) else {}, payload


async def read_frame(reader: asyncio.StreamReader) -> TwoPartFrame:
    """Read one TwoPartCodec frame from a stream."""
    prefix = await reader.readexactly(PREFIX_SIZE)
    header_len, body_len, _checksum = _PREFIX.unpack(prefix)
    if header_len + body_len > MAX_FRAME:
        raise RequestPlaneError(f"frame of {header_len + body_len} bytes is too large")
    rest = await reader.readexactly(header_len + body_len)
    # the frame is complete by construction: split it without copying it whole again
    return TwoPartFrame(header_len, body_len, _checksum, rest[:header_len], rest[header_len:])


def _data_frame(value: Any, codec: str) -> bytes:
    return encode_frame(b"", encode_body(value, codec))


def _header_frame(header: bytes) -> bytes:
    return encode_frame(header, b"")


# -- worker side ------------------------------------------------------------------------------


@dataclass
class IncomingRequest:
    """A request the worker accepted: its id, endpoint path and decoded body."""

    request_id: str
    path: str
    body: dict[str, Any]
    header: dict[str, Any]
    #: the request's payload_codec; the responses use it too
    codec: str = "msgpack"
    #: bytes of response frames written so far
    sent_bytes: int = 0
    #: set when the frontend sent stop/kill or went away
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)


#: Yields the worker's response objects (``Annotated`` dicts) for one request.
StreamHandler = Callable[[IncomingRequest], AsyncGenerator[dict[str, Any], None]]


class RequestPlaneServer:
    """The worker's TCP server: acknowledges requests and streams responses home.

    ``paths`` maps each served endpoint path to its handler; ``record`` (a text file) gets
    every received request frame as a JSON line ``{"__bytes_b64__": ...}``.
    """

    def __init__(
        self,
        host: str,
        port: int,
        paths: dict[str, StreamHandler],
        *,
        record: IO[str] | None = None,
        on_accept: Callable[[IncomingRequest, int], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.paths = paths
        self.record = record
        self.on_accept = on_accept
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.active = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            while True:
                try:
                    path, _headers, payload = await _read_tcp_request(reader)
                except (asyncio.IncompleteReadError, ConnectionError, ValueError):
                    return
                error, request = self._accept(path, payload)
                data = error.encode("utf-8") if error else b""
                writer.write(_U32.pack(len(data)) + data)
                await writer.drain()
                if request is not None:
                    if self.on_accept is not None:
                        self.on_accept(request, len(payload))
                    stream = asyncio.create_task(self._stream(request), name="response-stream")
                    self._tasks.add(stream)
                    stream.add_done_callback(self._tasks.discard)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()

    def _accept(self, path: str, payload: bytes) -> tuple[str, IncomingRequest | None]:
        if self.record is not None:
            self.record.write(json.dumps({"__bytes_b64__": base64.b64encode(payload).decode()}))
            self.record.write("\n")
            self.record.flush()
        try:
            frame = decode_frame(payload, allow_trailing=True)
            header = frame.header
            codec = header.get("payload_codec", "json") if isinstance(header, dict) else ""
            body = decode_body(frame.body, codec)
        except (FrameError, ValueError) as exc:
            return f"invalid request frame: {exc}", None
        if not isinstance(header, dict) or not isinstance(body, dict):
            return "invalid request frame: header and body must be maps", None
        if path not in self.paths:
            return f"Unknown endpoint: {path}", None
        request_id = str(header.get("id", ""))
        return "", IncomingRequest(request_id, path, body, header, codec)

    async def _stream(self, request: IncomingRequest) -> None:
        try:
            info = json.loads(request.header["connection_info"]["info"])
            host, _, port = str(info["address"]).rpartition(":")
            reader, writer = await asyncio.open_connection(host, int(port))
        except (KeyError, TypeError, ValueError, OSError):
            return  # nowhere to send the responses: the frontend times out
        handshake = {"subject": info.get("subject", ""), "stream_type": "response"}
        codec = request.codec
        watcher = asyncio.create_task(self._watch(reader, request))
        try:
            writer.write(_header_frame(encode_header(handshake)))
            writer.write(_header_frame(encode_header({"error": None})))
            handler = self.paths[request.path]
            self.active += 1
            try:
                async with contextlib.aclosing(handler(request)) as outputs:
                    async for output in outputs:
                        if request.cancelled.is_set():
                            break
                        frame = _data_frame({"data": output, "complete_final": False}, codec)
                        request.sent_bytes += len(frame)
                        writer.write(frame)
                        if writer.transport.get_write_buffer_size() > _DRAIN_ABOVE:
                            await writer.drain()
            finally:
                self.active -= 1
            if not request.cancelled.is_set():
                writer.write(_data_frame({"complete_final": True}, codec))
                writer.write(_header_frame(SENTINEL))
                await writer.drain()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(watcher), 10.0)
        except (ConnectionError, OSError):
            request.cancelled.set()
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            writer.close()

    @staticmethod
    async def _watch(reader: asyncio.StreamReader, request: IncomingRequest) -> None:
        try:
            while True:
                frame = await read_frame(reader)
                if frame.header_bytes in (STOP, KILL):
                    request.cancelled.set()
                    return
        except (asyncio.IncompleteReadError, ConnectionError, FrameError, RequestPlaneError):
            if not request.cancelled.is_set():
                request.cancelled.set()


# -- frontend side ----------------------------------------------------------------------------


class _Stream:
    def __init__(self, codec: str) -> None:
        self.codec = codec
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self.writer: asyncio.StreamWriter | None = None


class ResponseServer:
    """The frontend's TCP server that workers call home to with response streams."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._server: asyncio.Server | None = None
        self._streams: dict[str, _Stream] = {}

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Stop accepting streams and end the open ones as broken."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for stream in self._streams.values():
            stream.queue.put_nowait(("broken", None))
            if stream.writer is not None:
                stream.writer.close()

    def open(self, subject: str, codec: str = "msgpack") -> _Stream:
        """Expect a response stream for ``subject`` with bodies in ``codec``."""
        stream = _Stream(codec)
        self._streams[subject] = stream
        return stream

    def discard(self, subject: str) -> None:
        stream = self._streams.pop(subject, None)
        if stream is not None and stream.writer is not None:
            stream.writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream: _Stream | None = None
        try:
            handshake = json.loads((await read_frame(reader)).header_bytes)
            stream = self._streams.get(str(handshake.get("subject")))
            if stream is None:
                return
            stream.writer = writer
            prologue = await read_frame(reader)
            if prologue.body or not prologue.header_bytes:
                raise FrameError("malformed prologue: expected a header-only control message")
            info = json.loads(prologue.header_bytes)
            if not isinstance(info, dict):
                raise FrameError("malformed prologue: expected a JSON object")
            stream.queue.put_nowait(("prologue", info.get("error")))
            while True:
                frame = await read_frame(reader)
                if frame.header_bytes == SENTINEL:
                    stream.queue.put_nowait(("end", None))
                    return
                if frame.body:
                    stream.queue.put_nowait(("data", decode_body(frame.body, stream.codec)))
        except (asyncio.IncompleteReadError, ConnectionError, ValueError, FrameError):
            if stream is not None:
                stream.queue.put_nowait(("broken", None))
        finally:
            writer.close()


class _Connection:
    """One pipelined connection to a worker; acknowledgements come back in order."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.pending: deque[asyncio.Future[bytes]] = deque()
        self.lock = asyncio.Lock()
        self.reader_task = asyncio.create_task(self._read_acks())

    @property
    def alive(self) -> bool:
        return not self.reader_task.done()

    async def _read_acks(self) -> None:
        try:
            while True:
                (length,) = _U32.unpack(await self.reader.readexactly(4))
                data = await self.reader.readexactly(length)
                if self.pending:
                    future = self.pending.popleft()
                    if not future.done():
                        future.set_result(data)
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            while self.pending:
                future = self.pending.popleft()
                if not future.done():
                    future.set_exception(RequestPlaneError("worker closed the connection"))
            self.writer.close()

    async def send(self, message: bytes, timeout: float) -> bytes:
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        async with self.lock:
            if not self.alive:
                raise RequestPlaneError("worker connection is closed")
            self.pending.append(future)
            try:
                self.writer.write(message)
                await self.writer.drain()
            except (ConnectionError, RuntimeError) as exc:
                raise RequestPlaneError(f"cannot send to the worker: {exc}") from None
        return await asyncio.wait_for(future, timeout)

    async def close(self) -> None:
        self.writer.close()
        self.reader_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.reader_task


class RequestPlaneClient:
    """Sends requests to workers and yields their responses (the frontend side).

    ``violations`` are the frontend's active violation modes that change the request frame.
    """

    def __init__(
        self, *, violations: Collection[str] = (), ack_timeout: float = 5.0, host: str = "127.0.0.1"
    ) -> None:
        self.responses = ResponseServer(host)
        self.violations = frozenset(violations)
        self.ack_timeout = ack_timeout
        self.first_response_timeout = 60.0
        self._connections: dict[str, _Connection] = {}
        self._connecting: dict[str, asyncio.Lock] = {}
        self.sent_frames = 0

    async def start(self) -> None:
        await self.responses.start()

    async def close(self) -> None:
        for connection in self._connections.values():
            await connection.close()
        self._connections.clear()
        await self.responses.close()

    async def _connection(self, address: str) -> _Connection:
        connection = self._connections.get(address)
        if connection is not None and connection.alive:
            return connection
        lock = self._connecting.setdefault(address, asyncio.Lock())
        async with lock:
            connection = self._connections.get(address)
            if connection is not None and connection.alive:
                return connection
            host, _, port = address.rpartition(":")
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(host, int(port)), self.ack_timeout
                )
            except (OSError, TimeoutError, ValueError) as exc:
                raise RequestPlaneError(f"cannot connect to worker at {address}: {exc}") from None
            connection = _Connection(reader, writer)
            self._connections[address] = connection
            return connection

    def build_frame(self, request_id: str, subject: str, body: dict[str, Any]) -> bytes:
        """The TwoPartCodec request frame (violation modes applied)."""
        context = request_id
        if "request-plane.connection-info" in self.violations:
            context = str(uuid.uuid4())
        info = {
            "address": self.responses.address,
            "subject": subject,
            "context": context,
            "stream_type": "response",
        }
        header = {
            "id": request_id,
            "request_type": "single_in",
            "response_type": "many_out",
            "payload_codec": "msgpack",
            "connection_info": {
                "transport": "tcp_server",
                "info": json.dumps(info, separators=(",", ":")),
            },
        }
        frame = encode_frame(header, encode_body(body, "msgpack"))
        if "request-plane.checksum" in self.violations:
            frame = frame[:16] + struct.pack(">Q", 0xDEADBEEF) + frame[24:]
        if "request-plane.frame-lengths" in self.violations:
            frame += b"\x00"
        return frame

    async def generate(
        self, address: str, path: str, request_id: str, body: dict[str, Any]
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Send one request and yield the worker's response objects until the stream ends.

        Raises :class:`RequestPlaneError` when the worker cannot be reached or refuses the
        request (before anything is yielded), or breaks the stream.
        """
        subject = str(uuid.uuid4())
        stream = self.responses.open(subject)
        finished = False
        try:
            frame = self.build_frame(request_id, subject, body)
            connection = await self._connection(address)
            message = encode_tcp_request(path, request_headers(path, request_id), frame)
            try:
                ack = await connection.send(message, self.ack_timeout)
            except TimeoutError:
                raise RequestPlaneError(f"worker at {address} did not acknowledge") from None
            self.sent_frames += 1
            if ack:
                raise RequestPlaneError(ack.decode("utf-8", "replace"))
            first = True
            while True:
                timeout = self.first_response_timeout if first else None
                try:
                    kind, value = await asyncio.wait_for(stream.queue.get(), timeout)
                except TimeoutError:
                    raise RequestPlaneError(f"worker at {address} never answered") from None
                if kind == "end":
                    finished = True
                    return
                if kind == "broken":
                    raise RequestPlaneError("the worker's response stream broke")
                if kind == "prologue":
                    first = False
                    if value:
                        raise RequestPlaneError(str(value))
                    continue
                if not isinstance(value, dict):
                    continue
                if value.get("complete_final"):
                    finished = True
                    continue
                data = value.get("data")
                if isinstance(data, dict):
                    yield data
        finally:
            if not finished and stream.writer is not None:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    stream.writer.write(_header_frame(KILL))
            self.responses.discard(subject)
