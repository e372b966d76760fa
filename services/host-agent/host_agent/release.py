"""When a held pause gives the paid sessions back: pure, on the job's clock (seconds).

An operator's `pause` keeps the host quiet, but an OpenAI Realtime session and an Anam avatar
session cost money while they sit there. After `HOST_PAUSE_RELEASE_S` of pause (0: never) the
job closes them (`BackendSwitcher.release`: the `AgentSession` and the avatar session; the job,
its room connection and its NATS subscriptions stay) and publishes `host.job` `released`;
`resume`, or a `say` while released, builds them again on the same backends (`rebuild`) and
publishes `rebuilt`. A `say` while paused starts the count again: the pause is held from there.
The release waits for a turn under way (a `say`) to end.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PauseRelease:
    release_s: float
    """How long a pause is held before the release (0: never)."""
    paused_at: float | None = None

    def paused(self, now: float) -> None:
        if self.paused_at is None:
            self.paused_at = now

    def spoke(self, now: float) -> None:
        """The host spoke while paused (a `say`): the pause is held from now."""
        if self.paused_at is not None:
            self.paused_at = now

    def resumed(self) -> None:
        self.paused_at = None

    def deadline(self) -> float | None:
        """When the release is due (clock time); None while not paused or never."""
        if self.paused_at is None or self.release_s <= 0:
            return None
        return self.paused_at + self.release_s

    def due(self, now: float, *, speaking: bool) -> bool:
        """Release now? Not while a turn is under way: its end asks again."""
        deadline = self.deadline()
        return deadline is not None and now >= deadline and not speaking
