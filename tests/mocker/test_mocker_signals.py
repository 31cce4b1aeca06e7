"""A mock server process stops on SIGTERM/SIGINT, even while it is still starting."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator

import pytest

from dynconform.mocker._signals import serve_until_signalled


class Component:
    """Takes ``start_seconds`` to start; records what happens to it."""

    def __init__(self, start_seconds: float, signal_at_start: bool) -> None:
        self.start_seconds = start_seconds
        self.signal_at_start = signal_at_start
        self.events: list[str] = []

    async def __aenter__(self) -> Component:
        if self.signal_at_start:
            os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.sleep(self.start_seconds)
        except asyncio.CancelledError:
            self.events.append("start cancelled")
            raise
        self.events.append("started")
        if not self.signal_at_start:
            asyncio.get_running_loop().call_later(0.05, os.kill, os.getpid(), signal.SIGINT)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.events.append("stopped")


@pytest.fixture(autouse=True)
def _keep_handlers() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_a_signal_while_starting_cancels_the_start() -> None:
    component = Component(start_seconds=5, signal_at_start=True)
    started = time.monotonic()
    asyncio.run(serve_until_signalled(component))
    assert component.events == ["start cancelled"]
    assert time.monotonic() - started < 4


def test_a_signal_once_started_stops_the_component() -> None:
    component = Component(start_seconds=0, signal_at_start=False)
    asyncio.run(serve_until_signalled(component))
    assert component.events == ["started", "stopped"]
