"""Discovery taps: watch the discovery store for the whole run and keep every record seen.

A tap polls the store (a ``DYN_FILE_KV`` directory or etcd's v3 JSON gateway) and keeps
each distinct version of each entry in the capture form that ``discovery.entry`` describes:
``{"path", "value"}`` for the file backend, ``{"key", "lease", "value"}`` for etcd. It also
keeps a timeline of when keys appeared and vanished, for the fault-tolerance checks.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from dynconform.services import is_server_url

__all__ = [
    "DiscoveryTap",
    "EtcdDiscoveryTap",
    "FileDiscoveryTap",
    "KeyEvent",
    "discovery_tap",
    "entry_key",
]

#: Every key Dynamo writes starts with this prefix.
ROOT = "v1/"


def entry_key(entry: dict[str, Any]) -> str:
    """The key of an entry (the etcd key, or the file path relative to the store root)."""
    return str(entry["key"] if "key" in entry else entry["path"])


@dataclass(frozen=True, slots=True)
class KeyEvent:
    """A key appeared (``entry`` set) or vanished (``entry`` is ``None``) at ``at``."""

    at: float
    key: str
    entry: dict[str, Any] | None


def _of_type(entries: dict[str, dict[str, Any]], record_type: str) -> list[dict[str, Any]]:
    return [
        e["value"]
        for e in entries.values()
        if isinstance(e.get("value"), dict) and e["value"].get("type") == record_type
    ]


class DiscoveryTap:
    """Polls a store in a background thread; subclasses implement :meth:`read`."""

    kind = ""

    def __init__(self, location: str, interval: float = 0.1) -> None:
        self.location = location
        self.interval = interval
        self.errors: list[str] = []
        self._current: dict[str, dict[str, Any]] = {}
        self._versions: list[dict[str, Any]] = []
        self._seen: set[str] = set()
        self._timeline: list[KeyEvent] = []
        #: whether every distinct version of every entry is kept (:meth:`entries`); a long
        #: live tap turns it off and :meth:`drain` s the timeline, so nothing grows with time
        self.keep_history = True
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.polls = 0

    def read(self) -> dict[str, dict[str, Any]]:
        """The store's entries now, by key."""
        raise NotImplementedError

    def start(self) -> None:
        self.poll_once()  # fail fast on an unreachable store
        self._thread = threading.Thread(target=self._run, name=f"tap-{self.kind}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll_once()
            except Exception as exc:  # keep tapping; the checks report the errors
                if len(self.errors) < 100:
                    self.errors.append(f"{type(exc).__name__}: {exc}")

    def poll_once(self) -> None:
        now = self.read()
        stamp = time.monotonic()
        with self._lock:
            self.polls += 1
            for key, entry in now.items():
                if self._current.get(key) != entry:
                    if self.keep_history:
                        fingerprint = json.dumps(entry, sort_keys=True)
                        if fingerprint not in self._seen:
                            self._seen.add(fingerprint)
                            self._versions.append(entry)
                    self._timeline.append(KeyEvent(stamp, key, entry))
            for key in self._current.keys() - now.keys():
                self._timeline.append(KeyEvent(stamp, key, None))
            self._current = now
            self._lock.notify_all()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """The entries present at the last poll, by key."""
        with self._lock:
            return dict(self._current)

    def entries(self) -> list[dict[str, Any]]:
        """Every distinct version of every entry seen during the run, in order."""
        with self._lock:
            return list(self._versions)

    def timeline(self, start: int = 0) -> list[KeyEvent]:
        """Keys appearing, changing and vanishing, in order (from the ``start``-th on)."""
        with self._lock:
            return self._timeline[start:]

    def drain(self) -> list[KeyEvent]:
        """The timeline so far, which is then forgotten (the next call gives what follows)."""
        with self._lock:
            changes, self._timeline = self._timeline, []
            return changes

    def records(self, record_type: str) -> list[dict[str, Any]]:
        """The current records (values) of one ``type``: Endpoint, Model, EventChannel, ..."""
        return _of_type(self.snapshot(), record_type)

    def wait_for_record(self, record_type: str, timeout: float) -> bool:
        """Wait until a record of ``record_type`` is present; whether it was within ``timeout``."""
        return self.wait_for(lambda snap: bool(_of_type(snap, record_type)), timeout)

    def wait_for(
        self, predicate: Callable[[dict[str, dict[str, Any]]], bool], timeout: float
    ) -> bool:
        """Wait until ``predicate(snapshot)`` holds; whether it did within ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not predicate(dict(self._current)):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.5))
            return True

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {
                "store": self.location,
                "polls": self.polls,
                "entriesSeen": len(self._versions),
                "keysNow": len(self._current),
                "errors": list(self.errors[:5]),
            }


class FileDiscoveryTap(DiscoveryTap):
    """Dynamo's file backend: ``root/v1/<kind>/<percent-encoded key>``, one JSON file each.

    Owners touch their files while they live; a file older than ``ttl`` seconds belongs to
    a dead owner and counts as absent, as Dynamo's readers treat it.
    """

    kind = "file"

    def __init__(self, root: Path, *, ttl: float = 10.0, interval: float = 0.1) -> None:
        super().__init__(f"file://{root}", interval)
        self.root = root
        self.ttl = ttl

    def read(self) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        base = self.root / "v1"
        if not base.is_dir():
            return found
        now = time.time()
        for kind_dir in sorted(base.iterdir()):
            if not kind_dir.is_dir():
                continue
            for path in sorted(kind_dir.iterdir()):
                if path.name.startswith("."):
                    continue  # an owner's write in progress
                try:
                    if now - path.stat().st_mtime > self.ttl:
                        continue
                    raw = path.read_bytes()
                except OSError:
                    continue
                rel = path.relative_to(self.root).as_posix()
                try:
                    value: Any = json.loads(raw)
                except ValueError:
                    value = raw.decode("utf-8", errors="replace")
                found[rel] = {"path": rel, "value": value}
        return found


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _prefix_end(prefix: bytes) -> bytes:
    end = bytearray(prefix)
    end[-1] += 1
    return bytes(end)


class EtcdDiscoveryTap(DiscoveryTap):
    """etcd through its v3 JSON gateway: a range read of every key under ``v1/``."""

    kind = "etcd"

    def __init__(self, url: str, *, interval: float = 0.1, timeout: float = 3.0) -> None:
        super().__init__(url, interval)
        self.url = url.rstrip("/")
        self.timeout = timeout

    def read(self) -> dict[str, dict[str, Any]]:
        body = json.dumps(
            {"key": _b64(ROOT.encode()), "range_end": _b64(_prefix_end(ROOT.encode()))}
        ).encode()
        request = urllib.request.Request(
            f"{self.url}/v3/kv/range",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=self.timeout) as response:
            data = json.loads(response.read())
        found: dict[str, dict[str, Any]] = {}
        for kv in data.get("kvs", []):
            key = base64.b64decode(kv["key"]).decode("utf-8", errors="replace")
            raw = base64.b64decode(kv.get("value", ""))
            try:
                value: Any = json.loads(raw)
            except ValueError:
                value = raw.decode("utf-8", errors="replace")
            found[key] = {"key": key, "lease": str(int(kv.get("lease", 0))), "value": value}
        return found


def discovery_tap(location: str) -> DiscoveryTap:
    """A tap for ``file:///dir[?ttl=SECONDS]`` or ``etcd://host:port`` (also ``http://``).

    Raises :class:`ValueError` for another scheme.
    """
    parts = urlsplit(location)
    if parts.scheme == "file":
        ttl = 10.0
        with contextlib.suppress(KeyError, IndexError, ValueError):
            ttl = float(parse_qs(parts.query)["ttl"][0])
        return FileDiscoveryTap(Path(parts.netloc + parts.path), ttl=ttl)
    if parts.scheme in ("etcd", "http", "https"):
        scheme = "https" if parts.scheme == "https" else "http"
        if not parts.netloc:
            raise ValueError(f"discovery {location!r} names no host:port")
        return EtcdDiscoveryTap(f"{scheme}://{parts.netloc}")
    raise ValueError(f"discovery {location!r}: expected file:///DIR or etcd://HOST:PORT")


def check_location(location: str) -> None:
    """Raise :class:`ValueError` (one line) unless ``location`` names a discovery store that
    can be tapped: an existing ``file://`` directory or ``etcd://HOST:PORT``. Nothing is
    contacted."""
    parts = urlsplit(location)
    if parts.scheme == "file" and not parts.netloc + parts.path:
        raise ValueError(f"discovery {location!r}: expected file://DIR")
    if parts.scheme == "etcd" and not is_server_url(location, ("etcd",)):
        raise ValueError(f"discovery {location!r}: expected etcd://HOST:PORT")
    tap = discovery_tap(location)
    if isinstance(tap, FileDiscoveryTap) and not tap.root.is_dir():
        raise ValueError(f"discovery {location!r}: {tap.root} is not a directory")
