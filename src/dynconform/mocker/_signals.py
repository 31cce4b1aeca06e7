"""Run a server component until SIGTERM or SIGINT, then leave its ``async with`` block."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AbstractAsyncContextManager
from typing import Any


async def serve_until_signalled(component: AbstractAsyncContextManager[Any]) -> None:
    """Start ``component``, wait for SIGTERM/SIGINT, stop it.

    A signal while the component is starting cancels the start: the component's
    ``__aenter__`` stops what it started, and this returns without waiting any longer.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    starting = asyncio.ensure_future(component.__aenter__())

    def on_signal() -> None:
        if not stop.is_set() and not starting.done():
            starting.cancel()
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        await starting
    except asyncio.CancelledError:
        current = asyncio.current_task()
        if stop.is_set() and not (current is not None and current.cancelling()):
            return  # cancelled by a signal, not from outside
        raise
    try:
        await stop.wait()
    finally:
        await component.__aexit__(None, None, None)
