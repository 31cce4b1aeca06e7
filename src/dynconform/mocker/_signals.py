"""Run a server component until SIGTERM or SIGINT, then leave its ``async with`` block."""

from __future__ import annotations

import asyncio
import signal
from contextlib import AbstractAsyncContextManager
from typing import Any


async def serve_until_signalled(component: AbstractAsyncContextManager[Any]) -> None:
    """Start ``component``, wait for SIGTERM/SIGINT, stop it."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with component:
        await stop.wait()
