"""The edge's host reconciler against real NATS, Redis and livekit-server: viewers already in the
room get a host dispatched without asking for a token, a stuck dispatch is replaced when a
worker announces its registration, a stale one at a sweep. No worker runs under the test agent
name, so every dispatch here stays jobless (the worker side is `tests/e2e/
test_edge_host_reconciler.py`)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid

import nats
import pytest
from livekit import api

from livestage import subjects
from livestage.schemas import HostWorkerEvent, new_id, now_ms
from tests.support.identities import viewer_identity
from tests.support.livekit_helpers import joined, mint_token, server_api
from tests.support.reconciler import look_done, registration_looked

from .conftest import Edge, EdgeFactory
from .test_hardening import AGENT, edge_with_bus, our_dispatches, signed

RECONCILER_LOG = "token_service.dispatch.reconciler"


async def dispatch_ids(livekit_server, room: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [d.id for d in await our_dispatches(livekit_server, room)]


def viewer_token(livekit_server, edge: Edge) -> str:  # type: ignore[no-untyped-def]
    """A viewer's token from before (as a page holds after a LiveKit restart): no token request."""
    return mint_token(
        livekit_server, viewer_identity(), edge.room, can_publish=False, can_publish_data=False
    )


async def wait_for_dispatch(livekit_server, room: str, other_than: str = "") -> str:  # type: ignore[no-untyped-def]
    """The id of our one dispatch in `room` once there is one and it is not `other_than`."""
    async with asyncio.timeout(20):
        while True:
            found = await dispatch_ids(livekit_server, room)
            if len(found) == 1 and found[0] != other_than:
                return found[0]
            await asyncio.sleep(0.1)  # LiveKit has no event for its dispatch list


async def test_a_viewer_with_an_old_token_gets_a_host_dispatched_and_a_stale_one_replaced(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=RECONCILER_LOG)
    edge = await edge_with_bus(make_edge, reconcile_interval_s=0.5, dispatch_stale_s=2)
    async with joined(livekit_server, viewer_token(livekit_server, edge)):
        first = await wait_for_dispatch(livekit_server, edge.room)
        # no worker takes it: stale after 2 s, the next look replaces it (one dispatch at a time)
        second = await wait_for_dispatch(livekit_server, edge.room, other_than=first)
    assert second != first
    redispatched = [r.getMessage() for r in caplog.records if r.name == RECONCILER_LOG]
    assert any("re-dispatched its host for its viewers (sweep)" in line for line in redispatched), (
        redispatched
    )


async def test_a_worker_registering_replaces_a_dispatch_no_worker_could_take(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    nats_server,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="token_service")
    # neither the sweep nor the stale rule can act within this test: only the registration
    edge = await edge_with_bus(make_edge, reconcile_interval_s=600, dispatch_stale_s=600)
    await edge.token()  # the order: the token dispatches while no worker is registered
    stuck = await wait_for_dispatch(livekit_server, edge.room)
    async with joined(livekit_server, viewer_token(livekit_server, edge)):
        nc = await nats.connect(nats_server.url)
        try:
            event = HostWorkerEvent(
                id=new_id(),
                agent_name=AGENT,
                worker_id="AW_" + uuid.uuid4().hex[:8],
                created_at=now_ms(),
            )
            await nc.publish(subjects.host_worker(AGENT), event.to_json())
            await nc.flush()
        finally:
            await nc.close()
        replaced = await wait_for_dispatch(livekit_server, edge.room, other_than=stuck)
    assert replaced != stuck
    assert await edge.services.workers.last() > 0
    lines = [r.getMessage() for r in caplog.records]
    assert any("made before a host worker registered" in line for line in lines), lines
    assert any("re-dispatched its host for its viewers (worker)" in line for line in lines), lines


async def test_a_room_without_viewers_is_left_alone_by_a_registration(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=RECONCILER_LOG)
    edge = await edge_with_bus(make_edge, reconcile_interval_s=600, dispatch_worker_grace_s=0.1)
    async with server_api(livekit_server) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=edge.room))
    # the look the registration asked for happens and finds nobody to host
    await registration_looked(edge.services.reconciler)
    assert await dispatch_ids(livekit_server, edge.room) == []


async def test_a_viewer_joining_with_an_old_token_wakes_the_reconciler_through_the_webhook(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="token_service")
    edge = await edge_with_bus(make_edge, reconcile_interval_s=600)
    reconciler = edge.services.reconciler
    await look_done(reconciler, "the first look")  # an empty room: the next sweep is far away
    identity = viewer_identity()
    token = mint_token(
        livekit_server, identity, edge.room, can_publish=False, can_publish_data=False
    )
    async with joined(livekit_server, token):
        joined_event = json.dumps(
            {
                "event": "participant_joined",
                "id": "EV_" + uuid.uuid4().hex[:12],
                "createdAt": str(int(time.time())),
                "room": {"name": edge.room},
                "participant": {"identity": identity, "kind": "STANDARD"},
            }
        )
        hook = await edge.client.post(
            "/api/livekit/webhook",
            content=joined_event,
            headers={
                "Content-Type": "application/webhook+json",
                "Authorization": signed(
                    joined_event, livekit_server.api_key, livekit_server.api_secret
                ),
            },
        )
        assert hook.status_code == 204, hook.text
        await wait_for_dispatch(livekit_server, edge.room)
    lines = [r.getMessage() for r in caplog.records]
    assert any("no_dispatch, asked by viewer_joined" in line for line in lines), lines
