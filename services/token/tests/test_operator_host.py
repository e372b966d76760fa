"""`/api/operator/host/...`: each route publishes one HostCommand on host.control.<room>."""

from __future__ import annotations

import asyncio

import pytest

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import HostCommand
from livestage.settings import NatsSettings

SECRET = "operator-secret-for-host-tests-0123"
AUTH = {"Authorization": f"Bearer {SECRET}"}


async def test_each_route_publishes_its_command(make_edge, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "operator-host-test")
    seen: list[HostCommand] = []

    async def on_command(observed: Observed[HostCommand]) -> None:
        seen.append(observed.model)

    watch = await bus.watch(subjects.host_control(edge.room), HostCommand, on_command)
    calls = [
        ("pause", None),
        ("resume", None),
        ("skip", None),
        ("say", {"text": "  Back   in five\u200b minutes.  "}),
        ("persona", {"name": "sage"}),
    ]
    ids = []
    for action, body in calls:
        response = await edge.client.post(f"/api/operator/host/{action}", json=body, headers=AUTH)
        assert response.status_code == 202, response.text
        ids.append(response.json()["id"])
    async with asyncio.timeout(5):
        while len(seen) < len(calls):  # noqa: ASYNC110 - filled by the watch
            await asyncio.sleep(0.02)
    assert [c.action for c in seen] == [action for action, _ in calls]
    assert [c.id for c in seen] == ids
    assert seen[3].text == "Back in five minutes."  # cleaned like chat
    assert seen[4].text == "sage"
    assert all(c.room == edge.room for c in seen)
    await watch.stop()
    await bus.close()


@pytest.mark.parametrize(
    ("action", "body", "field"),
    [
        ("say", {"text": "   "}, "text"),
        ("say", {"text": "x" * 1001}, "text"),
        ("persona", {"name": "../etc/passwd"}, "name"),
        ("persona", {}, "name"),
    ],
)
async def test_bad_bodies_are_refused_naming_the_field(  # type: ignore[no-untyped-def]
    make_edge, action: str, body: dict[str, str], field: str
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.post(f"/api/operator/host/{action}", json=body, headers=AUTH)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"][-1] == field
    assert "passwd" not in response.text


async def test_host_routes_need_the_operator_secret(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.post("/api/operator/host/skip")
    assert response.status_code == 401
