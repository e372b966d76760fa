"""What makes a chat POST cheaper must not make it weaker: the verified-token cache still checks
expiry and room on every use and never remembers a bad token; several workers share the limits.
(A show found to exist is believed for TOKEN_SHOW_CACHE_S only, a missing one never: the shared
`ShowCache`, shared/tests/test_shows.py.)
"""

from __future__ import annotations

import asyncio
import datetime
import uuid

import httpx
import pytest
from pydantic import ValidationError

from bench.chat_path import children
from livestage.schemas import MAX_NAME_CHARS, ChatMessage
from livestage.text import clean_text
from tests.support.chat import backend_env
from tests.support.services import end_service, free_port, start_service_until, wait_http_ok
from tests.support.waiting import until
from token_service.models import ChatRequest
from token_service.routes.chat import chat_message
from token_service.viewers import ViewerAuthError, ViewerTokens, mint_viewer_token

from .conftest import EdgeFactory
from .test_hardening import edge_with_bus

KEY, SECRET = "devkey", "a-secret-long-enough-for-hs256-32b!"


def viewer_token(
    room: str,
    *,
    secret: str = SECRET,
    ttl_s: int = 60,
    role: str = "viewer",
    key: str = KEY,
    name: str = "Ada",
) -> str:
    return mint_viewer_token(
        api_key=key,
        api_secret=secret,
        room=room,
        identity=f"viewer_{'a' * 16}_{uuid.uuid4().hex[:8]}",
        name=name,
        avatar="fox",
        role=role,  # type: ignore[arg-type]
        ttl=datetime.timedelta(seconds=ttl_s),
    )


def test_a_remembered_token_is_still_checked_for_expiry_and_room() -> None:
    now = [datetime.datetime.now(tz=datetime.UTC).timestamp()]
    tokens = ViewerTokens(KEY, SECRET, cache_size=8, clock=lambda: now[0])
    token = viewer_token("main", ttl_s=60)

    first = tokens.verify(token, room="main")
    assert tokens.verify(token, room="main") == first
    assert tokens.cache_info().hits == 1  # the second time, no signature check

    with pytest.raises(ViewerAuthError, match="not for this room"):
        tokens.verify(token, room="other")
    now[0] += 60 + 6  # past its expiry and the 5 s leeway
    with pytest.raises(ViewerAuthError, match="expired"):
        tokens.verify(token, room="main")


def test_a_bad_token_is_never_remembered() -> None:
    tokens = ViewerTokens(KEY, SECRET, cache_size=8)
    forged = viewer_token("main", secret="another-secret-also-32-bytes-long!!")
    for _ in range(2):
        with pytest.raises(ViewerAuthError, match="token rejected"):
            tokens.verify(forged, room="main")
    expired = viewer_token("main", ttl_s=1)
    with pytest.raises(ViewerAuthError):  # signed now, checked as if much later
        ViewerTokens(
            KEY, SECRET, cache_size=8, clock=lambda: datetime.datetime.now().timestamp() + 60
        ).verify(expired, room="main")
    assert tokens.cache_info().currsize == 0


def test_a_stage_token_is_remembered_as_a_stage_token() -> None:
    tokens = ViewerTokens(KEY, SECRET, cache_size=8)
    stage = viewer_token("main", role="stage")
    assert tokens.verify(stage, room="main").role == "stage"
    assert tokens.verify(stage, room="main").role == "stage"


async def test_two_workers_serve_one_port_and_share_the_chat_limit(
    nats_server, redis_server, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    env = backend_env(
        nats_server,
        redis_server,
        livekit_server,
        LIVEKIT_ROOM="room-" + uuid.uuid4().hex[:10],
        TOKEN_PORT=str(port),
        TOKEN_WORKERS="2",
        TOKEN_RATE_CHAT="3/minute",
        LIVESTAGE_LOG_LEVEL="WARNING",
    )
    edge = await asyncio.to_thread(
        start_service_until, "token_service", env, "Application startup complete"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        lines: list[str] = edge.lines  # type: ignore[attr-defined]
        await until(
            lambda: sum("Application startup complete" in line for line in lines) >= 2,
            within=90,
            what="both workers started",
        )
        assert len(children(edge.pid)) >= 2  # the supervisor's two workers
        await asyncio.to_thread(wait_http_ok, f"{url}/readyz", edge)
        async with httpx.AsyncClient(base_url=url, timeout=30) as visitor:
            token = (
                await visitor.post(
                    "/api/livekit-token", json={"displayName": "Ada", "avatar": "fox"}
                )
            ).json()["token"]
        codes = []
        for n in range(4):
            # a new connection each time: the workers take turns as the kernel hands them out
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                response = await client.post(
                    "/api/chat",
                    json={"body": f"hello {n}"},
                    headers={"Authorization": f"Bearer {token}"},
                )
                codes.append(response.status_code)
        assert codes == [202, 202, 202, 429], codes  # one limit in Redis, whichever worker
    finally:
        output = await asyncio.to_thread(end_service, edge)
        assert "Traceback" not in output, output[-3000:]


@pytest.mark.parametrize(
    "body",
    [
        "hello",
        "ｆｕｌｌｗｉｄｔｈ ① ﬁ",  # NFKC folds these
        "a\u200bb\u202ec  d\te",  # zero-width, bidi, repeated and odd whitespace
        "e\u0301\u0301\u0301\u0301\u0301 ok",  # combining marks beyond the cap
        "🎉 " + "x" * 400,
    ],
)
def test_a_chat_line_built_from_the_author_s_remembered_line_is_what_validating_gives(
    body: str,
) -> None:
    cleaned = ChatRequest(body=body).body  # as the POST's body arrives at send_chat
    kept = chat_message("room-1", "viewer_x:1", "Ada Lovelace", "fox", "a" * 32, cleaned)
    checked = ChatMessage(
        id="a" * 32,
        room="room-1",
        author_identity="viewer_x:1",
        author_name="Ada Lovelace",
        avatar="fox",
        body=cleaned,
        kind="viewer",
        created_at=kept.created_at,
    )
    assert kept == checked
    assert kept.to_json() == checked.to_json()
    assert ChatMessage.from_json(kept.to_json()) == kept  # what every reader of it gets


def test_an_author_no_chat_line_can_carry_is_refused_on_every_post() -> None:
    # a name cut to its 32 characters can end in a space: no ChatMessage carries it
    name = clean_text("a" * 31 + " bc")[:MAX_NAME_CHARS]
    for _ in range(2):  # never remembered
        with pytest.raises(ValidationError):
            chat_message("room-1", "viewer_x:1", name, "fox", "b" * 32, "hi")


async def test_a_token_whose_cut_name_ends_in_a_space_still_chats(make_edge: EdgeFactory) -> None:
    # minted elsewhere (not by this edge, which cuts names itself): 31 letters, a space, more
    edge = await edge_with_bus(make_edge)
    long_name = "a" * 31 + " bc"
    tokens = ViewerTokens(
        edge.livekit.api_key, edge.livekit.api_secret.get_secret_value(), cache_size=0
    )
    token = viewer_token(
        edge.room,
        key=edge.livekit.api_key,
        secret=edge.livekit.api_secret.get_secret_value(),
        name=long_name,
    )
    assert tokens.verify(token, room=edge.room).name == "a" * 31  # the cut, without the space
    for n in range(2):  # the first verifies the token, the second uses the remembered one
        sent = await edge.client.post(
            "/api/chat", json={"body": f"hi {n}"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert sent.status_code == 202, sent.text
