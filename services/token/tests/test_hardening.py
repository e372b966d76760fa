"""Edge hardening (issue #12), each against real NATS, Redis and livekit-server: limits that
re-minting or a new visitor cannot sidestep, calls that cannot hang, body caps before anything
reads a body, a host decision that is right and cheap, errors that say what they are."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import nats
import pytest
from livekit import api
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from livestage import metrics, subjects
from livestage.schemas import HostJobEvent, new_id, now_ms
from tests.support.livekit_helpers import joined, server_api
from tests.support.tcp_double import TcpDouble

from .conftest import Edge, EdgeFactory

PROFILE = {"displayName": "Ada", "avatar": "fox"}
AGENT = "livestage-host-test"


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


async def chat(
    edge: Edge, token: dict[str, Any], body: str = "hello", **kwargs: Any
) -> httpx.Response:
    return await edge.client.post("/api/chat", json={"body": body}, headers=bearer(token), **kwargs)


async def edge_with_bus(make_edge: EdgeFactory, **overrides: Any) -> Edge:
    """An edge that has connected to NATS (it connects in the background), so chat can be stored."""
    edge = await make_edge(**overrides)
    await edge.wait_for_bus()
    return edge


async def our_dispatches(livekit_server: Any, room: str) -> list[api.AgentDispatch]:
    async with server_api(livekit_server) as lk:
        return [d for d in await lk.agent_dispatch.list_dispatch(room) if d.agent_name == AGENT]


def signed(body: str, key: str, secret: str) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    return api.AccessToken(key, secret).with_sha256(digest).to_jwt()


# --- rate limits that re-minting and new visitor ids cannot sidestep -----------------------------


async def test_a_re_minting_client_still_gets_429_on_chat_after_its_share(
    make_edge: EdgeFactory,
) -> None:
    edge = await edge_with_bus(make_edge, rate_chat="3/minute", rate_chat_per_network="100/minute")
    first = await edge.token()
    assert [(await chat(edge, first)).status_code for _ in range(4)] == [202, 202, 202, 429]
    for _ in range(3):  # every new token is the same visitor: no fresh bucket
        again = await edge.token()
        assert again["identity"] != first["identity"]
        refused = await chat(edge, again)
        assert refused.status_code == 429, refused.text
        assert "chat-visitor" in refused.json()["detail"] and int(refused.headers["Retry-After"])


async def test_a_new_visitor_from_the_same_network_shares_the_network_s_chat_share(
    make_edge: EdgeFactory,
) -> None:
    edge = await edge_with_bus(make_edge, rate_chat="3/minute", rate_chat_per_network="4/minute")
    ada = await edge.token()
    assert [(await chat(edge, ada)).status_code for _ in range(3)] == [202, 202, 202]
    newcomer = edge.visitor()
    bo = await edge.token(client=newcomer)
    codes = []
    for _ in range(2):
        response = await chat(edge, bo)
        codes.append(response.status_code)
    assert codes == [202, 429]
    assert "chat-network" in response.json()["detail"]


async def test_ipv6_clients_are_counted_by_their_64(make_edge: EdgeFactory) -> None:
    edge = await edge_with_bus(
        make_edge,
        trusted_proxies=["127.0.0.0/8"],
        rate_chat="100/minute",
        rate_chat_per_network="2/minute",
    )

    async def chat_from(address: str) -> int:
        client = edge.visitor()
        forwarded = {"X-Forwarded-For": address}
        token = (await client.post("/api/livekit-token", json=PROFILE, headers=forwarded)).json()
        response = await client.post(
            "/api/chat", json={"body": "hi"}, headers=bearer(token) | forwarded
        )
        return response.status_code

    same_64 = ["2001:db8:1:2::a", "2001:db8:1:2:ffff:ffff:ffff:b", "2001:db8:1:2::c"]
    assert [await chat_from(address) for address in same_64] == [202, 202, 429]
    assert await chat_from("2001:db8:1:3::a") == 202  # the next /64 is someone else


async def test_each_edge_room_has_its_own_buckets(make_edge: EdgeFactory) -> None:
    one = await make_edge(rate_token_per_ip="1/minute")
    two = await make_edge(rate_token_per_ip="1/minute")
    assert (await one.client.post("/api/livekit-token", json=PROFILE)).status_code == 200
    assert (await one.client.post("/api/livekit-token", json=PROFILE)).status_code == 429
    # same address, another edge (room): a bucket of its own
    assert (await two.client.post("/api/livekit-token", json=PROFILE)).status_code == 200


async def test_every_429_is_counted_by_limit_name(make_edge: EdgeFactory) -> None:
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("test")
    edge = await edge_with_bus(
        make_edge,
        rate_chat="1/minute",
        rate_chat_per_network="100/minute",
        rate_limited_counter=metrics.counter(metrics.RATE_LIMITED, meter),
    )
    token = await edge.token()
    assert [(await chat(edge, token)).status_code for _ in range(3)] == [202, 429, 429]
    data = reader.get_metrics_data()
    points = [
        (dict(point.attributes or {}), point.value)
        for resource in data.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == metrics.RATE_LIMITED.name
        for point in metric.data.data_points  # type: ignore[union-attr]
    ]
    assert points == [({"limit": "chat-visitor"}, 2)]


# --- calls that cannot hang ---------------------------------------------------------------------


async def test_a_livekit_that_never_answers_is_503_in_time_and_a_later_rush_dispatches_once(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    async with TcpDouble(target=("127.0.0.1", livekit_server.port), mode="blackhole") as lk:
        edge = await make_edge(
            livekit_api_url=lk.url,
            livekit_timeout_s=0.5,
            dispatch_lock_s=3.0,
            rate_token_per_ip="1000/minute",
            rate_token_per_visitor="1000/minute",
        )
        started = time.monotonic()
        hung = await edge.client.post("/api/livekit-token", json=PROFILE, timeout=8)
        elapsed = time.monotonic() - started
        assert hung.status_code == 503, hung.text
        assert hung.headers["Retry-After"] == "2"
        assert "did not answer" in hung.json()["detail"]
        assert elapsed < 0.5 + 1.5, elapsed
        assert lk.accepted >= 1  # it really reached the double

        lk.mode = "forward"
        rush = await asyncio.gather(
            *[edge.visitor().post("/api/livekit-token", json=PROFILE) for _ in range(30)]
        )
        assert [r.status_code for r in rush] == [200] * 30
    assert len(await our_dispatches(livekit_server, edge.room)) == 1


async def test_a_redis_that_never_answers_is_503_in_time(make_edge: EdgeFactory) -> None:
    async with TcpDouble(mode="blackhole") as redis:
        edge = await make_edge(redis_url=f"redis://127.0.0.1:{redis.port}/0", redis_timeout_s=0.3)
        started = time.monotonic()
        response = await edge.client.post("/api/livekit-token", json=PROFILE, timeout=8)
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert "Redis" in response.json()["detail"] and response.headers["Retry-After"] == "2"
    assert elapsed < 2.5, elapsed


# --- bodies capped before anything reads them ----------------------------------------------------


def _webhook_body(room: str, padding: int) -> str:
    return json.dumps(
        {
            "event": "participant_joined",
            "id": "EV_" + uuid.uuid4().hex[:12],
            "createdAt": "1800000000",
            "room": {"name": room},
            "participant": {
                "identity": "viewer_abcdefgh_12345678",
                "name": "Ada",
                "kind": "STANDARD",
                "metadata": "x" * padding,
            },
        }
    )


async def test_an_oversized_webhook_is_413_before_its_signature_is_checked(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await edge_with_bus(make_edge)
    key, secret = livekit_server.api_key, livekit_server.api_secret
    headers = {"Content-Type": "application/webhook+json"}
    big = _webhook_body(edge.room, 70 * 1024)

    unsigned = await edge.client.post("/api/livekit/webhook", content=big, headers=headers)
    assert unsigned.status_code == 413, unsigned.text  # not 401: the signature was never read
    assert "65536 bytes" in unsigned.json()["detail"]
    signed_big = await edge.client.post(
        "/api/livekit/webhook",
        content=big,
        headers=headers | {"Authorization": signed(big, key, secret)},
    )
    assert signed_big.status_code == 413

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(80):
            yield b"x" * 1024

    streamed = await edge.client.post("/api/livekit/webhook", content=chunks(), headers=headers)
    assert streamed.status_code == 413, streamed.text

    # a webhook under its own cap (but over the JSON cap) is read and verified as usual
    fits = _webhook_body(edge.room, 40 * 1024)
    ok = await edge.client.post(
        "/api/livekit/webhook",
        content=fits,
        headers=headers | {"Authorization": signed(fits, key, secret)},
    )
    assert ok.status_code == 204, ok.text


async def test_json_bodies_over_16_kib_are_413(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    token = await edge.token()
    body = json.dumps({"body": "x" * (17 * 1024)})
    for path, headers in [("/api/chat", bearer(token)), ("/api/livekit-token", {})]:
        response = await edge.client.post(
            path, content=body, headers=headers | {"Content-Type": "application/json"}
        )
        assert response.status_code == 413, (path, response.text)
        assert "16384 bytes" in response.json()["detail"]


# --- the host decision: right, and cheap ----------------------------------------------------------


async def test_a_stale_dispatch_is_deleted_and_replaced(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(
        dispatch_stale_s=3.0, host_cache_ttl_s=0.05, rate_token_per_visitor="1000/minute"
    )
    async with server_api(livekit_server) as lk:
        await lk.room.create_room(api.CreateRoomRequest(name=edge.room))
        # no worker is registered under this name: the dispatch never gets a job
        stale = await lk.agent_dispatch.create_dispatch(
            api.CreateAgentDispatchRequest(agent_name=AGENT, room=edge.room)
        )
    await edge.token()
    assert [d.id for d in await our_dispatches(livekit_server, edge.room)] == [stale.id]

    async with asyncio.timeout(10):
        while True:
            await edge.token()
            ids = [d.id for d in await our_dispatches(livekit_server, edge.room)]
            if ids != [stale.id]:
                break
            await asyncio.sleep(0.2)  # the dispatch has to grow old: that is the event
    assert len(ids) == 1 and ids[0] != stale.id


def _agent_token(server: Any, room: str, identity: str, attributes: dict[str, str]) -> str:
    return (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_kind("agent")
        .with_attributes(attributes)
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


async def test_a_leftover_avatar_is_not_the_host_but_our_agent_is(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    avatar_room = await make_edge()
    avatar = _agent_token(
        livekit_server, avatar_room.room, "avatar-host", {"lk.publish_on_behalf": "agent-gone"}
    )
    async with joined(livekit_server, avatar):
        await avatar_room.token()
        assert len(await our_dispatches(livekit_server, avatar_room.room)) == 1

    hosted = await make_edge()
    host = _agent_token(livekit_server, hosted.room, "agent-AJ_test", {"lk.agent.name": AGENT})
    async with joined(livekit_server, host):
        await hosted.token()
        assert await our_dispatches(livekit_server, hosted.room) == []


def host_calls(lk: TcpDouble) -> list[bytes]:
    """The LiveKit calls of host decisions: without the status checks' ListRooms, and without
    ListParticipants: the host reconciler lists the room's participants on its own (at start, on
    webhooks and host.job events) and, with no viewer in this room, does nothing more."""
    return [
        line
        for line in lk.requests
        if b"/ListRooms " not in line and b"ListParticipants" not in line
    ]


async def test_a_rush_costs_redis_not_livekit_and_events_keep_the_cache_honest(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    async with TcpDouble(target=("127.0.0.1", livekit_server.port)) as lk:
        edge = await edge_with_bus(
            make_edge,
            livekit_api_url=lk.url,
            host_cache_ttl_s=60,
            rate_token_per_ip="1000/minute",
            rate_token_per_visitor="1000/minute",
        )

        await edge.token()  # decides: create_room, list participants + dispatches, dispatch
        decided = len(host_calls(lk))
        assert decided == 3, host_calls(lk)
        # More requests in flight than redis-py's default pool has connections (100, past which
        # it fails with "Too many connections"): the edge's pool is sized and waits instead.
        async with httpx.AsyncClient(
            base_url=edge.base_url, timeout=30, limits=httpx.Limits(max_connections=150)
        ) as crowd:
            rush = await asyncio.gather(
                *[crowd.post("/api/livekit-token", json=PROFILE) for _ in range(150)]
            )
        assert [r.status_code for r in rush] == [200] * 150, {r.text for r in rush}
        assert len(host_calls(lk)) == decided  # 150 viewers, not one LiveKit call

        # LiveKit says our agent left: the cache is dropped and the next request asks again
        left = json.dumps(
            {
                "event": "participant_left",
                "id": "EV_" + uuid.uuid4().hex[:12],
                "createdAt": str(int(time.time())),
                "room": {"name": edge.room},
                "participant": {
                    "identity": "agent-AJ_x",
                    "kind": "AGENT",
                    "attributes": {"lk.agent.name": AGENT},
                },
            }
        )
        hook = await edge.client.post(
            "/api/livekit/webhook",
            content=left,
            headers={
                "Content-Type": "application/webhook+json",
                "Authorization": signed(left, livekit_server.api_key, livekit_server.api_secret),
            },
        )
        assert hook.status_code == 204, hook.text
        await edge.token()
        assert len(host_calls(lk)) == decided + 2  # looked again; the dispatch is still pending

        # the host agent says its job started: present, and nobody asks LiveKit
        nc = await nats.connect(nats_server.url)
        try:
            for event in ("started", "ended"):
                await nc.publish(
                    subjects.host_job(edge.room),
                    HostJobEvent(
                        id=new_id(), room=edge.room, job_id="AJ_x", event=event, created_at=now_ms()
                    ).to_json(),
                )
                await nc.flush()
                cache = edge.services.host_cache_for(edge.room)
                expected = event == "started"
                async with asyncio.timeout(5):
                    # the edge handles the event in the background; Redis shows when it did
                    while (await cache.get() is not None) != expected:  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
                before = len(host_calls(lk))
                await edge.token()
                assert len(host_calls(lk)) == before + (0 if expected else 2), event
        finally:
            await nc.close()
        assert "AJ_x" in await edge.services.host_cache_for(edge.room).ended_jobs()


# --- errors that tell the truth -------------------------------------------------------------------


async def test_livekit_refusing_our_credentials_is_a_loud_500_not_a_retry(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
    caplog: pytest.LogCaptureFixture,
) -> None:
    wrong = SimpleNamespace(
        url=livekit_server.url, api_key=livekit_server.api_key, api_secret="wrong-" + "x" * 40
    )
    edge = await make_edge(livekit=wrong)
    with caplog.at_level(logging.ERROR, logger="token_service"):
        response = await edge.client.post("/api/livekit-token", json=PROFILE)
    assert response.status_code == 500, response.text
    assert "Retry-After" not in response.headers
    detail = response.json()["detail"]
    assert "LIVEKIT_API_SECRET" in detail and "retrying will not help" in detail
    assert any(
        record.levelno == logging.ERROR and "LIVEKIT_API_SECRET" in record.getMessage()
        for record in caplog.records
    )


@pytest.mark.parametrize("reply", [b"not json at all", b'{"messages": "nope"}', b'{"x": 1}'])
async def test_a_malformed_history_reply_is_a_502_not_a_500(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
    reply: bytes,
) -> None:
    edge = await edge_with_bus(make_edge)
    token = await edge.token()
    nc = await nats.connect(nats_server.url)

    async def answer(msg: nats.aio.msg.Msg) -> None:
        await msg.respond(reply)

    sub = await nc.subscribe(subjects.history_recent(edge.room), cb=answer)
    try:
        response = await edge.client.get("/api/chat/history", headers=bearer(token))
    finally:
        await sub.unsubscribe()
        await nc.close()
    assert response.status_code == 502, response.text
    assert "chat history" in response.json()["detail"]


async def test_the_stage_page_s_token_watches_but_cannot_chat(make_edge: EdgeFactory) -> None:
    edge = await edge_with_bus(make_edge)
    stage = await edge.token(name="Stage", role="stage")
    claims = api.TokenVerifier(
        edge.livekit.api_key, edge.livekit.api_secret.get_secret_value()
    ).verify(stage["token"])
    assert json.loads(claims.metadata) == {"avatar": "fox", "role": "stage"}
    assert claims.video is not None and claims.video.can_subscribe
    assert not claims.video.can_publish and not claims.video.can_publish_data
    refused = await chat(edge, stage)
    assert refused.status_code == 403, refused.text
    assert "subscribe-only" in refused.json()["detail"]
    viewer = await edge.token()
    assert (await chat(edge, viewer)).status_code == 202


def csp_of(response: httpx.Response) -> dict[str, str]:
    return dict(
        part.strip().split(" ", 1)
        for part in response.headers["content-security-policy"].split(";")
    )


async def test_the_page_policy_names_exactly_the_livekit_origin(
    make_edge: EdgeFactory,
    livekit_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge()
    policy = csp_of(await edge.client.get("/"))
    origin = livekit_server.url.removeprefix("ws://")
    assert policy["connect-src"] == f"'self' ws://{origin} http://{origin}"
    assert policy["img-src"] == "'self' data: blob:"
    assert policy["media-src"] == "'self' blob:"
    assert policy["script-src"] == "'self'"
    assert policy["default-src"] == "'self'"
    docs = await edge.client.get("/docs")
    docs_policy = docs.headers["content-security-policy"]
    assert (
        "script-src 'self' 'sha256-" in docs_policy
        and "unsafe" not in docs_policy.split("style-src")[0]
    )
    assert "cdn" not in docs.text.lower()


async def test_the_console_is_served_and_only_the_stage_may_be_framed_by_this_origin(
    make_edge: EdgeFactory, tmp_path: Path
) -> None:
    for name in ("index.html", "stage.html", "operator.html"):
        (tmp_path / name).write_text(f"<!doctype html><title>{name}</title>")
    edge = await make_edge(web_dist=tmp_path)
    policies = {}
    for path in ("/", "/stage", "/operator", "/docs"):
        response = await edge.client.get(path)
        assert response.status_code == 200, (path, response.text)
        policies[path] = csp_of(response)
    operator = await edge.client.get("/operator")
    assert "operator.html" in operator.text
    assert operator.headers["cache-control"] == "no-cache"
    # the console's preview frames /stage; nothing else may sit in a frame, not even here
    assert policies["/stage"]["frame-ancestors"] == "'self'"
    for path in ("/", "/operator", "/docs"):
        assert policies[path]["frame-ancestors"] == "'none'", path
    # apart from that, the stage and the console have the viewer page's policy
    assert {**policies["/stage"], "frame-ancestors": "'none'"} == policies["/"]
    assert policies["/operator"] == policies["/"]
