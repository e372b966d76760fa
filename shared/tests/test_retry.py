"""Retry budgets (`livestage.retry`): the waits cover the budget with the fewest deliveries."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from livestage.retry import retry_policy
from livestage.settings import NatsSettings


def test_the_default_budget_rides_out_a_ten_minute_outage() -> None:
    settings = NatsSettings()
    policy = retry_policy(settings.retry_budget_s, first_s=5.0, cap_s=settings.retry_max_backoff_s)
    assert policy.covers_s >= 600
    assert policy.backoff_s == (5.0, 10.0, 30.0, 60.0)
    assert max(policy.waits_s) == 60.0
    # The fewest deliveries: one fewer would not cover the budget.
    assert sum(policy.waits_s[:-1]) < settings.retry_budget_s


def test_waits_climb_the_ladder_from_the_first_wait_and_repeat_the_cap() -> None:
    policy = retry_policy(100, first_s=1.0, cap_s=30.0)
    assert policy.backoff_s == (1.0, 2.0, 5.0, 10.0, 30.0)
    assert policy.waits_s == [1.0, 2.0, 5.0, 10.0, 30.0, 30.0, 30.0]
    assert policy.max_deliver == 8


def test_a_short_budget_uses_only_the_steps_it_needs() -> None:
    policy = retry_policy(2.5, first_s=1.0, cap_s=0.5)  # the cap never undercuts the first wait
    assert policy.backoff_s == (1.0,)
    assert policy.waits_s == [1.0, 1.0, 1.0]
    tiny = retry_policy(0.1, first_s=5.0)
    assert tiny.max_deliver == 2 and tiny.backoff_s == (5.0,)


def test_given_steps_are_kept_in_order_and_capped() -> None:
    policy = retry_policy(200, first_s=5.0, steps_s=[10.0, 30.0, 120.0], cap_s=60.0)
    assert policy.backoff_s == (5.0, 10.0, 30.0, 60.0)


@pytest.mark.parametrize("bad", [dict(budget_s=0), dict(first_s=0), dict(cap_s=-1)])
def test_non_positive_inputs_are_refused(bad: dict[str, float]) -> None:
    args = {"budget_s": 10.0, "first_s": 1.0, "cap_s": 60.0, **bad}
    with pytest.raises(ValueError, match="more than 0"):
        retry_policy(args["budget_s"], first_s=args["first_s"], cap_s=args["cap_s"])


@given(
    budget=st.floats(0.01, 10_000),
    first=st.floats(0.01, 300),
    cap=st.floats(0.5, 300),
)
def test_the_policy_always_covers_the_budget_and_suits_jetstream(
    budget: float, first: float, cap: float
) -> None:
    policy = retry_policy(budget, first_s=first, cap_s=cap)
    assert policy.covers_s >= budget
    assert sum(policy.waits_s[:-1]) < budget  # no delivery more than needed
    assert len(policy.backoff_s) < policy.max_deliver  # JetStream refuses otherwise
    assert list(policy.backoff_s) == sorted(policy.backoff_s)
    assert policy.backoff_s[0] == first
