"""The console's preview is no audience (issue #20's cost leak): a `preview` token joins the
room like the OBS stage page but dispatches no host, the reconciler does not count it as a
viewer, and chat refuses it. Real NATS, Redis and livekit-server; no worker runs under the test
agent name, so a dispatch stays jobless."""

from __future__ import annotations

import pytest
from livekit import api

from livestage.identity import PREVIEW_PREFIX, is_viewer_identity
from tests.support.livekit_helpers import joined, server_api
from tests.support.reconciler import look_done, registration_looked

from .conftest import EdgeFactory
from .test_hardening import edge_with_bus
from .test_reconciler import dispatch_ids, viewer_token, wait_for_dispatch


async def test_a_room_with_only_a_preview_gets_no_host_until_a_viewer_comes(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await edge_with_bus(make_edge, reconcile_interval_s=600, dispatch_worker_grace_s=0.1)
    reconciler = edge.services.reconciler
    await look_done(reconciler, "the first look")  # an empty room: the next sweep is far away
    preview = await edge.token("Console", role="preview")
    assert preview["identity"].startswith(PREVIEW_PREFIX)
    assert not is_viewer_identity(preview["identity"])

    async with joined(livekit_server, preview["token"]):
        assert await dispatch_ids(livekit_server, edge.room) == []  # the token asked for none
        async with server_api(livekit_server) as lk:
            listed = await lk.room.list_participants(api.ListParticipantsRequest(room=edge.room))
        assert [p.identity for p in listed.participants] == [preview["identity"]]
        assert await edge.services.gateway.count_viewers(edge.room) == 0

        # a registration makes the reconciler look at every room: the preview is nobody to host
        await registration_looked(reconciler)
        assert await dispatch_ids(livekit_server, edge.room) == []

        # a real audience (a viewer's old token) beside the preview does get a host
        async with joined(livekit_server, viewer_token(livekit_server, edge)):
            assert await edge.services.gateway.count_viewers(edge.room) == 1
            reconciler.worker_registered()
            assert await wait_for_dispatch(livekit_server, edge.room)


async def test_a_preview_token_cannot_chat(make_edge: EdgeFactory) -> None:
    edge = await edge_with_bus(make_edge)
    preview = await edge.token("Console", role="preview")
    response = await edge.client.post(
        "/api/chat",
        json={"body": "hello from the console"},
        headers={"Authorization": f"Bearer {preview['token']}"},
    )
    assert response.status_code == 401, response.text
    assert "not a viewer token" in response.json()["detail"]


@pytest.mark.parametrize("role", ["viewer", "stage"])
async def test_viewer_and_stage_tokens_still_ask_for_a_host(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    role: str,
) -> None:
    edge = await edge_with_bus(make_edge, reconcile_interval_s=600)
    token = await edge.token("Obs", role=role)
    assert is_viewer_identity(token["identity"])
    assert await wait_for_dispatch(livekit_server, edge.room)
