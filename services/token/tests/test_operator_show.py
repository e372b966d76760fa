"""`/api/operator/show`: end and start the show. Ended: the record in Redis says so, a
`ShowEvent` goes to NATS and to the room's pages, tokens are still minted but no host is
dispatched; started again: a host is dispatched for the viewers already in the room."""

from __future__ import annotations

import time

import pytest
from livekit import rtc

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import ShowEvent
from livestage.settings import NatsSettings
from livestage.shows import ShowStore
from tests.support.livekit_helpers import joined
from tests.support.waiting import Changed

from .conftest import EdgeFactory
from .test_hardening import edge_with_bus, our_dispatches
from .test_reconciler import viewer_token, wait_for_dispatch

SECRET = "operator-secret-for-show-tests-0123"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.mark.parametrize(("method", "path"), [("GET", ""), ("POST", "/end"), ("POST", "/start")])
async def test_show_routes_need_the_operator_secret(
    make_edge: EdgeFactory, method: str, path: str
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.request(method, f"/api/operator/show{path}")
    assert response.status_code == 401
    wrong = {"Authorization": "Bearer not-the-secret"}
    response = await edge.client.request(method, f"/api/operator/show{path}", headers=wrong)
    assert response.status_code == 401


@pytest.mark.parametrize(
    "body", [{"reason": "x" * 301}, {"reason": 5}, {"why": "no such field"}, [1, 2]]
)
async def test_a_bad_end_body_is_refused_and_nothing_ends(
    make_edge: EdgeFactory,
    redis_server,
    body: object,  # type: ignore[no-untyped-def]
) -> None:
    edge = await edge_with_bus(make_edge, operator_secret=SECRET)
    response = await edge.client.post("/api/operator/show/end", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert "xxxx" not in response.text
    assert not (await ShowStore(edge.services.redis).get(edge.room)).ended


async def test_end_then_start_the_show(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    # the sweep cannot act within this test: a dispatch after `start` is the start's doing
    edge = await edge_with_bus(make_edge, operator_secret=SECRET, reconcile_interval_s=600)
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "operator-show-test")
    events: list[ShowEvent] = []
    changed = Changed()

    async def on_event(observed: Observed[ShowEvent]) -> None:
        events.append(observed.model)
        changed.notify()

    watch = await bus.watch(subjects.room_show(edge.room), ShowEvent, on_event, start=time.time())
    packets: list[ShowEvent] = []

    def on_packet(packet: rtc.DataPacket) -> None:
        if packet.topic == edge.services.topics.stage_topic:
            packets.append(ShowEvent.from_json(packet.data))
            changed.notify()

    try:
        async with joined(livekit_server, viewer_token(livekit_server, edge)) as page:
            page.on("data_received", on_packet)
            response = await edge.client.post(
                "/api/operator/show/end",
                json={"reason": "  Thanks\u200b for watching! "},
                headers=AUTH,
            )
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["room"] == edge.room
            assert answer["state"] == "ended"
            assert answer["reason"] == "Thanks for watching!"
            assert answer["updatedAt"] > 0
            show = await ShowStore(edge.services.redis).get(edge.room)
            assert show.ended and show.reason == "Thanks for watching!"
            await changed.until(
                lambda: events and packets, what="the ended show on NATS and the page"
            )
            assert (events[0].state, events[0].room) == ("ended", edge.room)
            assert packets[0].state == "ended" and packets[0].id == events[0].id

            listed = await edge.client.get("/api/operator/show", headers=AUTH)
            assert listed.json()["state"] == "ended"
            assert (await edge.client.get("/api/config")).json()["showState"] == "ended"

            # viewers still get tokens (they see the ended page and can chat), but no host
            token = await edge.token()
            assert token["token"]
            assert await our_dispatches(livekit_server, edge.room) == []

            response = await edge.client.post("/api/operator/show/start", headers=AUTH)
            assert response.status_code == 200, response.text
            assert response.json()["state"] == "live"
            await changed.until(
                lambda: len(events) >= 2 and len(packets) >= 2, what="the started show"
            )
            assert events[1].state == "live" and packets[1].state == "live"
            # the viewer already in the room gets a host without asking for a token
            await wait_for_dispatch(livekit_server, edge.room)
        assert (await edge.client.get("/api/config")).json()["showState"] == "live"
    finally:
        await watch.stop()
        await bus.close()


async def test_ending_an_idle_room_and_a_body_less_end(make_edge: EdgeFactory) -> None:
    """No page in the room (LiveKit has nobody to tell) and no body: still ended."""
    edge = await edge_with_bus(make_edge, operator_secret=SECRET)
    response = await edge.client.post("/api/operator/show/end", headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "ended"
    assert response.json()["reason"] == ""
    assert (await ShowStore(edge.services.redis).get(edge.room)).ended
