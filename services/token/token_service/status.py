"""What the edge knows about its dependencies: checked on a timer, read from memory.

`StatusBoard.run()` checks every dependency once per `TOKEN_STATUS_INTERVAL_S` (all at once, each
bounded by its own timeout) and keeps the result; `GET /statusz`, the operator's
`GET /api/operator/status` and the `livestage.edge.dependency_status` gauge only read it. So a
dependency costs one call per interval and replica whatever the request rate: the status page is
no amplifier in front of LiveKit.

A probe returns None (ok), a reason (degraded: it answered, in part) or raises (down). An answer
slower than half its timeout is degraded too. The edge's routes do not consult the board: each
route still meets a dependency that is down with its own 503 and Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger(__name__)

State = Literal["ok", "degraded", "down"]
STATE_VALUES: dict[State, float] = {"ok": 1.0, "degraded": 0.5, "down": 0.0}
Probe = Callable[[], Awaitable[str | None]]


@dataclass(frozen=True)
class Dependency:
    """A dependency, how to check it, and what the edge cannot do without it."""

    name: str
    probe: Probe
    timeout_s: float
    needed_by: tuple[str, ...]


@dataclass(frozen=True)
class DependencyState:
    name: str
    state: State
    detail: str
    latency_ms: int
    needed_by: tuple[str, ...]


def judge(latency_s: float, timeout_s: float, outcome: str | BaseException | None) -> State:
    """ok, degraded or down from one probe's outcome (a reason, an error or None) and its time."""
    if isinstance(outcome, BaseException):
        return "down"
    if outcome is not None or latency_s > timeout_s / 2:
        return "degraded"
    return "ok"


def describe(state: State, latency_s: float, outcome: str | BaseException | None) -> str:
    if isinstance(outcome, TimeoutError):
        return "no answer in time"
    if isinstance(outcome, BaseException):
        return str(outcome) or type(outcome).__name__
    if outcome is not None:
        return outcome
    return "slow answer" if state == "degraded" else "answering"


def overall(states: Iterable[DependencyState]) -> State:
    """The edge as a whole: ok when every dependency is; degraded otherwise (it still serves its
    pages and whatever does not need the missing part)."""
    return "ok" if all(s.state == "ok" for s in states) else "degraded"


class StatusBoard:
    def __init__(self, dependencies: Iterable[Dependency], interval_s: float) -> None:
        self.dependencies = tuple(dependencies)
        self.interval_s = interval_s
        self.latest: dict[str, DependencyState] = {}
        self.checked_at_ms = 0
        self.checks = 0  # rounds of checks done, for tests and logs
        self._checked = asyncio.Event()

    async def _check(self, dependency: Dependency) -> DependencyState:
        started = time.monotonic()
        outcome: str | BaseException | None
        try:
            async with asyncio.timeout(dependency.timeout_s):
                outcome = await dependency.probe()
        except Exception as error:  # noqa: BLE001 - whatever it is, the dependency is down
            outcome = error
        latency = time.monotonic() - started
        state = judge(latency, dependency.timeout_s, outcome)
        return DependencyState(
            dependency.name,
            state,
            describe(state, latency, outcome),
            round(latency * 1000),
            dependency.needed_by,
        )

    async def refresh(self) -> None:
        """Check every dependency once, at the same time."""
        results = await asyncio.gather(*(self._check(d) for d in self.dependencies))
        for result in results:
            before = self.latest.get(result.name)
            if before is not None and before.state != result.state:
                log.warning(
                    "dependency %s is %s (was %s): %s",
                    result.name,
                    result.state,
                    before.state,
                    result.detail,
                )
        self.latest = {result.name: result for result in results}
        self.checked_at_ms = int(time.time() * 1000)
        self.checks += 1
        self._checked.set()

    async def run(self) -> None:
        """Check on a timer until cancelled."""
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval_s)

    async def current(self) -> Mapping[str, DependencyState]:
        """The latest states; the first caller after start waits for the first round."""
        if not self._checked.is_set():
            longest = max((d.timeout_s for d in self.dependencies), default=0.0)
            async with asyncio.timeout(longest + 1):
                await self._checked.wait()
        return self.latest

    def observe(self) -> list[tuple[float, dict[str, str]]]:
        """The gauge's observations (no I/O: the last round's states)."""
        return [
            (STATE_VALUES[state.state], {"dependency": name}) for name, state in self.latest.items()
        ]
