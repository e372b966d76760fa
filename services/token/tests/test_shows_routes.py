"""`/api/operator/shows`: create, list, get, change, end, start and delete shows against real
NATS and Redis; every change is a `ShowConfigEvent` on `room.config.<room>`."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import ShowConfigEvent, ShowEvent
from livestage.settings import NatsSettings
from livestage.shows import ShowStore
from tests.support.waiting import Changed

from .conftest import Edge, EdgeFactory
from .test_hardening import edge_with_bus

SECRET = "operator-secret-for-shows-tests-0123"
AUTH = {"Authorization": f"Bearer {SECRET}"}


def new_room() -> str:
    return "show-" + uuid.uuid4().hex[:10]


def show_body(room: str, **fields: Any) -> dict[str, Any]:
    return {"room": room, "title": "Quiz night", **fields}


async def shows_edge(make_edge: EdgeFactory) -> Edge:
    return await edge_with_bus(make_edge, operator_secret=SECRET)


async def test_a_show_is_created_listed_changed_and_deleted_with_its_events(
    make_edge: EdgeFactory,
    nats_server,  # type: ignore[no-untyped-def]
) -> None:
    edge = await shows_edge(make_edge)
    room = new_room()
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "shows-routes-test")
    configs: list[ShowConfigEvent] = []
    shows: list[ShowEvent] = []
    changed = Changed()

    async def on_config(observed: Observed[ShowConfigEvent]) -> None:
        configs.append(observed.model)
        changed.notify()

    async def on_show(observed: Observed[ShowEvent]) -> None:
        shows.append(observed.model)
        changed.notify()

    since = time.time()
    watches = [
        await bus.watch(subjects.room_config(room), ShowConfigEvent, on_config, start=since),
        await bus.watch(subjects.room_show(room), ShowEvent, on_show, start=since),
    ]
    try:
        body = show_body(
            room,
            persona="sage",
            voice="local",
            stage={"topics": ["Mars", "Tides"], "search": "sources"},
            moderation={"blockedWords": ["spoiler"], "roomRate": 120},
            dailyCapUsd=2.5,
            layout="side",
        )
        created = await edge.client.post("/api/operator/shows", json=body, headers=AUTH)
        assert created.status_code == 201, created.text
        info = created.json()
        assert (info["state"], info["layout"], info["reason"]) == ("live", "side", "")
        config = info["config"]
        assert config["room"] == room and config["persona"] == "sage"
        assert config["stage"] == {
            "topics": ["Mars", "Tides"],
            "search": "sources",
            "backdrops": None,
        }
        assert config["moderation"] == {"blockedWords": ["spoiler"], "roomRate": 120}
        assert config["createdAt"] == config["updatedAt"] > 0
        assert (await edge.client.get(f"/api/operator/shows/{room}", headers=AUTH)).json() == info

        listed = (await edge.client.get("/api/operator/shows", headers=AUTH)).json()["shows"]
        rooms = [show["config"]["room"] for show in listed]
        assert rooms[0] == edge.room and room in rooms  # the default show first, always there

        patched = await edge.client.patch(
            f"/api/operator/shows/{room}",
            json={"title": "Quiz night II", "voice": None, "moderation": {"roomRate": 30}},
            headers=AUTH,
        )
        assert patched.status_code == 200, patched.text
        after = patched.json()["config"]
        assert after["title"] == "Quiz night II" and after["voice"] is None
        # objects merge: the words stay, the rate changes; untouched fields stay
        assert after["moderation"] == {"blockedWords": ["spoiler"], "roomRate": 30}
        assert after["stage"] == config["stage"] and after["persona"] == "sage"
        assert after["createdAt"] == config["createdAt"] <= after["updatedAt"]
        stored = await ShowStore(edge.services.redis).config(room)
        assert stored is not None and stored.title == "Quiz night II"

        deleted = await edge.client.delete(f"/api/operator/shows/{room}", headers=AUTH)
        assert deleted.status_code == 204, deleted.text
        gone = await edge.client.get(f"/api/operator/shows/{room}", headers=AUTH)
        assert gone.status_code == 404 and room in gone.json()["detail"]
        assert await ShowStore(edge.services.redis).config(room) is None

        await changed.until(lambda: len(configs) >= 3 and shows, what="the show's events")
        assert [e.config.title if e.config else None for e in configs] == [
            "Quiz night",
            "Quiz night II",
            None,  # deleted
        ]
        assert all(e.room == room for e in configs)
        assert configs[0].config is not None and configs[0].config.moderation.blocked_words == [
            "spoiler"
        ]
        # deleting ends the show first, with the reason that says why
        assert (shows[0].state, shows[0].reason) == ("ended", "deleted")
    finally:
        for watch in watches:
            await watch.stop()
        await bus.close()


@pytest.mark.parametrize(
    ("fields", "loc"),
    [
        ({"room": "no spaces"}, ["body", "room"]),
        ({"room": "a.b"}, ["body", "room"]),
        ({"voice": "telepathy"}, ["body", "voice"]),
        ({"avatar": "hologram"}, ["body", "avatar"]),
        ({"stage": {"search": "altavista"}}, ["body", "stage", "search"]),
        ({"title": "x" * 121}, ["body", "title"]),
        (
            {"moderation": {"blockedWords": [f"w{i}" for i in range(201)]}},
            ["body", "moderation", "blockedWords"],
        ),
        ({"persona": "../etc/passwd"}, ["body", "persona"]),
        ({"dailyCapUsd": -1}, ["body", "dailyCapUsd"]),
        ({"createdAt": 1_800_000_000_000}, ["body", "createdAt"]),
        ({"layout": "upside-down"}, ["body", "layout"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
async def test_bad_show_input_is_422_naming_the_field(
    make_edge: EdgeFactory, fields: dict[str, Any], loc: list[str]
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    room = new_room()
    response = await edge.client.post(
        "/api/operator/shows", json=show_body(room) | fields, headers=AUTH
    )
    assert response.status_code == 422, response.text
    assert loc in [item["loc"] for item in response.json()["detail"]], response.text
    assert all("input" not in item for item in response.json()["detail"])  # nothing echoed
    assert await ShowStore(edge.services.redis).config(room) is None


@pytest.mark.parametrize(
    ("patch", "loc"),
    [
        ({"title": "x" * 121}, ["body", "title"]),
        ({"voice": "telepathy"}, ["body", "voice"]),
        ({"moderation": {"blockedWords": ["w"] * 201}}, ["body", "moderation", "blockedWords"]),
        ({"room": "another-room"}, ["body", "room"]),
        ({"updatedAt": 1_800_000_000_000}, ["body", "updatedAt"]),
        ({"stage": None}, ["body", "stage"]),
    ],
)
async def test_a_bad_change_is_422_and_changes_nothing(
    make_edge: EdgeFactory, patch: dict[str, Any], loc: list[str]
) -> None:
    edge = await shows_edge(make_edge)
    room = new_room()
    created = await edge.client.post("/api/operator/shows", json=show_body(room), headers=AUTH)
    assert created.status_code == 201, created.text
    response = await edge.client.patch(f"/api/operator/shows/{room}", json=patch, headers=AUTH)
    assert response.status_code == 422, response.text
    assert loc in [item["loc"] for item in response.json()["detail"]], response.text
    assert (await edge.client.get(f"/api/operator/shows/{room}", headers=AUTH)).json() == (
        created.json()
    )


async def test_unknown_shows_are_404_and_conflicts_409(make_edge: EdgeFactory) -> None:
    edge = await shows_edge(make_edge)
    room, unknown = new_room(), new_room()
    for method, path in [
        ("GET", f"/api/operator/shows/{unknown}"),
        ("PATCH", f"/api/operator/shows/{unknown}"),
        ("DELETE", f"/api/operator/shows/{unknown}"),
        ("POST", f"/api/operator/shows/{unknown}/end"),
        ("POST", f"/api/operator/shows/{unknown}/start"),
        ("GET", f"/api/operator/show?show={unknown}"),
        ("POST", f"/api/operator/host/pause?show={unknown}"),
        ("GET", f"/api/operator/bans?show={unknown}"),
        ("GET", f"/api/operator/chat/messages?show={unknown}"),
    ]:
        kwargs: dict[str, Any] = {"json": {"title": "x"}} if method == "PATCH" else {}
        response = await edge.client.request(method, path, headers=AUTH, **kwargs)
        assert response.status_code == 404, (method, path, response.text)
        assert unknown in response.json()["detail"]
    bad = await edge.client.get("/api/operator/shows/a.b", headers=AUTH)
    assert bad.status_code in (404, 422)  # never reaches Redis as a show name

    first = await edge.client.post("/api/operator/shows", json=show_body(room), headers=AUTH)
    assert first.status_code == 201, first.text
    again = await edge.client.post(
        "/api/operator/shows", json=show_body(room, title="Another"), headers=AUTH
    )
    assert again.status_code == 409 and "exists already" in again.json()["detail"]
    assert (await ShowStore(edge.services.redis).config(room)).title == "Quiz night"  # type: ignore[union-attr]

    kept = await edge.client.delete(f"/api/operator/shows/{edge.room}", headers=AUTH)
    assert kept.status_code == 409 and "default show" in kept.json()["detail"]
    assert await edge.services.shows.exists(edge.room)
    assert not (await ShowStore(edge.services.redis).get(edge.room)).ended


async def test_the_show_routes_need_the_operator(make_edge: EdgeFactory) -> None:
    edge = await make_edge(operator_secret=SECRET)
    room = new_room()
    for method, path in [
        ("POST", "/api/operator/shows"),
        ("GET", "/api/operator/shows"),
        ("PATCH", f"/api/operator/shows/{room}"),
        ("DELETE", f"/api/operator/shows/{room}"),
    ]:
        response = await edge.client.request(method, path, json=show_body(room))
        assert response.status_code == 401, (method, path)
    assert await ShowStore(edge.services.redis).config(room) is None


async def test_ending_one_show_leaves_the_default_live_and_start_brings_it_back(
    make_edge: EdgeFactory,
) -> None:
    edge = await shows_edge(make_edge)
    room = new_room()
    created = await edge.client.post("/api/operator/shows", json=show_body(room), headers=AUTH)
    assert created.status_code == 201, created.text

    ended = await edge.client.post(
        f"/api/operator/shows/{room}/end", json={"reason": "Back tomorrow"}, headers=AUTH
    )
    assert ended.status_code == 200, ended.text
    assert (ended.json()["state"], ended.json()["reason"]) == ("ended", "Back tomorrow")
    assert (await edge.client.get(f"/api/config?show={room}")).json()["showState"] == "ended"
    assert (await edge.client.get("/api/config")).json()["showState"] == "live"
    # the old single-show route sees the same through `show`
    old = await edge.client.get(f"/api/operator/show?show={room}", headers=AUTH)
    assert old.json()["state"] == "ended"
    assert (await edge.client.get("/api/operator/show", headers=AUTH)).json()["state"] == "live"

    started = await edge.client.post(f"/api/operator/shows/{room}/start", headers=AUTH)
    assert started.status_code == 200 and started.json()["state"] == "live"
    assert (await edge.client.get(f"/api/config?show={room}")).json()["showState"] == "live"
