"""The SSRF table: at least 30 targets, every one refused with a clear reason.

Runs `tests.support.ssrf_netns` once in a network namespace of its own (only loopback inside,
with stand-in "private" and "public" addresses on it and a catch-all server on port 80 of all of
them), through the real egress proxy and the real Chromium. Nothing can leave this machine even
if the code were wrong, and a leak would show up as a hit on a private address.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.ssrf_netns import PUBLIC, ROWS, run_in_namespace

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def table() -> dict[str, Any]:
    return run_in_namespace(timeout_s=150)


def test_the_table_is_at_least_30_targets() -> None:
    assert len(ROWS) >= 30
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_target_is_refused_with_a_clear_reason(table: dict[str, Any], row: Any) -> None:
    result = table["rows"][row.id]
    assert result["refused"], f"{row.target} was not refused: {result['reason']}"
    assert row.expect in result["reason"], result["reason"]


def test_the_control_page_loads_so_the_refusals_are_not_an_accident(table: dict[str, Any]) -> None:
    assert table["control"] == {"refused": False, "reason": "captured", "title": "Public page"}
    assert table["subresource_page"]["refused"] is False


def test_nothing_private_was_ever_reached(table: dict[str, Any]) -> None:
    assert table["private_hits"] == []
    assert table["connected"], "the control page must have connected somewhere"
    assert set(table["connected"]) == {PUBLIC}


def test_rebinding_the_page_came_from_the_public_answer_and_the_rest_was_refused(
    table: dict[str, Any],
) -> None:
    events = [e for e in table["events"] if "rebind.test" in e["target"]]
    page = events[0]
    assert page["target"] == "http://rebind.test/rebind" and page["address"] == PUBLIC
    later = events[1:]
    assert later and all(e["refused"] and not e["address"] for e in later)
    # Resolved once per request: the check and the connection used the same answer.
    assert table["resolver_calls"]["rebind.test"] == len(events)
    assert "SECRET" not in (table["rebind_page"]["title"] or "")


def test_webrtc_is_gone_from_captured_pages(table: dict[str, Any]) -> None:
    assert table["rtc"] == "undefined"
