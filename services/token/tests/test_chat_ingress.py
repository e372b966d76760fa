"""`POST /api/chat` through `ChatIngress` (the lean path) answers as the FastAPI route did: the
same bodies and headers for what only it sees, and the route still documented."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx

from livestage.subjects import chat_submitted

from .conftest import EdgeFactory
from .test_edge import _messages_on


async def test_an_accepted_post_gets_the_security_headers_and_only_its_id(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    await edge.wait_for_bus()
    token = (await edge.token())["token"]
    r = await edge.client.post(
        "/api/chat",
        json={"body": "hello", "clientId": "abcdefgh1"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 202, r.text
    assert set(r.json()) == {"id"} and len(r.json()["id"]) == 32
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "content-security-policy" not in r.headers  # pages only


async def test_a_body_the_lean_path_does_not_take_gets_the_route_s_422(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    token = (await edge.token())["token"]
    auth = {"Authorization": f"Bearer {token}"}
    # JSON under another content type: the route reads bytes, not a chat line
    r = await edge.client.post(
        "/api/chat",
        content=json.dumps({"body": "hi"}),
        headers=auth | {"Content-Type": "text/plain"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body"], r.text
    # not JSON at all, and an unknown field: each named as the route names it
    r = await edge.client.post(
        "/api/chat", content=b"{nope", headers=auth | {"Content-Type": "application/json"}
    )
    assert r.status_code == 422 and r.json()["detail"][0]["type"] == "json_invalid", r.text
    r = await edge.client.post("/api/chat", json={"body": "hi", "colour": "red"}, headers=auth)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "colour"], r.text


async def test_a_streamed_body_over_the_cap_is_413_with_the_route_s_answer(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    token = (await edge.token())["token"]

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it comes
        yield b'{"body": "'
        for _ in range(20):
            yield b"x" * 1024
        yield b'"}'

    r = await edge.client.post(
        "/api/chat",
        content=chunks(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    assert r.status_code == 413 and "16384 bytes" in r.json()["detail"], r.text


async def test_openapi_still_documents_the_chat_post(make_edge: EdgeFactory) -> None:
    edge = await make_edge()
    spec = (await edge.client.get("/openapi.json")).json()
    post = spec["paths"]["/api/chat"]["post"]
    assert {"202", "401", "403", "413", "422", "429", "503"} <= set(post["responses"])
    assert post["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ChatRequest"
    )


async def test_posts_in_flight_together_are_each_stored_once_and_answered_with_their_id(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await make_edge(rate_chat="100/minute", rate_chat_per_network="1000/minute")
    await edge.wait_for_bus()
    tokens = [(await edge.token(client=edge.visitor()))["token"] for _ in range(4)]
    posts = 32

    async def post(n: int) -> httpx.Response:
        return await edge.client.post(
            "/api/chat",
            json={"body": f"line {n}"},
            headers={"Authorization": f"Bearer {tokens[n % len(tokens)]}"},
        )

    answers = await asyncio.gather(*(post(n) for n in range(posts)))
    assert [a.status_code for a in answers] == [202] * posts, [a.text for a in answers]
    stored = {m.id: m.body for m in await _messages_on(nats_server.url, chat_submitted(edge.room))}
    assert {a.json()["id"]: f"line {n}" for n, a in enumerate(answers)} == stored
    # they did not each make their own round trips (how many go together depends on timing)
    services = edge.services
    assert services.chat_publishes.round_trips < posts
    assert services.chat_admission.round_trips < posts
