"""Running a service process: telemetry, a clean stop on SIGINT/SIGTERM, and a placeholder loop.

With `LIVESTAGE_HEALTH_PORT` set, `run` also serves /healthz and /readyz (`livestage.health`);
`connect_bus` makes readiness depend on the NATS connection.

`run(name, main)` sets up telemetry, runs `main(stop)` where `stop` is an `asyncio.Event` set on
SIGINT or SIGTERM, and flushes telemetry at exit. `main` returns when it has shut down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from typing import TypeVar

from livestage import health
from livestage.bus import Bus
from livestage.settings import NatsSettings
from livestage.telemetry import setup_telemetry

log = logging.getLogger(__name__)

Main = Callable[[asyncio.Event], Awaitable[None]]
T = TypeVar("T")


def run(name: str, main: Main) -> None:
    """Run `main` as service `name` until it returns or a signal asks it to stop."""
    telemetry = setup_telemetry(name)

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        health_server = await health.serve()
        try:
            await main(stop)
        finally:
            if health_server is not None:
                health_server.close()

    try:
        asyncio.run(runner())
    finally:
        telemetry.shutdown()


async def until_stopped(work: Awaitable[T], stop: asyncio.Event) -> T | None:
    """Await `work`, or give up (cancelling it) when `stop` is set first; None then.

    For waits that may last forever while a backend is down (the first NATS connect retries
    until NATS answers), so a signal still stops the service at once.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task
    return None


async def connect_bus(
    name: str, stop: asyncio.Event, settings: NatsSettings | None = None
) -> Bus | None:
    """Connect to NATS (retrying until it answers) and declare the streams; None if stopped."""
    health.add_ready_check("nats", lambda: False)  # not ready until connected
    bus = await until_stopped(Bus.connect(settings or NatsSettings(), name), stop)
    if bus is None:
        return None
    await bus.ensure_streams()
    health.add_ready_check("nats", lambda: bus.connected)
    log.info("%s connected to NATS", name)
    return bus


async def idle_on_bus(name: str, stop: asyncio.Event) -> None:
    """Connect to NATS, declare the streams and wait for `stop`.

    The start of a service whose own work is not built yet: it proves its wiring (settings,
    NATS, JetStream) and stays up, so `make run` and the health of the stack can be checked.
    """
    bus = await connect_bus(name, stop)
    if bus is None:
        return
    try:
        log.info("%s waiting for work (stop with Ctrl-C)", name)
        await stop.wait()
    finally:
        await bus.close()


def run_idle(name: str) -> None:
    """`run(name, ...)` for a service whose own work is not built yet (see `idle_on_bus`)."""

    async def main(stop: asyncio.Event) -> None:
        await idle_on_bus(name, stop)

    run(name, main)
