"""Event-plane taps: subscribe for the whole run and keep every message in the contract view.

Each message becomes an ``events.message`` instance, ``{"subject", "plane", "decoded"}``,
exactly like the NATS captures:

- NATS: one subscription to ``>``; subjects under ``namespace.`` are the event plane, the
  subjects of ``nats_tcp`` endpoints (from discovery) the request plane.
- ZMQ (ai-dynamo 1.6.1 direct mode): every ``EventChannel`` record with a ``Zmq`` transport
  names a PUB socket; the tap connects a SUB socket to each as it appears. A message is four
  frames: the topic, the publisher id and the sequence (u64 big-endian each), then a frame
  of version byte 1, the envelope length (u32 big-endian) and the msgpack envelope. The
  subject is formed from the channel's scope and the topic frame.

Framing faults (frame count, header, id/sequence frames that disagree with the envelope) are
kept apart in :attr:`EventTap.framing_issues`.

With :attr:`EventTap.on_frame` set, a tap keeps nothing: it hands each message's raw bytes
(the msgpack envelope, or the request-plane frame) to that callable instead, for validation
at line rate.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgpack
import msgspec
import zmq
from zmq.utils.monitor import recv_monitor_message

from dynconform.conformance._discovery_tap import DiscoveryTap
from dynconform.contracts import json_view
from dynconform.contracts.event_subjects import format_subject

__all__ = [
    "MAX_MESSAGES",
    "EventTap",
    "NatsTap",
    "ZmqEventTap",
    "scope_names",
]

#: Messages kept per run; later ones are counted but not kept.
MAX_MESSAGES = 200_000
_U64 = struct.Struct(">Q")
_FRAME_HEAD = struct.Struct(">BI")
ZMQ_FRAME_VERSION = 1
#: ``(plane, subject, data)`` of one message, for taps that hand messages on raw
FrameSink = Callable[[str, str, bytes], None]


class _Ids(msgspec.Struct):
    publisher_id: Any = msgspec.UNSET
    sequence: Any = msgspec.UNSET


_IDS = msgspec.msgpack.Decoder(_Ids)


def _envelope_ids(raw: bytes) -> dict[str, Any] | None:
    """``publisher_id`` and ``sequence`` of an envelope (those present), without its payload."""
    try:
        ids = _IDS.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    return {k: v for k, v in msgspec.structs.asdict(ids).items() if v is not msgspec.UNSET}


def scope_names(scope: Any) -> tuple[str, str | None, str | None] | None:
    """``(namespace, component, endpoint)`` of an event scope record, or ``None``.

    The scope is tagged by ``kind``: ``{"kind": "namespace", "name"}``, ``{"kind":
    "component", "namespace", "component"}`` or ``{"kind": "endpoint", "endpoint":
    {"namespace", "component", "name"}}``.
    """
    if not isinstance(scope, dict):
        return None
    kind = scope.get("kind")
    if kind == "namespace":
        names: tuple[Any, ...] = (scope.get("name"),)
    elif kind == "component":
        names = (scope.get("namespace"), scope.get("component"))
    elif kind == "endpoint" and isinstance(scope.get("endpoint"), dict):
        endpoint = scope["endpoint"]
        names = (endpoint.get("namespace"), endpoint.get("component"), endpoint.get("name"))
    else:
        return None
    if not all(isinstance(name, str) for name in names):
        return None
    namespace, component, name = (*names, None, None)[:3]
    return namespace, component, name


def _envelope_view(raw: bytes) -> Any:
    try:
        return json_view(msgpack.unpackb(raw, raw=False, strict_map_key=False))
    except Exception:
        return {"__bytes_b64__": base64.b64encode(raw).decode("ascii")}


class EventTap:
    """Collects messages from a background thread; subclasses implement :meth:`_run`."""

    kind = ""

    def __init__(self) -> None:
        self._messages: list[dict[str, Any]] = []
        self.dropped = 0
        self.framing_issues: list[str] = []
        #: framing faults found, including those beyond the ones kept
        self.framing_total = 0
        self.errors: list[str] = []
        #: when set, messages go here as raw bytes instead of being kept
        self.on_frame: FrameSink | None = None
        self.other = 0
        self.by_subject: Counter[str] = Counter()
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self, timeout: float = 10.0) -> None:
        self._thread = threading.Thread(target=self._guarded, name=f"tap-{self.kind}", daemon=True)
        self._thread.start()
        self._ready.wait(timeout)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _guarded(self) -> None:
        try:
            self._run()
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
        finally:
            self._ready.set()

    def _run(self) -> None:
        raise NotImplementedError

    def _keep(self, message: dict[str, Any]) -> None:
        with self._lock:
            self.by_subject[message["subject"]] += 1
            if len(self._messages) < MAX_MESSAGES:
                self._messages.append(message)
            else:
                self.dropped += 1
            self._lock.notify_all()

    def _framing(self, issue: str) -> None:
        with self._lock:
            self.framing_total += 1
            if len(self.framing_issues) < 1000:
                self.framing_issues.append(issue)

    def messages(self, plane: str | None = "event_plane") -> list[dict[str, Any]]:
        """The messages kept so far (of one plane, or all with ``None``), in arrival order."""
        with self._lock:
            kept = list(self._messages)
        if plane is None:
            return kept
        return [m for m in kept if m.get("plane", "event_plane") == plane]

    def count(self) -> int:
        with self._lock:
            return len(self._messages)

    def summary(self) -> dict[str, Any]:
        with self._lock:
            planes = Counter(m.get("plane", "event_plane") for m in self._messages)
            topics = Counter(
                m["decoded"].get("topic")
                for m in self._messages
                if isinstance(m.get("decoded"), dict)
                and m.get("plane", "event_plane") == "event_plane"
            )
            return {
                "transport": self.kind,
                "messages": len(self._messages) + self.dropped,
                "byPlane": dict(sorted(planes.items())),
                "byTopic": {str(k): v for k, v in sorted(topics.items(), key=str)},
                "notKept": self.dropped,
                "framingIssues": len(self.framing_issues),
                "errors": list(self.errors[:5]),
            }


class ZmqEventTap(EventTap):
    """Connects to every ZMQ ``EventChannel`` the discovery tap reports, as it appears, and
    to the ``endpoints`` given (the only ones without a discovery tap)."""

    kind = "zmq"

    def __init__(
        self,
        discovery: DiscoveryTap | None,
        *,
        endpoints: tuple[str, ...] = (),
        scope: tuple[str, str | None, str | None] | None = None,
    ) -> None:
        super().__init__()
        self.discovery = discovery
        #: endpoints given explicitly, and the scope of their subjects unless a channel
        #: record names one (``None``: the subject is the topic alone)
        self.fixed = endpoints
        self.fixed_scope = scope
        self.connected: dict[str, tuple[str, str | None, str | None] | None] = {}
        #: endpoints whose ZMTP handshake completed, so the subscription has been sent
        self.handshaken: set[str] = set()

    def channels(self) -> dict[str, tuple[str, str | None, str | None] | None]:
        """The ZMQ endpoints to connect: from ``EventChannel`` records plus fixed ones."""
        found: dict[str, tuple[str, str | None, str | None] | None] = dict.fromkeys(
            self.fixed, self.fixed_scope
        )
        records = self.discovery.records("EventChannel") if self.discovery is not None else []
        for record in records:
            transport = record.get("transport")
            if not isinstance(transport, dict) or transport.get("kind") != "Zmq":
                continue
            config = transport.get("config")
            endpoint = config.get("endpoint") if isinstance(config, dict) else None
            if isinstance(endpoint, str):
                found[endpoint] = scope_names(record.get("scope"))
        return found

    def wait_connected(self, timeout: float) -> bool:
        """Wait until every channel now in discovery has a socket that completed its
        handshake (a SUB socket only receives what is published after that)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if set(self.channels()) <= self.handshaken:
                time.sleep(0.05)  # the subscription follows the handshake on the wire
                return True
            time.sleep(0.02)
        return False

    def _run(self) -> None:
        context = zmq.Context()
        poller = zmq.Poller()
        sockets: dict[zmq.Socket[bytes], tuple[str, tuple[str, str | None, str | None] | None]] = {}
        monitors: dict[zmq.Socket[bytes], str] = {}
        self._ready.set()
        try:
            while not self._stop.is_set():
                for endpoint, scope in self.channels().items():
                    if endpoint in self.connected:
                        continue
                    sock: zmq.Socket[bytes] = context.socket(zmq.SUB)
                    sock.setsockopt(zmq.LINGER, 0)
                    sock.setsockopt(zmq.RCVHWM, 100_000)
                    sock.setsockopt(zmq.SUBSCRIBE, b"")
                    monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
                    sock.connect(endpoint)
                    poller.register(sock, zmq.POLLIN)
                    poller.register(monitor, zmq.POLLIN)
                    sockets[sock] = (endpoint, scope)
                    monitors[monitor] = endpoint
                    self.connected[endpoint] = scope
                for sock, _ in poller.poll(50):
                    if sock in monitors:
                        with contextlib.suppress(zmq.ZMQError):
                            recv_monitor_message(sock, zmq.NOBLOCK)
                            self.handshaken.add(monitors[sock])
                        continue
                    while True:
                        try:
                            parts = sock.recv_multipart(zmq.NOBLOCK)
                        except zmq.Again:
                            break
                        self._decode(parts, *sockets[sock])
        finally:
            for sock in sockets:
                with contextlib.suppress(zmq.ZMQError):
                    sock.disable_monitor()
                sock.close(0)
            for monitor in monitors:
                monitor.close(0)
            context.term()

    def _decode(
        self, parts: list[bytes], endpoint: str, scope: tuple[str, str | None, str | None] | None
    ) -> None:
        where = f"ZMQ {endpoint}"
        if len(parts) != 4:
            self._framing(f"{where}: message of {len(parts)} frames, expected 4")
            return
        topic_raw, pid_raw, seq_raw, frame = parts
        topic = topic_raw.decode("utf-8", errors="replace")
        if len(pid_raw) != 8 or len(seq_raw) != 8:
            self._framing(f"{where} topic {topic!r}: publisher id/sequence frames are not 8 bytes")
            return
        if len(frame) < _FRAME_HEAD.size:
            self._framing(f"{where} topic {topic!r}: event frame shorter than its header")
            return
        version, length = _FRAME_HEAD.unpack_from(frame)
        envelope = frame[_FRAME_HEAD.size :]
        if version != ZMQ_FRAME_VERSION:
            self._framing(f"{where} topic {topic!r}: frame version {version}, expected 1")
        if length != len(envelope):
            self._framing(
                f"{where} topic {topic!r}: frame header says {length} bytes, {len(envelope)} follow"
            )
        sink = self.on_frame
        decoded = _envelope_view(envelope) if sink is None else _envelope_ids(envelope)
        if isinstance(decoded, dict):
            for name, raw in (("publisher_id", pid_raw), ("sequence", seq_raw)):
                value = _U64.unpack(raw)[0]
                if name in decoded and decoded[name] != value:
                    self._framing(
                        f"{where} topic {topic!r}: {name} frame {value} differs from the "
                        f"envelope's {decoded[name]}"
                    )
        if scope is None:
            subject = topic
        else:
            namespace, component, endpoint_name = scope
            subject = format_subject(namespace, topic, component=component, endpoint=endpoint_name)
        if sink is not None:
            sink("event_plane", subject, envelope)
            return
        self._keep({"subject": subject, "plane": "event_plane", "decoded": decoded})


class NatsTap(EventTap):
    """Subscribes to every subject of a NATS server (``>``)."""

    kind = "nats"

    def __init__(self, url: str, discovery: DiscoveryTap | None = None) -> None:
        super().__init__()
        self.url = url
        self.discovery = discovery

    def request_subjects(self) -> set[str]:
        """Subjects of the request plane: the ``nats_tcp`` transports of Endpoint records."""
        if self.discovery is None:
            return set()
        subjects = set()
        for record in self.discovery.records("Endpoint"):
            transport = record.get("transport")
            if isinstance(transport, dict) and isinstance(transport.get("nats_tcp"), str):
                subjects.add(transport["nats_tcp"])
        return subjects

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        import nats

        nc = await nats.connect(
            self.url, connect_timeout=5, max_reconnect_attempts=3, allow_reconnect=True
        )
        try:
            sub = await nc.subscribe(">")
            await nc.flush()
            self._ready.set()
            while not self._stop.is_set():
                try:
                    msg = await sub.next_msg(timeout=0.1)
                except Exception as exc:
                    if type(exc).__name__ == "TimeoutError" or isinstance(exc, TimeoutError):
                        continue
                    raise
                self._route(msg.subject, bytes(msg.data))
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    def _route(self, subject: str, data: bytes) -> None:
        if subject.startswith("namespace."):
            plane = "event_plane"
        elif subject in self.request_subjects():
            plane = "request_plane"
        else:
            with self._lock:
                self.other += 1
            return
        sink = self.on_frame
        if sink is not None:
            sink(plane, subject, data)
        elif plane == "event_plane":
            self._keep({"subject": subject, "plane": plane, "decoded": _envelope_view(data)})
        else:
            view = {"__bytes_b64__": base64.b64encode(data).decode("ascii")}
            self._keep({"subject": subject, "plane": plane, "decoded": view})
