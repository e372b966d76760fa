"""Running a service process: telemetry, a clean stop on SIGINT/SIGTERM, and a placeholder loop.

With `LIVESTAGE_HEALTH_PORT` set, `run` also serves /healthz and /readyz (`livestage.health`);
`connect_bus` makes readiness depend on the NATS connection.

`run(name, main)` sets up telemetry, runs `main(stop)` where `stop` is an `asyncio.Event` set on
SIGINT or SIGTERM, and flushes telemetry at exit. `main` returns when it has shut down.

A stop has `LIVESTAGE_STOP_TIMEOUT_S` to finish, else the stop watchdog reports where it hung and
exits 1. A service that drains on a stop (the host agent lets its shows finish the sentence under
way) passes `run(name, main, drain_s=...)`: its watchdog allows the drain plus the stop timeout,
and a supervisor's grace period must cover both (`stop_budget_s`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from livestage import health
from livestage.bus import Bus
from livestage.settings import NatsSettings, ServiceSettings
from livestage.telemetry import setup_telemetry

log = logging.getLogger(__name__)

Main = Callable[[asyncio.Event], Awaitable[None]]
T = TypeVar("T")


def stop_budget_s(stop_timeout_s: float, drain_s: float = 0.0) -> float:
    """How long a stop may take before the watchdog ends it: the drain, then the stop itself."""
    return max(0.0, drain_s) + stop_timeout_s


def run(name: str, main: Main, *, drain_s: float = 0.0) -> None:
    """Run `main` as service `name` until it returns or a signal asks it to stop.

    `drain_s`: how long `main` may legitimately take after the signal before its own cleanup
    (draining work in flight); the stop watchdog waits that much longer.
    """
    telemetry = setup_telemetry(name)
    stop_timeout_s = ServiceSettings().stop_timeout_s
    budget_s = stop_budget_s(stop_timeout_s, drain_s)
    if drain_s > 0:
        why = f"its {drain_s:.1f} s drain + LIVESTAGE_STOP_TIMEOUT_S"
    else:
        why = "LIVESTAGE_STOP_TIMEOUT_S"

    async def runner() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        watchdog: list[threading.Timer] = []

        def on_signal() -> None:
            stop.set()
            if not watchdog:
                watchdog.append(_stop_watchdog(name, loop, budget_s, why))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
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


def _stop_watchdog(
    name: str, loop: asyncio.AbstractEventLoop, timeout_s: float, why: str
) -> threading.Timer:
    """A last resort after a stop signal: if the service has not exited within `timeout_s`
    (a cleanup step that never returns: a lost cancellation inside a client library, a drain
    waiting on a server that is gone), log where every task is and exit with status 1, before a
    supervisor's SIGKILL would, so the stop is at least reported as unclean and explained."""

    def expire() -> None:
        stacks: list[str] = []
        with contextlib.suppress(Exception):
            for task in asyncio.all_tasks(loop):
                stacks.append(f"{task.get_name()} at {_awaiting(task.get_coro())}")
        log.error(
            "%s did not stop within %.1f s (%s); exiting. Tasks: %s",
            name,
            timeout_s,
            why,
            "; ".join(stacks) or "none",
        )
        with contextlib.suppress(Exception):
            logging.shutdown()
            sys.stderr.flush()
            sys.stdout.flush()
        os._exit(1)

    timer = threading.Timer(timeout_s, expire)  # a thread: it fires even if the loop is stuck
    timer.daemon = True
    timer.start()
    return timer


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


def _awaiting(coro: object, depth: int = 4) -> str:
    """Where a suspended coroutine waits: the innermost `depth` frames of its await chain."""
    frames: list[str] = []
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None:
            frames.append(f"{frame.f_code.co_filename.rsplit('/', 1)[-1]}:{frame.f_lineno}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return " <- ".join(reversed(frames[-depth:])) or "?"
