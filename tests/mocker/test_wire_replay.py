"""Replay the real ai-dynamo 1.6.1 TCP request-plane and direct-ZMQ captures through the
reference, offline: its worker answers real requests as the real worker does, its frontend
side reads real response streams and cancels as the real frontend does, and its event
publishers frame and shape messages as the real worker's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgpack
import pytest
import zmq
import zmq.asyncio
from live_frames import raw, readdress, subject_of, with_subject, zmq_messages

from dynconform.contracts import Validator
from dynconform.contracts.tcp_wire import split_frames
from dynconform.contracts.two_part import decode_frame
from dynconform.mocker import EngineConfig
from dynconform.mocker.event_plane import Publisher, ZmqPublisher, decode_zmq_message
from dynconform.mocker.events import PrefillCompleted
from dynconform.mocker.kv_query import LocalKvIndex
from dynconform.mocker.publishing import EventPump
from dynconform.mocker.request_plane import (
    KILL,
    RequestPlaneClient,
    RequestPlaneError,
    decode_tcp_request,
    read_frame,
)
from dynconform.mocker.worker import Worker, WorkerConfig

VALIDATOR = Validator()
ACK = b"\x00\x00\x00\x00"


def _items(stream: bytes, codec: str = "msgpack") -> list[Any]:
    """The decoded bodies of a response stream's data frames."""
    out = []
    for frame in split_frames(stream):
        body = decode_frame(frame).body
        if body:
            out.append(msgpack.unpackb(body, raw=False) if codec == "msgpack" else json.loads(body))
    return out


def _worker_id(request_name: str) -> int:
    frame = decode_frame(decode_tcp_request(raw(request_name))[2])
    codec = json.loads(frame.header_bytes)["payload_codec"]
    body = msgpack.unpackb(frame.body) if codec == "msgpack" else json.loads(frame.body)
    return int(body["worker_id"])


class _Server:
    """A TCP server on a free loopback port; subclasses serve each connection."""

    server: asyncio.Server | None = None

    @property
    def address(self) -> str:
        assert self.server is not None
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


class Recorder(_Server):
    """A stand-in response server: records what each worker connection writes up to the
    sentinel (then closes it, as a frontend does)."""

    def __init__(self) -> None:
        self.streams: asyncio.Queue[bytes] = asyncio.Queue()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        try:
            while True:
                prefix = await reader.readexactly(24)
                header_len, body_len, _ = struct.unpack(">QQQ", prefix)
                rest = await reader.readexactly(header_len + body_len)
                data += prefix + rest
                if rest[:header_len] == b'"sentinel"':
                    break
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()
            await self.streams.put(data)


@contextlib.asynccontextmanager
async def _worker(tmp: Path, model: Path, instance_id: int) -> AsyncIterator[Worker]:
    config = WorkerConfig(
        model_path=model,
        model_name="tiny",
        file_kv=tmp / "kv",
        engine=EngineConfig(block_size=16, speedup_ratio=0),
    )
    worker = Worker(config)
    worker.instance_id = instance_id
    async with worker:
        yield worker


async def _send(worker: Worker, message: bytes) -> bytes:
    """Write one request message to the worker's TCP server; its acknowledgement."""
    assert worker.server is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", worker.server.port)
    try:
        writer.write(message)
        await writer.drain()
        (length,) = struct.unpack(">I", await reader.readexactly(4))
        return await reader.readexactly(length) if length else b""
    finally:
        writer.close()


async def _answer(tmp: Path, model: Path, request: str, endpoint: str) -> tuple[bytes, str]:
    """The reference worker's response stream to the captured request ``request``."""
    instance_id = _worker_id(request) if endpoint == "kv" else 7587899083018119687
    recorder = Recorder()
    await recorder.start()
    try:
        async with _worker(tmp, model, instance_id) as worker:
            path = worker.kv_query_path if endpoint == "kv" else worker.request_path
            message, subject = readdress(raw(request), path, recorder.address)
            ack = await _send(worker, message)
            assert ack == b"", ack
            stream = await asyncio.wait_for(recorder.streams.get(), 10)
    finally:
        await recorder.close()
    return stream, subject


# -- the worker side ------------------------------------------------------------------------


def test_kv_query_answer_is_byte_identical_to_the_real_worker(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    stream, subject = asyncio.run(_answer(tmp_path, tiny_model_path, "kv-query.request", "kv"))
    real = raw("kv-query.response.empty-tree-dump")
    assert stream == with_subject(real, subject)
    assert VALIDATOR.validate("request-plane.response-stream", stream).ok


def test_json_codec_kv_query_answer_is_byte_identical_to_the_real_worker(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    stream, subject = asyncio.run(
        _answer(tmp_path, tiny_model_path, "json-codec.kv-query.request", "kv")
    )
    assert stream == with_subject(raw("json-codec.kv-query.response"), subject)


@pytest.mark.parametrize("name", ["generate.chat", "generate.completion"])
def test_generate_stream_is_framed_like_the_real_worker(
    tmp_path: Path, tiny_model_path: Path, name: str
) -> None:
    stream, subject = asyncio.run(_answer(tmp_path, tiny_model_path, f"{name}.request", "gen"))
    report = VALIDATOR.validate("request-plane.response-stream", stream)
    assert report.ok, [str(v) for v in report.violations]
    real = raw(f"{name}.response")
    mine_frames, real_frames = split_frames(stream), split_frames(real)
    assert subject_of(stream) == subject
    # the same control frames, byte for byte (the handshake names our subject)
    assert mine_frames[0] == split_frames(with_subject(real, subject))[0]
    assert mine_frames[1] == real_frames[1]
    assert mine_frames[-2:] == real_frames[-2:]
    # items of the same shape, as many tokens (max_tokens), the same end
    mine_items, real_items = _items(stream), _items(real)
    theirs = real_items[0]
    for mine in mine_items[:-1]:
        assert mine.keys() == theirs.keys() == {"data", "complete_final"}
        assert mine["data"].keys() == theirs["data"].keys() == {"data"}
        inner, real_inner = mine["data"]["data"], theirs["data"]["data"]
        assert inner.keys() - {"completion_usage"} == real_inner.keys() - {"completion_usage"}

    def tokens(items: list[Any]) -> int:
        return sum(len(i["data"]["data"]["token_ids"]) for i in items[:-1])

    assert tokens(mine_items) == tokens(real_items) > 0
    assert mine_items[-1] == real_items[-1] == {"complete_final": True}
    assert mine_items[-2]["data"]["data"]["finish_reason"] == "length"
    assert real_items[-2]["data"]["data"]["finish_reason"] == "length"


def test_unknown_endpoint_is_refused_in_the_acknowledgement(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    async def scenario() -> bytes:
        async with _worker(tmp_path, tiny_model_path, 1) as worker:
            message, _ = readdress(raw("generate.chat.request"), "1/dynamo/backend/x", "h:1")
            return await _send(worker, message)

    assert asyncio.run(scenario()) == b"Unknown endpoint: 1/dynamo/backend/x"


# -- the frontend side ----------------------------------------------------------------------


class ReplayWorker(_Server):
    """A stand-in worker: acknowledges each request and plays a captured response stream
    back to the requester's response server; records what the requester writes back."""

    def __init__(self, stream: bytes) -> None:
        self.stream = stream
        self.requests: list[tuple[str, dict[str, Any], bytes]] = []
        self.returned: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readexactly(2)
                path = await reader.readexactly(struct.unpack(">H", head)[0])
                headers = await reader.readexactly(
                    struct.unpack(">H", await reader.readexactly(2))[0]
                )
                payload = await reader.readexactly(
                    struct.unpack(">I", await reader.readexactly(4))[0]
                )
                self.requests.append((path.decode(), json.loads(headers), payload))
                writer.write(ACK)
                await writer.drain()
                task = asyncio.create_task(self._call_home(payload))
                self._tasks.add(task)
        writer.close()

    async def _call_home(self, payload: bytes) -> None:
        info = json.loads(json.loads(decode_frame(payload).header_bytes)["connection_info"]["info"])
        host, _, port = info["address"].rpartition(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        stream = with_subject(self.stream, info["subject"])
        writer.write(stream)
        await writer.drain()
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            frame = await read_frame(reader)
            await self.returned.put(frame.header_bytes)
        writer.close()

    async def close(self) -> None:
        await super().close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def _consume(stream: bytes) -> tuple[list[Any], ReplayWorker]:
    """What the reference's request-plane client yields for a captured response stream."""
    worker = ReplayWorker(stream)
    await worker.start()
    client = RequestPlaneClient()
    await client.start()
    items: list[Any] = []
    try:
        outputs = client.generate(worker.address, "1/dynamo/backend/generate", "req-1", {"a": 1})
        async with contextlib.aclosing(outputs):
            async for item in outputs:
                items.append(item)
    finally:
        await client.close()
        await worker.close()
    return items, worker


@pytest.mark.parametrize("name", ["generate.chat.response", "generate.completion.response"])
def test_client_reads_real_response_streams(name: str) -> None:
    items, worker = asyncio.run(_consume(raw(name)))
    real = [item["data"] for item in _items(raw(name)) if "data" in item]
    assert items == real
    assert items[-1]["data"]["finish_reason"] == "length"
    path, headers, _ = worker.requests[0]
    assert set(headers) == {"request-id", "x-endpoint-path", "x-frontend-send-ts-ns"}
    assert headers["x-endpoint-path"] == path
    assert headers["request-id"] == "req-1"


def test_client_kill_is_byte_identical_to_the_real_frontend() -> None:
    async def scenario() -> bytes:
        # the captured stream of a cancelled request: it never ends, so the client kills it
        worker = ReplayWorker(raw("generate.cancelled.response-head"))
        await worker.start()
        client = RequestPlaneClient()
        await client.start()
        try:
            outputs = client.generate(worker.address, "1/d/b/generate", "req-2", {"a": 1})
            async with contextlib.aclosing(outputs):
                async for _ in outputs:
                    break
            return await asyncio.wait_for(worker.returned.get(), 5)
        finally:
            await client.close()
            await worker.close()

    header = asyncio.run(scenario())
    assert header == KILL == b'"kill"'
    real = decode_frame(raw("generate.cancelled.kill"))
    assert real.header_bytes == header
    assert real.body == b""


def test_client_fails_a_stream_with_a_data_only_prologue() -> None:
    """The old reference framing: what a 1.6.1 frontend calls a malformed prologue."""
    frames = split_frames(raw("generate.chat.response"))
    broken = frames[0] + b"".join(
        (
            struct.pack(">QQQ", 0, 14, 0) + b'{"error":null}',
            *frames[2:],
        )
    )

    async def scenario() -> None:
        await _consume(broken)

    with pytest.raises(RequestPlaneError, match="broke"):
        asyncio.run(scenario())


# -- the event plane ------------------------------------------------------------------------


def test_real_zmq_messages_decode_and_validate() -> None:
    messages = zmq_messages()
    assert {topic for topic, _ in messages} == {
        "kv-events",
        "kv_metrics",
        "active_sequences_events",
    }
    for topic, frames in messages:
        wire_topic, publisher_id, sequence, envelope = decode_zmq_message(frames)
        decoded = msgpack.unpackb(envelope, raw=False)
        assert (wire_topic, publisher_id, sequence) == (
            topic,
            decoded["publisher_id"],
            decoded["sequence"],
        )
        view = {
            "subject": f"namespace.dynamo.component.backend.endpoint.generate.{topic}",
            "decoded": {**decoded, "payload": {"__msgpack__": msgpack.unpackb(decoded["payload"])}},
        }
        report = VALIDATOR.validate("events.message", view)
        assert report.ok, [str(v) for v in report.violations]


class _Capture(Publisher):
    def __init__(self, topic: str, kind: str) -> None:
        super().__init__(topic, 5)
        self.kind = kind
        self.payloads: list[Any] = []

    async def publish(self, payload: Any) -> None:
        self.payloads.append(payload)


@pytest.mark.parametrize("kind", ["Zmq", "Nats"])
def test_active_sequences_payload_is_a_batch_on_zmq_only(kind: str) -> None:
    real = [
        msgpack.unpackb(msgpack.unpackb(decode_zmq_message(f)[3])["payload"])
        for t, f in zmq_messages()
        if t == "active_sequences_events"
    ]

    async def scenario() -> list[Any]:
        publisher = _Capture("active_sequences_events", kind)
        pump = EventPump(42, {"active_sequences_events": publisher})
        pump.start()
        pump.sink(PrefillCompleted("r-1"))
        await pump.flush()
        await pump.close()
        return publisher.payloads

    (payload,) = asyncio.run(scenario())
    event = payload["events"][0] if kind == "Zmq" else payload
    assert event.keys() == real[0]["events"][0].keys()
    if kind == "Zmq":
        assert payload.keys() == real[0].keys() == {"events"}
        assert len(payload["events"]) == 1
    else:
        assert "events" not in payload


def test_zmq_publisher_frames_like_the_real_worker() -> None:
    (topic, real), *_ = zmq_messages()

    async def scenario() -> list[bytes]:
        publisher = ZmqPublisher(topic, 1234, host="127.0.0.1")
        await publisher.start()
        context = zmq.asyncio.Context.instance()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.LINGER, 0)
        sub.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sub.connect(publisher.endpoint)
        try:
            for _ in range(100):
                await publisher.publish([{"x": 1}])
                if await sub.poll(50):
                    return list(await sub.recv_multipart())
            raise AssertionError("nothing received")
        finally:
            sub.close()
            await publisher.close()

    mine = asyncio.run(scenario())
    assert [len(p) for p in mine[:3]] == [len(p) for p in real[:3]]
    assert mine[0] == real[0] == topic.encode()
    assert mine[3][0] == real[3][0] == 1
    assert struct.unpack(">I", mine[3][1:5])[0] == len(mine[3]) - 5


# -- the KV state query source --------------------------------------------------------------


def _tree_dump(name: str) -> dict[str, Any]:
    (answer,) = [i["data"] for i in _items(raw(name)) if "data" in i]
    return dict(answer)


@pytest.mark.parametrize(
    "name", ["kv-query.response.tree-dump", "kv-query.response.tree-dump-one-event"]
)
def test_tree_dump_matches_the_real_worker_after_the_same_events(name: str) -> None:
    real = _tree_dump(name)
    events = real["TreeDump"]["events"]
    worker_id = events[0]["worker_id"]
    index = LocalKvIndex(worker_id)
    for event in events:  # no removals: the dump replays exactly what was published
        index.apply(event)
    request = {"worker_id": worker_id, "dp_rank": 0, "start_event_id": None, "end_event_id": None}
    answer = index.answer(request | {"supports_tree_dump_failed": True, "kind": "recovery"})
    assert answer == real
    assert VALIDATOR.validate("request-plane.kv-query-response", answer).ok


def _stored(event_id: int, parent: int | None, *hashes: int) -> dict[str, Any]:
    blocks = [{"block_hash": h, "tokens_hash": h + 1000, "mm_extra_info": None} for h in hashes]
    stored = {"parent_hash": parent, "start_position": None, "blocks": blocks}
    event = {"event_id": event_id, "data": {"stored": stored}, "dp_rank": 0}
    return {"worker_id": 9, "storage_tier": "device", "residency_domain": "worker", "event": event}


def _removed(event_id: int, *hashes: int) -> dict[str, Any]:
    event = {
        "event_id": event_id,
        "data": {"removed": {"block_hashes": list(hashes)}},
        "dp_rank": 0,
    }
    return {"worker_id": 9, "storage_tier": "device", "residency_domain": "worker", "event": event}


def _query(index: LocalKvIndex, start: int | None, end: int | None = None, **kw: Any) -> Any:
    request = {"worker_id": 9, "dp_rank": 0, "start_event_id": start, "end_event_id": end}
    return index.answer(request | kw)


def test_kv_index_answers_every_kind_of_query() -> None:
    index = LocalKvIndex(9, buffer_size=3)
    assert _query(index, None) == {
        "TreeDump": {"events": [], "last_event_id": 0, "reset_scope": "all"}
    }
    for event in (_stored(1, None, 1, 2, 3), _stored(2, 3, 4), _removed(3, 4, 3), _stored(4, 2, 5)):
        index.apply(event)
    dump = _query(index, None)["TreeDump"]
    assert dump["last_event_id"] == 4
    assert [e["event"]["event_id"] for e in dump["events"]] == [1, 2]
    assert [
        [b["block_hash"] for b in e["event"]["data"]["stored"]["blocks"]] for e in dump["events"]
    ] == [[1, 2], [5]]
    assert dump["events"][1]["event"]["data"]["stored"]["parent_hash"] == 2
    assert VALIDATOR.validate("request-plane.kv-query-response", {"TreeDump": dump}).ok
    events = _query(index, 3)["Events"]
    assert [e["event"]["event_id"] for e in events["events"]] == [3, 4]
    assert events["last_event_id"] == 4
    assert "TreeDump" in _query(index, 1)  # older than the buffer (2..4)
    assert _query(index, 5)["TooNew"] == {
        "requested_start": 5,
        "requested_end": 4,
        "newest_available": 4,
    }
    assert _query(index, 4, 2) == {"InvalidRange": {"start_id": 4, "end_id": 2}}
    assert "Error" in index.answer({"worker_id": 8, "dp_rank": 0, "start_event_id": None})
    assert "Error" in _query(index, None, kind={"status": {}})
    index.apply({**_stored(5, None, 7), "event": {"event_id": 5, "data": "cleared", "dp_rank": 0}})
    assert _query(index, None)["TreeDump"]["events"] == []


def test_worker_tree_dump_after_a_real_request_matches_the_real_worker(
    tmp_path: Path, tiny_model_path: Path
) -> None:
    """The captured chat prompt leaves the same three blocks in both workers' dumps."""

    async def scenario() -> bytes:
        recorder = Recorder()
        await recorder.start()
        try:
            async with _worker(tmp_path, tiny_model_path, _worker_id("kv-query.request")) as w:
                message, _ = readdress(
                    raw("generate.chat.request"), w.request_path, recorder.address
                )
                assert await _send(w, message) == b""
                await asyncio.wait_for(recorder.streams.get(), 10)
                message, _ = readdress(raw("kv-query.request"), w.kv_query_path, recorder.address)
                assert await _send(w, message) == b""
                return await asyncio.wait_for(recorder.streams.get(), 10)
        finally:
            await recorder.close()

    (answer,) = [i["data"] for i in _items(asyncio.run(scenario())) if "data" in i]
    real = _tree_dump("kv-query.response.tree-dump-one-event")

    def blocks(dump: dict[str, Any]) -> list[Any]:
        return [
            (e["event"]["event_id"], e["event"]["data"]["stored"]["parent_hash"], b)
            for e in dump["TreeDump"]["events"]
            for b in e["event"]["data"]["stored"]["blocks"]
        ]

    assert blocks(answer) == blocks(real)
    assert len(blocks(answer)) == 3
    assert answer["TreeDump"]["last_event_id"] == real["TreeDump"]["last_event_id"] == 1
