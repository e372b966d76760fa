"""`POST /api/chat` through `ChatIngress` (the lean path) answers as the FastAPI route did: the
same bodies and headers for what only it sees, and the route still documented."""

from __future__ import annotations

import asyncio
import datetime
import json
import uuid
from collections.abc import AsyncIterator

import httpx
from starlette.middleware.errors import ServerErrorMiddleware

from livestage.subjects import chat_submitted
from token_service.body_limit import BodyLimit
from token_service.viewers import mint_viewer_token

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


async def test_a_chat_post_skips_only_the_do_nothing_layers_and_an_error_is_still_a_500(
    make_edge: EdgeFactory,
) -> None:
    edge = await make_edge()
    await edge.wait_for_bus()
    token = (await edge.token())["token"]
    r = await edge.client.post(
        "/api/chat", json={"body": "hello"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 202, r.text
    # Starlette's 500 handling, then our middleware: the instances every other request passes
    lean = edge.server.config.app._chat  # type: ignore[attr-defined]
    assert isinstance(lean, ServerErrorMiddleware) and isinstance(lean.app, BodyLimit)
    full = edge.server.config.app.middleware_stack  # type: ignore[attr-defined]
    assert lean.handler is full.handler and lean.debug is full.debug
    # A token minted elsewhere whose name, cut to its 32 characters, ends in a space: no chat
    # line can carry it, and the error no handler answers is Starlette's 500, every time.
    livekit = edge.services.livekit
    odd = mint_viewer_token(
        api_key=livekit.api_key,
        api_secret=livekit.api_secret.get_secret_value(),
        room=edge.room,
        identity=f"viewer_{'b' * 16}_{uuid.uuid4().hex[:8]}",
        name="a" * 31 + " bc",
        avatar="fox",
        role="viewer",
        ttl=datetime.timedelta(seconds=60),
    )
    for _ in range(2):
        r = await edge.client.post(
            "/api/chat", json={"body": "hi"}, headers={"Authorization": f"Bearer {odd}"}
        )
        assert (r.status_code, r.text) == (500, "Internal Server Error")
