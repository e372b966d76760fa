"""A viewer's memory on the edge: `GET`/`DELETE /api/me/memory` from the visitor cookie and the
operator's `/api/operator/viewers/{key}/memory`, against real NATS, Redis and LiveKit. Forgetting
erases the card (leaving only the erasure record), announces the removal of the viewer's lines
in history, deletes every key named after them and keeps their ban."""

from __future__ import annotations

from typing import Any

import nats
from redis.asyncio import Redis

from livestage import subjects
from livestage.bans import Ban
from livestage.history import messages_key
from livestage.identity import visitor_tag_of
from livestage.memory import MemoryStore, erased_key
from livestage.schemas import ChatMessage, ChatRemoval, new_id, now_ms
from livestage.settings import MemorySettings

from .conftest import Edge, EdgeFactory

SECRET = "operator-secret-for-tests-0123456789"
OPERATOR = {"Authorization": f"Bearer {SECRET}"}
FORGET = {"X-Livestage-Viewer": "1"}


def line(room: str, identity: str, body: str) -> ChatMessage:
    return ChatMessage(
        id=new_id(),
        room=room,
        author_identity=identity,
        author_name="Ada",
        avatar="fox",
        body=body,
        kind="viewer",
        created_at=now_ms(),
    )


async def my_memory(edge: Edge) -> Any:
    response = await edge.client.get("/api/me/memory")
    assert response.status_code == 200, response.text
    return response.json()


async def keys_naming(redis: Redis, key: str) -> set[str]:
    return {k.decode() async for k in redis.scan_iter(match=f"*{key}*", count=1000)}


async def remembered(redis: Redis, tag: str, identity: str, room: str) -> None:
    store = MemoryStore(redis, retention_days=180)
    message = line(room, identity, "I play the cello, when is the next show?")
    await store.record_message(message, question=True, topics=["cello"])
    await store.add_facts(tag, ["plays the cello"], message_id=message.id, at=message.created_at)


async def test_viewer_sees_their_card_and_forget_me_erases_it_keys_and_lines_not_bans(
    make_edge: EdgeFactory,
    redis_server,  # type: ignore[no-untyped-def]
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    redis = Redis.from_url(redis_server.url)
    nc = await nats.connect(nats_server.url)
    try:
        # no cookie yet: nothing is remembered about this browser, and nothing to forget
        answer = await edge.client.get("/api/me/memory")
        assert answer.status_code == 200, answer.text
        assert answer.json() == {"card": None, "enabled": True, "retentionDays": 180}
        nothing = await edge.client.delete("/api/me/memory", headers=FORGET)
        assert nothing.json() == {"erasedAt": 0, "messagesRemoved": 0, "keysDeleted": 0}

        token = await edge.token()
        identity = token["identity"]
        tag = visitor_tag_of(identity)
        assert tag is not None
        assert (await my_memory(edge))["card"] is None  # a cookie, but nothing remembered
        await edge.chat(token["token"], "hello")  # rate-limit buckets, the network seen
        await remembered(redis, tag, identity, edge.room)
        other = edge.visitor()
        other_identity = (await edge.token("Bob", client=other))["identity"]
        mine = [line(edge.room, identity, f"my line {n}") for n in range(3)]
        theirs = line(edge.room, other_identity, "someone else's line")
        for message in [*mine, theirs]:
            await redis.hset(messages_key(edge.room), message.id, message.to_json())
        await edge.services.bans.ban(edge.room, Ban(visitor_tag=tag, reason="test", created_at=1))

        card = (await my_memory(edge))["card"]
        assert card["key"] == tag
        assert card["names"] == ["Ada"]
        assert [fact["text"] for fact in card["facts"]] == ["plays the cello"]
        assert card["questions"][0]["text"] == "I play the cello, when is the next show?"
        assert len(await keys_naming(redis, tag)) >= 3  # card, limits, network seen

        # "Forget me" without the page's header is refused, and nothing is erased
        refused = await edge.client.delete("/api/me/memory")
        assert refused.status_code == 403, refused.text
        assert "X-Livestage-Viewer: 1" in refused.json()["detail"]
        assert (await my_memory(edge))["card"] is not None

        js = nc.jetstream()
        removals = await js.subscribe(subjects.chat_removed(edge.room), ordered_consumer=True)
        forgotten = await edge.client.delete("/api/me/memory", headers=FORGET)
        assert forgotten.status_code == 200, forgotten.text
        body = forgotten.json()
        assert body["messagesRemoved"] == 3
        assert body["keysDeleted"] >= 2
        announced = {ChatRemoval.from_json((await removals.next_msg(timeout=5)).data).message_id}
        for _ in range(2):
            announced.add(
                ChatRemoval.from_json((await removals.next_msg(timeout=5)).data).message_id
            )
        assert announced == {message.id for message in mine}

        assert (await my_memory(edge))["card"] is None
        assert await keys_naming(redis, tag) == {erased_key(tag)}
        assert int(await redis.get(erased_key(tag))) == body["erasedAt"]
        assert await edge.services.bans.get(edge.room, tag) is not None  # the ban stays
        # the next visitor's lines and card are untouched
        assert await redis.hexists(messages_key(edge.room), theirs.id)
    finally:
        await edge.services.bans.unban(edge.room, tag)
        await redis.delete(messages_key(edge.room), erased_key(tag))
        await redis.aclose()
        await nc.close()


async def test_memory_off_answers_no_card_but_forget_me_still_erases(
    make_edge: EdgeFactory,
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge()
    edge.services.memory = MemorySettings(enabled=False)
    redis = Redis.from_url(redis_server.url)
    try:
        token = await edge.token()
        tag = visitor_tag_of(token["identity"])
        assert tag is not None
        await remembered(redis, tag, token["identity"], edge.room)
        assert await my_memory(edge) == {"card": None, "enabled": False, "retentionDays": 180}
        forgotten = await edge.client.delete("/api/me/memory", headers=FORGET)
        assert forgotten.status_code == 200, forgotten.text
        assert await MemoryStore(redis, 180).card(tag) is None
        assert await redis.exists(erased_key(tag))
    finally:
        await redis.delete(erased_key(tag))
        await redis.aclose()


async def test_operator_reads_and_erases_a_viewer_by_key_422_on_a_bad_key(
    make_edge: EdgeFactory,
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    redis = Redis.from_url(redis_server.url)
    platform_key = f"twitch:{new_id()[:12]}"
    try:
        assert (
            await edge.client.get(f"/api/operator/viewers/{platform_key}/memory")
        ).status_code == 401
        assert (
            await edge.client.delete(f"/api/operator/viewers/{platform_key}/memory")
        ).status_code == 401
        for bad in ("Not-A-Key", "mastodon:123", "viewer_abc", "x" * 40):
            response = await edge.client.get(
                f"/api/operator/viewers/{bad}/memory", headers=OPERATOR
            )
            assert response.status_code == 422, (bad, response.text)
            assert response.json()["detail"][0]["loc"] == ["path", "key"]

        await remembered(redis, platform_key, platform_key, edge.room)
        got = await edge.client.get(
            f"/api/operator/viewers/{platform_key}/memory", headers=OPERATOR
        )
        assert got.status_code == 200, got.text
        assert got.json()["card"]["facts"][0]["text"] == "plays the cello"
        # a similar but longer id is someone else: not touched
        neighbour = f"livestage:moderation:strikes:{edge.room}:{platform_key}9"
        await redis.set(neighbour, "1", ex=60)
        erased = await edge.client.delete(
            f"/api/operator/viewers/{platform_key}/memory", headers=OPERATOR
        )
        assert erased.status_code == 200, erased.text
        assert erased.json()["keysDeleted"] == 0  # the card goes with forget, not counted
        after = await edge.client.get(
            f"/api/operator/viewers/{platform_key}/memory", headers=OPERATOR
        )
        assert after.json()["card"] is None
        assert await redis.exists(neighbour)
    finally:
        await redis.delete(
            erased_key(platform_key), f"livestage:moderation:strikes:{edge.room}:{platform_key}9"
        )
        await redis.aclose()


async def test_memory_routes_are_limited_per_network_and_leave_no_visitor_bucket(
    make_edge: EdgeFactory,
    redis_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(rate_history_per_network="2/minute", rate_token_per_ip="3/minute")
    redis = Redis.from_url(redis_server.url)
    token = await edge.token()  # one of the network's three token requests
    tag = visitor_tag_of(token["identity"])
    assert tag is not None
    try:
        for _ in range(2):
            await my_memory(edge)
        limited = await edge.client.get("/api/me/memory")
        assert limited.status_code == 429, limited.text
        assert limited.headers["Retry-After"]
        for _ in range(2):
            assert (await edge.client.delete("/api/me/memory", headers=FORGET)).status_code == 200
        assert (await edge.client.delete("/api/me/memory", headers=FORGET)).status_code == 429
        # forgetting took the token's per-visitor bucket; the reads made none
        assert await keys_naming(redis, tag) == {erased_key(tag)}
    finally:
        await redis.delete(erased_key(tag))
        await redis.aclose()
