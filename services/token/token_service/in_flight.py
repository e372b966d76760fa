"""Requests in flight at the same time sharing one round trip to a backend.

`InFlightBatch` wraps a function that sends a list of items in one round trip: a call made while
no round trip is in flight goes at once, alone (a lone request waits for nothing); the calls
made while one is in flight wait for it and then go together in the next. A busy edge so makes
one round trip for many requests, with no timer and no added wait beyond the round trip already
on its way. The edge's chat POST uses two: its Redis script (`chat_admission.py`) and its
JetStream publish (`routes/chat.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

Send = Callable[[list[T]], Awaitable[list[R | BaseException]]]
"""Sends the items in one round trip: one outcome per item, in order (a result or the error
that item met)."""


class InFlightBatch(Generic[T, R]):
    def __init__(self, send: Send[T, R], name: str) -> None:
        self._send = send
        self._name = name
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight = False
        self._tasks: set[asyncio.Task[None]] = set()
        self.round_trips = 0

    async def __call__(self, item: T) -> R:
        if self._in_flight:
            future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
            self._waiting.append((item, future))
            return await future
        self._in_flight = True
        try:
            (outcome,) = await self._round_trip([item])
        finally:
            self._next()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def _round_trip(self, items: list[T]) -> list[R | BaseException]:
        self.round_trips += 1
        try:
            return await self._send(items)
        except Exception as error:  # noqa: BLE001 - the round trip failed: every item met it
            return [error] * len(items)

    def _next(self) -> None:
        """Send what waited during the last round trip, or note that none is in flight."""
        if not self._waiting:
            self._in_flight = False
            return
        batch, self._waiting = self._waiting, []
        task = asyncio.create_task(self._send_batch(batch), name=self._name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_batch(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            outcomes = await self._round_trip([item for item, _ in batch])
        finally:
            self._next()
        for (_, future), outcome in zip(batch, outcomes, strict=True):
            if future.done():  # its request was cancelled (the client went away)
                continue
            if isinstance(outcome, BaseException):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
