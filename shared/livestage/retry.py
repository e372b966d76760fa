"""Retry budgets: how many deliveries, and how far apart, a durable consumer gets (pure).

A consumer that cannot handle a message (Redis down, LiveKit down) leaves it unacked; JetStream
hands it out again after the next backoff step, up to `max_deliver` deliveries, after which the
bus writes it to the dead-letter stream (`livestage.deadletter`). The budget is the time from
the first delivery to the last one: an outage shorter than it loses nothing and needs nobody.

`retry_policy(budget_s, first_s=...)` turns a budget into JetStream's two knobs. The steps start
at the consumer's own first wait (its ack deadline: longer than one attempt may take), climb the
ladder 1, 2, 5, 10, 30, 60 s (capped at `cap_s`), then repeat the cap until the waits add up to
the budget. With the default budget (`NATS_RETRY_BUDGET_S`, 15 minutes) and cap (60 s) that is
21 deliveries; a test scales both down through the environment.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LADDER_S: tuple[float, ...] = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)


@dataclass(frozen=True)
class RetryPolicy:
    """JetStream's `backoff` (the distinct steps; the last repeats) and `max_deliver`."""

    backoff_s: tuple[float, ...]
    max_deliver: int

    @property
    def waits_s(self) -> list[float]:
        """The wait before each redelivery, in order (`max_deliver - 1` of them)."""
        last = len(self.backoff_s) - 1
        return [self.backoff_s[min(n, last)] for n in range(self.max_deliver - 1)]

    @property
    def covers_s(self) -> float:
        """How long after the first delivery the last one comes: the outage it rides out."""
        return sum(self.waits_s)


def retry_policy(
    budget_s: float,
    *,
    first_s: float,
    steps_s: Sequence[float] = LADDER_S,
    cap_s: float = 60.0,
) -> RetryPolicy:
    """The fewest deliveries whose waits add up to at least `budget_s`.

    `first_s` is the first wait (the ack deadline); the following waits are the `steps_s`
    longer than it, each at most `cap_s` (and never shorter than the wait before), then `cap_s`
    again and again. At least two deliveries, whatever the budget.
    """
    if budget_s <= 0 or first_s <= 0 or cap_s <= 0:
        raise ValueError("the budget, the first wait and the cap must be more than 0 seconds")
    cap = max(cap_s, first_s)
    backoff = [first_s]
    for step in steps_s:
        step = min(step, cap)
        if step > backoff[-1]:
            backoff.append(step)
    if backoff[-1] < cap:
        backoff.append(cap)
    covered, used = 0.0, 0
    while used < len(backoff) and covered < budget_s:
        covered += backoff[used]
        used += 1
    waits = used + max(math.ceil((budget_s - covered) / cap), 0)
    return RetryPolicy(backoff_s=tuple(backoff[:used]), max_deliver=waits + 1)
