"""Bounded waits for tests: every wait ends, and a wait that runs out says what it waited for.

    await until(lambda: viewer.host_state() == "idle", 20, "the host to be idle")  # polls

    changed = Changed()                  # state filled by callbacks calls changed.notify()
    value = await changed.until(lambda: self.find(...), within=10)  # re-checked on each notify

Both return the condition's first truthy value and raise `WaitTimeout` (a `TimeoutError` and an
`AssertionError`, so pytest reports it as a failed expectation) when `within` seconds run out.
Use `Changed` wherever the code that changes the state can say so; poll with `until` only for
state that has no event (e.g. attributes the LiveKit SDK updates).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError, TimeoutError):
    """A bounded wait ran out before its condition held."""


def _timed_out(within: float, what: str) -> WaitTimeout:
    return WaitTimeout(f"timed out after {within} s waiting for {what or 'the condition'}")


async def until(
    condition: Callable[[], T | None],
    within: float = 15.0,
    what: str = "",
    interval: float = 0.02,
) -> T:
    """Poll `condition` every `interval` s until it is truthy; return its value."""
    try:
        async with asyncio.timeout(within):
            while not (value := condition()):  # noqa: ASYNC110 - state with no event to wait on
                await asyncio.sleep(interval)
            return value
    except TimeoutError:
        raise _timed_out(within, what) from None


class Changed:
    """State that callbacks change: they call `notify()`, waiters re-check their condition."""

    def __init__(self) -> None:
        self._waiters: set[asyncio.Future[None]] = set()

    def notify(self) -> None:
        """Wake every waiter; call after changing anything they may be waiting on."""
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def until(
        self, condition: Callable[[], T | None], within: float = 10.0, what: str = ""
    ) -> T:
        """Wait until `condition()` is truthy and return it; re-checked on every `notify()`."""
        try:
            async with asyncio.timeout(within):
                while not (value := condition()):
                    waiter = asyncio.get_running_loop().create_future()
                    self._waiters.add(waiter)
                    await waiter
                return value
        except TimeoutError:
            raise _timed_out(within, what) from None
