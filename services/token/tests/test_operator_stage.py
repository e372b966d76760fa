"""Operator stage routes: the secret guards them, bodies are checked field by field, and each
accepted call is one StageCommand on `stage.command.<room>` in JetStream."""

from __future__ import annotations

import asyncio
from typing import Any

import nats
import pytest

from livestage import subjects
from livestage.schemas import StageCommand

SECRET = "operator-secret-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}

ROUTES = [
    ("/api/operator/stage/capture", {"url": "https://example.org/"}),
    ("/api/operator/stage/backdrop", {"prompt": "Volcanoes"}),
    ("/api/operator/stage/pin", {"visualId": "abc123"}),
    ("/api/operator/stage/unpin", {}),
]


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
