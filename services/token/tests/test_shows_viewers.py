"""Viewers of many shows: `/s/<show>` and `/stage?show=`, `/api/config?show=`, tokens for a
show's room, and chat and history in the room of the viewer's token (real NATS, Redis, LiveKit)."""

from __future__ import annotations

import asyncio
import uuid

import jwt
import nats
import pytest

from livestage import subjects
from livestage.schemas import ChatMessage, HistoryReply, HistoryRequest, ShowConfig, now_ms
from livestage.shows import ShowStore

from .conftest import Edge, EdgeFactory
from .test_hardening import edge_with_bus
from .test_shows_routes import AUTH, SECRET, new_room, show_body

PROFILE = {"displayName": "Ada", "avatar": "fox"}


async def edge_with_show(make_edge: EdgeFactory, **overrides: object) -> tuple[Edge, str]:
    edge = await edge_with_bus(make_edge, operator_secret=SECRET, **overrides)
    room = new_room()
    body = show_body(room, title="Quiz <night>", layout="visual-only")
    created = await edge.client.post("/api/operator/shows", json=body, headers=AUTH)
    assert created.status_code == 201, created.text
    return edge, room


def grant_room(token: str) -> str:
    room: str = jwt.decode(token, options={"verify_signature": False})["video"]["room"]
    return room


async def test_a_token_for_a_show_joins_its_room_and_its_chat_goes_there(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge, room = await edge_with_show(make_edge)
    default = await edge.token()
    token = await edge.token(show=room)
    assert (token["roomName"], grant_room(token["token"])) == (room, room)
    assert (default["roomName"], grant_room(default["token"])) == (edge.room, edge.room)

    nc = await nats.connect(nats_server.url)
    arrived: asyncio.Queue[tuple[str, ChatMessage]] = asyncio.Queue()

    async def on_message(msg: nats.aio.msg.Msg) -> None:
        await arrived.put((msg.subject, ChatMessage.from_json(msg.data)))

    sub = await nc.subscribe(subjects.all_rooms("chat", "submitted"), cb=on_message)
    try:
        for viewer, body in ((token, "hello quiz"), (default, "hello main")):
            sent = await edge.client.post(
                "/api/chat",
                json={"body": body},
                headers={"Authorization": f"Bearer {viewer['token']}"},
            )
            assert sent.status_code == 202, sent.text
        seen: dict[str, tuple[str, str]] = {}
        async with asyncio.timeout(10):
            while len(seen) < 2:
                subject, message = await arrived.get()
                if message.room in (room, edge.room):
                    seen[message.body] = (subject, message.room)
    finally:
        await sub.unsubscribe()
        await nc.close()
    assert seen["hello quiz"] == (subjects.chat_submitted(room), room)
    assert seen["hello main"] == (subjects.chat_submitted(edge.room), edge.room)


async def test_history_is_asked_of_the_room_of_the_token(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge, room = await edge_with_show(make_edge, history_timeout_s=2.0)
    nc = await nats.connect(nats_server.url)
    asked: list[str] = []

    def answer_for(answering: str):  # type: ignore[no-untyped-def]
        async def answer(msg: nats.aio.msg.Msg) -> None:
            request = HistoryRequest.from_json(msg.data)
            asked.append(request.room)
            line = ChatMessage(
                id="m-" + answering,
                room=answering,
                author_identity="viewer_aaaaaaaa_00000000",
                author_name="Ann",
                avatar="fox",
                body=f"earlier in {answering}",
                kind="viewer",
                created_at=now_ms(),
            )
            await msg.respond(HistoryReply(messages=[line]).to_json())

        return answer

    # stand-ins for chat-history on the real request/reply subjects, one per room
    subs = [
        await nc.subscribe(subjects.history_recent(r), cb=answer_for(r)) for r in (room, edge.room)
    ]
    try:
        for show, expected in ((room, room), (None, edge.room)):
            token = await edge.token(**({"show": show} if show else {}))
            reply = await edge.client.get(
                "/api/chat/history", headers={"Authorization": f"Bearer {token['token']}"}
            )
            assert reply.status_code == 200, reply.text
            assert [m["room"] for m in reply.json()["messages"]] == [expected]
    finally:
        for sub in subs:
            await sub.unsubscribe()
        await nc.close()
    assert asked == [room, edge.room]


async def test_pages_and_config_of_a_show_and_404_for_unknown_ones(make_edge: EdgeFactory) -> None:
    edge, room = await edge_with_show(make_edge)
    page = await edge.client.get(f"/s/{room}")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert page.text == (await edge.client.get("/")).text  # the viewer page, reading its path
    assert (await edge.client.get(f"/stage?show={room}")).status_code == 200
    assert "content-security-policy" in page.headers

    config = (await edge.client.get("/api/config", params={"show": room})).json()
    assert (config["roomName"], config["title"]) == (room, "Quiz <night>")
    assert (config["layout"], config["showState"]) == ("visual-only", "live")
    default = (await edge.client.get("/api/config")).json()
    assert default["roomName"] == edge.room and default["layout"] == "corner"

    for name in ("nope-" + uuid.uuid4().hex[:6], "<script>alert(1)</script>", "a%22onload=x"):
        for path in (f"/s/{name}", f"/stage?show={name}"):
            missing = await edge.client.get(path)
            assert missing.status_code == 404, path
            assert "text/html" in missing.headers["content-type"]
            assert "No such show" in missing.text
            assert name not in missing.text and "script>alert" not in missing.text
    unknown = new_room()
    assert (await edge.client.get(f"/api/config?show={unknown}")).status_code == 404
    refused = await edge.client.post("/api/livekit-token", json=PROFILE | {"show": unknown})
    assert refused.status_code == 404 and unknown in refused.json()["detail"]
    bad = await edge.client.post("/api/livekit-token", json=PROFILE | {"show": "a b"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "show"]
    bad = await edge.client.get("/api/config", params={"show": "<b>"})
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "show"]


async def test_an_ended_show_gets_tokens_and_a_deleted_one_is_gone(make_edge: EdgeFactory) -> None:
    edge, room = await edge_with_show(make_edge)
    ended = await edge.client.post(f"/api/operator/shows/{room}/end", headers=AUTH)
    assert ended.status_code == 200, ended.text
    token = await edge.token(show=room)  # as for the default show: the page says it has ended
    assert token["roomName"] == room
    assert (await edge.client.get("/api/config")).json()["showState"] == "live"

    deleted = await edge.client.delete(f"/api/operator/shows/{room}", headers=AUTH)
    assert deleted.status_code == 204, deleted.text
    auth = {"Authorization": f"Bearer {token['token']}"}
    chat = await edge.client.post("/api/chat", json={"body": "still here?"}, headers=auth)
    assert chat.status_code == 401 and room in chat.json()["detail"]
    assert (await edge.client.get(f"/s/{room}")).status_code == 404
    again = await edge.client.post("/api/livekit-token", json=PROFILE | {"show": room})
    assert again.status_code == 404


@pytest.mark.parametrize("stored", [True, False])
async def test_the_default_show_has_a_title_with_or_without_a_record(
    make_edge: EdgeFactory, stored: bool
) -> None:
    edge = await edge_with_bus(make_edge, operator_secret=SECRET)
    if stored:
        config = ShowConfig(
            room=edge.room, title="Main stage", created_at=now_ms(), updated_at=now_ms()
        )
        await ShowStore(edge.services.redis, default_room=edge.room).replace(config)
    config_json = (await edge.client.get("/api/config")).json()
    assert config_json["title"] == ("Main stage" if stored else "Livestage")
    page = await edge.client.get(f"/s/{edge.room}")
    assert page.status_code == 200  # the default show has its own /s/ address too
