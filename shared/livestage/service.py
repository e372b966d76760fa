"""Running a service process: telemetry, a clean stop on SIGINT/SIGTERM, and a placeholder loop.

`run(name, main)` sets up telemetry, runs `main(stop)` where `stop` is an `asyncio.Event` set on
SIGINT or SIGTERM, and flushes telemetry at exit. `main` returns when it has shut down.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable

from livestage.bus import Bus
from livestage.settings import NatsSettings
from livestage.telemetry import setup_telemetry

log = logging.getLogger(__name__)

Main = Callable[[asyncio.Event], Awaitable[None]]


def run(name: str, main: Main) -> None:
    """Run `main` as service `name` until it returns or a signal asks it to stop."""
    telemetry = setup_telemetry(name)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await main(stop)

    try:
        asyncio.run(runner())
    finally:
        telemetry.shutdown()


async def idle_on_bus(name: str, stop: asyncio.Event) -> None:
    """Connect to NATS, declare the streams and wait for `stop`.

    The start of a service whose own work is not built yet: it proves its wiring (settings,
    NATS, JetStream) and stays up, so `make run` and the health of the stack can be checked.
    """
    bus = await Bus.connect(NatsSettings(), name)
    try:
        await bus.ensure_streams()
        log.info("%s connected to NATS; waiting for work (stop with Ctrl-C)", name)
        await stop.wait()
    finally:
        await bus.close()


def run_idle(name: str) -> None:
    """`run(name, ...)` for a service whose own work is not built yet (see `idle_on_bus`)."""

    async def main(stop: asyncio.Event) -> None:
        await idle_on_bus(name, stop)

    run(name, main)
