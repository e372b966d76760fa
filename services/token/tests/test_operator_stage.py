"""Operator stage routes: the secret guards them, bodies are checked field by field, and each
accepted call is one StageCommand on `stage.command.<room>` in JetStream. A capture URL the stage
producer would refuse from the URL alone (STAGE_BLOCKED_DOMAINS, a private address literal, a
port, credentials) is a 422 on `url` with the reason, and nothing is published."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeVar

import nats
import pytest

from livestage import subjects
from livestage.schemas import ShowConfig, StageCommand, StageLayoutEvent, now_ms
from livestage.settings import StageDomainSettings
from tests.support.livekit_helpers import joined, mint_token, wait_for_event

SECRET = "operator-secret-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}

ROUTES = [
    ("/api/operator/stage/capture", {"url": "https://example.org/"}),
    ("/api/operator/stage/backdrop", {"prompt": "Volcanoes"}),
    ("/api/operator/stage/pin", {"visualId": "abc123"}),
    ("/api/operator/stage/unpin", {}),
]


M = TypeVar("M", StageCommand, StageLayoutEvent)


def a_show(room: str) -> ShowConfig:
    return ShowConfig(room=room, title=room, created_at=now_ms(), updated_at=now_ms())


async def collected(nc: Any, subject: str, model: type[M]) -> asyncio.Queue[M]:
    """Every `model` published on `subject` from now on, in order."""
    queue: asyncio.Queue[M] = asyncio.Queue()

    async def on(msg: Any) -> None:
        queue.put_nowait(model.from_json(msg.data))

    await nc.subscribe(subject, cb=on)
    await nc.flush()
    return queue


@pytest.mark.parametrize(("path", "body"), ROUTES)
async def test_stage_routes_refuse_a_missing_or_wrong_secret(
    make_edge, path: str, body: dict[str, Any]
) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    for headers in ({}, {"Authorization": f"Bearer {SECRET}x"}, {"Authorization": SECRET}):
        response = await edge.client.post(path, json=body, headers=headers)
        assert response.status_code == 401, response.text
        assert SECRET not in response.text
    unconfigured = await make_edge()
    response = await unconfigured.client.post(path, json=body, headers=AUTH)
    assert response.status_code == 503


async def test_each_route_publishes_one_stage_command(make_edge, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    await edge.services.shows.create(a_show("other-room"))
    nc = await nats.connect(nats_server.url)
    got: asyncio.Queue[StageCommand] = asyncio.Queue()

    async def on(msg: Any) -> None:
        got.put_nowait(StageCommand.from_json(msg.data))

    await nc.subscribe(subjects.stage_command(edge.room), cb=on)
    await nc.subscribe(subjects.stage_command("other-room"), cb=on)
    await nc.flush()
    try:
        calls = [
            ("capture", {"url": "https://example.org/a?b=1", "kind": "clip"}),
            ("backdrop", {"prompt": "  Volcanoes\u200b at   night "}),
            ("pin", {"visualId": "v-123", "room": "other-room"}),
            ("unpin", {}),
        ]
        for action, body in calls:
            response = await edge.client.post(
                f"/api/operator/stage/{action}", json=body, headers=AUTH
            )
            assert response.status_code == 202, response.text
            accepted = response.json()
            async with asyncio.timeout(5):
                command = await got.get()
            assert command.id == accepted["id"] and command.action == action == accepted["action"]
            assert command.room == body.get("room", edge.room) == accepted["room"]
            if action == "capture":
                assert (command.url, command.kind) == ("https://example.org/a?b=1", "clip")
            if action == "backdrop":
                assert command.prompt == "Volcanoes at night"
            if action == "pin":
                assert command.visual_id == "v-123"
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("capture", {"url": "file:///etc/passwd"}, "url"),
        ("capture", {"url": "javascript:alert(1)"}, "url"),
        ("capture", {"url": "https://example.org/", "kind": "gif"}, "kind"),
        ("backdrop", {"prompt": "\u200b  "}, "prompt"),
        ("pin", {"visualId": "../x"}, "visualId"),
        ("unpin", {"room": "a.b"}, "room"),
        ("unpin", {"extra": 1}, "extra"),
    ],
)
async def test_bad_bodies_are_422_naming_the_field(
    make_edge, path: str, body: dict[str, Any], field: str
) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.post(f"/api/operator/stage/{path}", json=body, headers=AUTH)
    assert response.status_code == 422
    assert any(field in item["loc"] for item in response.json()["detail"]), response.json()
    assert "passwd" not in response.text and "alert" not in response.text


# --- capture URLs the stage producer would refuse are refused here, with the reason -----------

BLOCKED = StageDomainSettings(blocked_domains=["example.org"], allowed_domains=["example.net"])

REFUSED_CAPTURES = [
    # (url, words the reason must carry)
    ("https://example.org/", ["example.org", "STAGE_BLOCKED_DOMAINS"]),
    ("https://news.a.EXAMPLE.org./page", ["news.a.example.org", "STAGE_BLOCKED_DOMAINS"]),
    ("https://*.example.org/", ["not a valid DNS name"]),
    ("http://10.0.0.1/", ["10.0.0.1", "private"]),
    ("http://192.168.1.20:80/admin", ["192.168.1.20", "private"]),
    ("http://169.254.169.254/latest/meta-data/", ["link-local"]),
    ("http://[::ffff:169.254.169.254]/", ["169.254.169.254", "link-local"]),
    ("http://2130706433/", ["127.0.0.1", "loopback"]),
    ("http://0x7f.1/", ["127.0.0.1", "loopback"]),
    ("http://[::1]/", ["loopback"]),
    ("http://localhost/", ["loopback"]),
    ("http://printer.localhost/", ["loopback"]),
    ("https://example.net:8443/", ["port 8443", "STAGE_ALLOWED_PORTS"]),
    ("https://ops:hunter2@example.net/", ["credentials"]),
]


@pytest.mark.parametrize(("url", "words"), REFUSED_CAPTURES)
async def test_a_capture_the_stage_would_refuse_is_422_with_the_reason(
    make_edge, url: str, words: list[str]
) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, stage_domains=BLOCKED)
    response = await edge.client.post(
        "/api/operator/stage/capture", json={"url": url}, headers=AUTH
    )
    assert response.status_code == 422, response.text
    (item,) = response.json()["detail"]
    assert item["loc"] == ["body", "url"]
    assert item["msg"].startswith("the stage will not capture this URL: ")
    for word in words:
        assert word in item["msg"], item
    assert "hunter2" not in response.text


async def test_refused_captures_publish_nothing_and_allowed_ones_reach_the_bus(
    make_edge, nats_server
) -> None:  # type: ignore[no-untyped-def]
    """Lookalikes of a blocked domain pass, the allowlist does not bind an operator, and the
    edge never resolves a name (an unresolvable one is the producer's to refuse)."""
    edge = await make_edge(operator_secret=SECRET, stage_domains=BLOCKED)
    await edge.wait_for_bus()
    nc = await nats.connect(nats_server.url)
    got: asyncio.Queue[StageCommand] = asyncio.Queue()

    async def on(msg: Any) -> None:
        got.put_nowait(StageCommand.from_json(msg.data))

    await nc.subscribe(subjects.stage_command(edge.room), cb=on)
    await nc.flush()
    allowed = [
        "https://badexample.org/",  # not under example.org
        "https://example.org.evil.test/x",  # neither
        "https://off-the-allowlist.example.com/",  # an operator's capture may leave the allowlist
        "https://no-such-host.invalid/",  # never resolved here
        "https://b\u00fccher.example/",  # internationalised: checked in its ASCII form
        "http://93.184.215.14/",  # a public address literal
    ]
    try:
        for url in allowed:
            for refused, _ in REFUSED_CAPTURES[:3]:  # a refused call first: nothing is published
                response = await edge.client.post(
                    "/api/operator/stage/capture", json={"url": refused}, headers=AUTH
                )
                assert response.status_code == 422, response.text
            response = await edge.client.post(
                "/api/operator/stage/capture", json={"url": url}, headers=AUTH
            )
            assert response.status_code == 202, response.text
            async with asyncio.timeout(5):
                command = await got.get()
            # the next command on the bus is this one: none of the refused calls got there
            assert (command.id, command.action, command.url) == (
                response.json()["id"],
                "capture",
                url,
            )
    finally:
        await nc.close()


async def test_the_test_loopback_switch_lets_127_0_0_1_through_as_in_the_producer(
    make_edge,
) -> None:  # type: ignore[no-untyped-def]
    loose = StageDomainSettings(unsafe_allow_loopback_for_tests=True)
    edge = await make_edge(operator_secret=SECRET, stage_domains=loose)
    await edge.wait_for_bus()
    for url, status_code in [("http://127.0.0.1:8123/page.html", 202), ("http://10.0.0.1/", 422)]:
        response = await edge.client.post(
            "/api/operator/stage/capture", json={"url": url}, headers=AUTH
        )
        assert response.status_code == status_code, (url, response.text)


async def test_layout_route_stores_publishes_and_tells_the_room(  # type: ignore[no-untyped-def]
    make_edge, nats_server, livekit_server
) -> None:
    """The layout is kept for late joiners (config), published on `stage.layout.<room>` and
    sent to the room's pages on the stage topic; an unknown layout is a 422 and changes nothing."""
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    unauthorised = await edge.client.post("/api/operator/stage/layout", json={"layout": "side"})
    assert unauthorised.status_code == 401
    nc = await nats.connect(nats_server.url)
    published = await collected(nc, subjects.stage_layout(edge.room), StageLayoutEvent)
    token = mint_token(livekit_server, "viewer_layout_0011aabb", edge.room, can_publish=False)
    try:
        async with joined(livekit_server, token) as room:
            heard = asyncio.ensure_future(
                wait_for_event(
                    room, "data_received", lambda packet: packet.topic == "anam-stage-visual"
                )
            )
            response = await edge.client.post(
                "/api/operator/stage/layout", json={"layout": "side"}, headers=AUTH
            )
            assert response.status_code == 200, response.text
            assert response.json() == {"room": edge.room, "layout": "side"}
            (packet,) = await heard
            sent = StageLayoutEvent.from_json(packet.data)
            assert (sent.type, sent.room, sent.layout) == ("layout", edge.room, "side")
            async with asyncio.timeout(5):
                event = await published.get()
            assert event.id == sent.id and event.layout == "side"

        config = (await edge.client.get("/api/config")).json()
        assert config["layout"] == "side"

        refused = await edge.client.post(
            "/api/operator/stage/layout", json={"layout": "upside-down"}, headers=AUTH
        )
        assert refused.status_code == 422, refused.text
        assert "layout" in refused.text
        assert (await edge.client.get("/api/config")).json()["layout"] == "side"
        # a show nobody is in (LiveKit has no such room): stored, published, nobody to tell
        # (before the gateway asked first, livekit-server let this run into its timeout: 503)
        await edge.services.shows.create(a_show("empty-room"))
        response = await edge.client.post(
            "/api/operator/stage/layout",
            json={"layout": "host-only", "room": "empty-room"},
            headers=AUTH,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"room": "empty-room", "layout": "host-only"}
        assert (await edge.services.shows.get("empty-room")).layout == "host-only"
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("path", "body"), [*ROUTES, ("/api/operator/stage/layout", {"layout": "side"})]
)
async def test_a_room_no_show_has_is_404_and_nothing_is_published(  # type: ignore[no-untyped-def]
    make_edge, nats_server, path: str, body: dict[str, Any]
) -> None:
    """Like the `?show=` routes: a stage command for a show that does not exist is refused."""
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    room = f"no-such-show-{path.rsplit('/', 1)[-1]}-{uuid.uuid4().hex[:8]}"
    nc = await nats.connect(nats_server.url)
    commands = await collected(nc, subjects.stage_command(room), StageCommand)
    layouts = await collected(nc, subjects.stage_layout(room), StageLayoutEvent)
    try:
        response = await edge.client.post(path, json={**body, "room": room}, headers=AUTH)
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == f"no show named {room!r}"
        assert not await edge.services.shows.exists(room)
        await nc.flush()
        assert commands.empty() and layouts.empty()
        # the same call for a show that exists goes through
        await edge.services.shows.create(a_show(room))
        accepted = await edge.client.post(path, json={**body, "room": room}, headers=AUTH)
        assert accepted.status_code in (200, 202), accepted.text
        assert accepted.json()["room"] == room
    finally:
        await nc.close()
