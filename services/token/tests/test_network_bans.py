"""Operator bans with `scope: network`: a visitor who drops the cookie comes back from the same
network (IPv4 address, IPv6 /64) and is refused; other networks are not; the network part
expires and is lifted with the ban. Real Redis, NATS and LiveKit behind the edge; client
addresses come from X-Forwarded-For through 127.0.0.1 as a trusted proxy (no real traffic)."""

from __future__ import annotations

import re
from typing import Any

import httpx

from livestage.schemas import now_ms
from tests.support.waiting import until

from .conftest import Edge, EdgeFactory

SECRET = "operator-secret-for-tests-0123456789"
OPERATOR = {"Authorization": f"Bearer {SECRET}"}
PROFILE = {"displayName": "Ada", "avatar": "fox"}
NETWORK_REFUSAL = re.compile(r"your network is banned from this room until (\S+Z): (.+) refused")
HOUR_S = 3600


async def network_edge(make_edge: EdgeFactory, **settings: Any) -> Edge:
    edge = await make_edge(
        operator_secret=SECRET,
        trusted_proxies=["127.0.0.1/32"],
        rate_token_per_ip="1000/minute",
        **settings,
    )
    await edge.wait_for_bus()
    return edge


def from_address(edge: Edge, address: str) -> httpx.AsyncClient:
    """A new visitor (no cookie) whose requests the trusted proxy forwards from `address`."""
    client = edge.visitor()
    client.headers["X-Forwarded-For"] = address
    return client


async def token_status(edge: Edge, address: str) -> httpx.Response:
    return await from_address(edge, address).post("/api/livekit-token", json=PROFILE)


async def ban(edge: Edge, identity: str, **fields: Any) -> dict[str, Any]:
    response = await edge.client.post(
        "/api/operator/bans", json={"identity": identity, **fields}, headers=OPERATOR
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_network_ban_refuses_the_network_without_the_cookie_until_lifted(
    make_edge: EdgeFactory,
) -> None:
    edge = await network_edge(make_edge)
    troll_client = from_address(edge, "203.0.113.7")
    troll = await edge.token(client=troll_client)
    neighbour_client = from_address(edge, "203.0.113.7")  # another visitor, same address
    neighbour = await edge.token(client=neighbour_client)

    before = now_ms()
    banned = await ban(edge, troll["identity"], scope="network", durationS=HOUR_S)
    assert (banned["scope"], banned["network"]) == ("network", "203.0.113.7")
    assert before + HOUR_S * 1000 <= banned["networkExpiresAt"] == banned["expiresAt"]

    # The troll without the cookie, from the same address: no token, same 403 shape.
    refused = await token_status(edge, "203.0.113.7")
    assert refused.status_code == 403, refused.text
    match = NETWORK_REFUSAL.fullmatch(refused.json()["detail"])
    assert match is not None and match.group(2) == "new tokens"
    # A token already in hand from that network cannot chat either.
    chat = await neighbour_client.post(
        "/api/chat", json={"body": "hi"}, headers={"Authorization": f"Bearer {neighbour['token']}"}
    )
    assert chat.status_code == 403, chat.text
    assert NETWORK_REFUSAL.fullmatch(chat.json()["detail"]).group(2) == "chat"  # type: ignore[union-attr]
    # The troll with the cookie is refused as a banned visitor, from any address.
    troll_client.headers["X-Forwarded-For"] = "192.0.2.50"
    again = await troll_client.post("/api/livekit-token", json=PROFILE)
    assert again.status_code == 403 and again.json()["detail"].startswith("banned from")
    # Another network is not banned.
    assert (await token_status(edge, "203.0.113.8")).status_code == 200

    listed = (await edge.client.get("/api/operator/bans", headers=OPERATOR)).json()
    assert listed == {"bans": [banned]}

    tag = troll["identity"].split("_")[1]
    lifted = await edge.client.delete(f"/api/operator/bans/{tag}", headers=OPERATOR)
    assert lifted.status_code == 204, lifted.text
    assert (await token_status(edge, "203.0.113.7")).status_code == 200
    assert (await troll_client.post("/api/livekit-token", json=PROFILE)).status_code == 200


async def test_an_ipv6_network_ban_covers_the_whole_64(make_edge: EdgeFactory) -> None:
    edge = await network_edge(make_edge)
    troll = await edge.token(client=from_address(edge, "2001:db8:5:6::1"))
    banned = await ban(edge, troll["identity"], scope="network")
    assert banned["network"] == "2001:db8:5:6::/64"
    assert banned["expiresAt"] == 0  # the visitor: permanently
    # the network: for TOKEN_NETWORK_BAN_MAX_S (a day by default), never for good
    assert banned["networkExpiresAt"] == banned["createdAt"] + 86_400_000

    refused = await token_status(edge, "2001:db8:5:6:ffff:eeee:dddd:cccc")
    assert refused.status_code == 403, refused.text
    assert NETWORK_REFUSAL.fullmatch(refused.json()["detail"]) is not None
    assert (await token_status(edge, "2001:db8:5:7::1")).status_code == 200


async def test_the_network_part_expires(make_edge: EdgeFactory) -> None:
    """A permanent ban whose network part lasts TOKEN_NETWORK_BAN_MAX_S: after that the
    network is let back in, the visitor (by cookie) still is not."""
    edge = await network_edge(make_edge, network_ban_max_s=5)
    troll_client = from_address(edge, "198.51.100.9")
    troll = await edge.token(client=troll_client)
    banned = await ban(edge, troll["identity"], scope="network")
    assert banned["networkExpiresAt"] == banned["createdAt"] + 5000
    refused = await token_status(edge, "198.51.100.9")
    assert refused.status_code == 403, refused.text

    await until(lambda: now_ms() > banned["networkExpiresAt"], 20, "the network part's expiry")
    assert (await token_status(edge, "198.51.100.9")).status_code == 200
    assert (await troll_client.post("/api/livekit-token", json=PROFILE)).status_code == 403


async def test_a_network_ban_needs_a_network_the_edge_has_seen(make_edge: EdgeFactory) -> None:
    edge = await network_edge(make_edge)
    response = await edge.client.post(
        "/api/operator/bans",
        json={"visitorTag": "0123456789abcdef", "scope": "network"},
        headers=OPERATOR,
    )
    assert response.status_code == 422, response.text
    item = response.json()["detail"][0]
    assert item["loc"] == ["body", "scope"] and "scope visitor" in item["msg"]
    wrong = await edge.client.post(
        "/api/operator/bans",
        json={"visitorTag": "0123456789abcdef", "scope": "house"},
        headers=OPERATOR,
    )
    assert wrong.status_code == 422 and wrong.json()["detail"][0]["loc"] == ["body", "scope"]


async def test_the_network_banned_is_the_one_the_visitor_last_came_from(
    make_edge: EdgeFactory,
) -> None:
    """The edge notes the network on chat too: a visitor who took the token at home and chats
    from a phone has the phone's network banned."""
    edge = await network_edge(make_edge)
    troll_client = from_address(edge, "192.0.2.10")
    troll = await edge.token(client=troll_client)
    troll_client.headers["X-Forwarded-For"] = "192.0.2.20"
    posted = await troll_client.post(
        "/api/chat", json={"body": "hi"}, headers={"Authorization": f"Bearer {troll['token']}"}
    )
    assert posted.status_code == 202, posted.text
    banned = await ban(edge, troll["identity"], scope="network", durationS=HOUR_S)
    assert banned["network"] == "192.0.2.20"
    assert (await token_status(edge, "192.0.2.20")).status_code == 403
    assert (await token_status(edge, "192.0.2.10")).status_code == 200
