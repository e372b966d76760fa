"""Operator bans on the edge: stored in Redis, announced on NATS, refused with a clear 403 on
tokens and chat (across re-mints), listed, and lifted; against real NATS, Redis and LiveKit."""

from __future__ import annotations

import datetime
import re
from typing import Any

import nats
from nats.js import JetStreamContext

from livestage import subjects
from livestage.schemas import BanEvent, now_ms

from .conftest import Edge, EdgeFactory

SECRET = "operator-secret-for-tests-0123456789"
OPERATOR = {"Authorization": f"Bearer {SECRET}"}
PROFILE = {"displayName": "Ada", "avatar": "fox"}
UNTIL = re.compile(r"banned from this room until (\S+Z): (.+) refused")


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


async def chat(edge: Edge, token: dict[str, Any]) -> Any:
    return await edge.client.post("/api/chat", json={"body": "hi"}, headers=bearer(token))


async def next_event(sub: JetStreamContext.PushSubscription) -> BanEvent:
    return BanEvent.from_json((await sub.next_msg(timeout=5)).data)


async def test_ban_refuses_tokens_and_chat_across_re_mints_until_unbanned(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    troll_client = edge.visitor()
    troll = await edge.token(client=troll_client)
    bystander = await edge.token()
    tag = troll["identity"].split("_")[1]
    assert (await chat(edge, troll)).status_code == 202

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    banned_events = await js.subscribe(subjects.chat_banned(edge.room), ordered_consumer=True)
    unbanned_events = await js.subscribe(subjects.chat_unbanned(edge.room), ordered_consumer=True)
    try:
        before = now_ms()
        response = await edge.client.post(
            "/api/operator/bans",
            json={"identity": troll["identity"], "reason": "spam\u202e", "durationS": 3600},
            headers=OPERATOR,
        )
        assert response.status_code == 201, response.text
        ban = response.json()
        assert ban["visitorTag"] == tag and ban["identity"] == troll["identity"]
        assert ban["reason"] == "spam"  # sanitized like any text
        assert before + 3_600_000 <= ban["expiresAt"] <= now_ms() + 3_600_000

        event = await next_event(banned_events)
        assert (event.room, event.visitor_tag, event.identity) == (
            edge.room,
            tag,
            troll["identity"],
        )
        assert (event.reason, event.expires_at) == ("spam", ban["expiresAt"])

        # chat with the token in hand, and with any new token, says banned and until when
        refused = await chat(edge, troll)
        assert refused.status_code == 403, refused.text
        match = UNTIL.fullmatch(refused.json()["detail"])
        assert match is not None and match.group(2) == "chat"
        until = datetime.datetime.fromisoformat(match.group(1).replace("Z", "+00:00"))
        assert abs(until.timestamp() * 1000 - ban["expiresAt"]) < 1000
        re_mint = await troll_client.post("/api/livekit-token", json=PROFILE)
        assert re_mint.status_code == 403, re_mint.text
        assert UNTIL.fullmatch(re_mint.json()["detail"]).group(2) == "new tokens"  # type: ignore[union-attr]
        assert (await chat(edge, bystander)).status_code == 202  # only that visitor

        listed = await edge.client.get("/api/operator/bans", headers=OPERATOR)
        assert listed.status_code == 200
        assert listed.json() == {"bans": [ban]}

        lifted = await edge.client.delete(f"/api/operator/bans/{tag}", headers=OPERATOR)
        assert lifted.status_code == 204, lifted.text
        assert (await next_event(unbanned_events)).visitor_tag == tag
        assert (await chat(edge, troll)).status_code == 202
        assert (await troll_client.post("/api/livekit-token", json=PROFILE)).status_code == 200
        assert (await edge.client.get("/api/operator/bans", headers=OPERATOR)).json() == {
            "bans": []
        }
        again = await edge.client.delete(f"/api/operator/bans/{tag}", headers=OPERATOR)
        assert again.status_code == 404 and tag in again.json()["detail"]
    finally:
        await nc.close()


async def test_a_ban_by_visitor_tag_without_duration_is_permanent(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    troll_client = edge.visitor()
    troll = await edge.token(client=troll_client)
    tag = troll["identity"].split("_")[1]
    response = await edge.client.post(
        "/api/operator/bans", json={"visitorTag": tag}, headers=OPERATOR
    )
    assert response.status_code == 201, response.text
    assert response.json()["expiresAt"] == 0
    re_mint = await troll_client.post("/api/livekit-token", json=PROFILE)
    assert re_mint.status_code == 403
    assert re_mint.json()["detail"] == "banned from this room permanently: new tokens refused"


async def test_ban_requests_are_checked(make_edge: EdgeFactory) -> None:
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    for body, field in [
        ({}, "identity"),
        (
            {"identity": "viewer_0123456789abcdef_00112233", "visitorTag": "0123456789abcdef"},
            "identity",
        ),
        ({"identity": "avatar-host"}, "identity"),
        ({"visitorTag": "NOT-A-TAG"}, "visitorTag"),
        ({"visitorTag": "0123456789abcdef", "durationS": 0}, "durationS"),
    ]:
        response = await edge.client.post("/api/operator/bans", json=body, headers=OPERATOR)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"][0]["loc"] == ["body", field], body
    bad_path = await edge.client.delete("/api/operator/bans/NOT_A_TAG", headers=OPERATOR)
    assert bad_path.status_code == 422
    for method, path in [("GET", ""), ("POST", ""), ("DELETE", "/0123456789abcdef")]:
        response = await edge.client.request(
            method, "/api/operator/bans" + path, json={"visitorTag": "0123456789abcdef"}
        )
        assert response.status_code == 401, (method, path)


async def test_a_platform_chat_author_is_banned_by_platform_identity_and_unbanned(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    """A Twitch or YouTube chat author has no visitor tag: the ban is keyed on their identity
    (what moderation looks up for their messages), never on a network."""
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    banned_events = await js.subscribe(subjects.chat_banned(edge.room), ordered_consumer=True)
    unbanned_events = await js.subscribe(subjects.chat_unbanned(edge.room), ordered_consumer=True)
    try:
        network = await edge.client.post(
            "/api/operator/bans",
            json={"identity": "twitch:42", "scope": "network"},
            headers=OPERATOR,
        )
        assert network.status_code == 422, network.text
        assert network.json()["detail"][0]["loc"] == ["body", "scope"]
        assert "Twitch" in network.json()["detail"][0]["msg"]
        assert await edge.services.bans.get(edge.room, "twitch:42") is None  # nothing stored

        response = await edge.client.post(
            "/api/operator/bans",
            json={"identity": "twitch:42", "reason": "spam", "durationS": 600},
            headers=OPERATOR,
        )
        assert response.status_code == 201, response.text
        ban = response.json()
        assert (ban["visitorTag"], ban["identity"], ban["scope"]) == ("", "twitch:42", "visitor")
        stored = await edge.services.bans.get(edge.room, "twitch:42")  # what moderation reads
        assert stored is not None and stored.expires_at == ban["expiresAt"]
        event = await next_event(banned_events)
        assert (event.visitor_tag, event.identity, event.reason) == (
            "twitch:42",
            "twitch:42",
            "spam",
        )
        youtube = await edge.client.post(
            "/api/operator/bans", json={"identity": "youtube:UC_x-9"}, headers=OPERATOR
        )
        assert youtube.status_code == 201, youtube.text
        listed = (await edge.client.get("/api/operator/bans", headers=OPERATOR)).json()["bans"]
        assert [b["identity"] for b in listed] == ["youtube:UC_x-9", "twitch:42"]

        lifted = await edge.client.delete("/api/operator/bans/twitch:42", headers=OPERATOR)
        assert lifted.status_code == 204, lifted.text
        assert (await next_event(unbanned_events)).visitor_tag == "twitch:42"
        assert await edge.services.bans.get(edge.room, "twitch:42") is None
        assert await edge.services.bans.get(edge.room, "youtube:UC_x-9") is not None
        again = await edge.client.delete("/api/operator/bans/twitch:42", headers=OPERATOR)
        assert again.status_code == 404 and "twitch:42" in again.json()["detail"]
        for bad in ("twitch:", "twitch:a b", "mastodon:1", "twitch:" + "x" * 65):
            refused = await edge.client.post(
                "/api/operator/bans", json={"identity": bad}, headers=OPERATOR
            )
            assert refused.status_code == 422, (bad, refused.text)
            assert refused.json()["detail"][0]["loc"] == ["body", "identity"], bad
        for bad_path in ("mastodon:1", "twitch:a%20b"):
            response = await edge.client.delete(f"/api/operator/bans/{bad_path}", headers=OPERATOR)
            assert response.status_code == 422, bad_path
    finally:
        await nc.close()
