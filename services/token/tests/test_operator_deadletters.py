"""Operator dead-letter routes on a real edge and NATS: the secret guards them, arguments are
checked (422), unknown ids are 404, a listing filters by consumer and room and shows the payload
as JSON data, a delete discards, a replay republishes once for its consumer.
(The whole path under a Redis outage is in tests/e2e/test_dead_letters.py.)"""

from __future__ import annotations

import json
import uuid

import nats
import pytest

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage
from livestage.settings import NatsSettings

SECRET = "operator-secret-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
HOSTILE = '<script>alert("x")</script>'


async def file_invalid(nats_url: str, room: str, durable: str, count: int) -> list[int]:
    """`count` invalid payloads on chat.submitted.<room>, dead-lettered by consumer `durable`;
    returns their dead-letter ids (newest first)."""
    raw = await nats.connect(nats_url)
    for n in range(count):
        await raw.jetstream().publish(
            subjects.chat_submitted(room), json.dumps({"body": str(n), "x": HOSTILE}).encode()
        )
    await raw.close()
    bus = await Bus.connect(NatsSettings(url=nats_url), "dead-letter-route-test")
    try:
        consumer = await bus.consumer(
            subjects.chat_submitted(room), ChatMessage, durable, max_deliver=2, backoff_s=(1.0,)
        )
        assert await consumer.fetch(batch=10, timeout_s=1.5) == []
        await consumer.unsubscribe()
        return [s.seq for s in await bus.dead_letters.list(consumer=durable, room=room)]
    finally:
        await bus.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/operator/deadletters"),
        ("GET", "/api/operator/deadletters/1"),
        ("POST", "/api/operator/deadletters/1/replay"),
        ("DELETE", "/api/operator/deadletters/1"),
    ],
)
async def test_routes_need_the_operator_secret(make_edge, method: str, path: str) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    for headers in ({}, {"Authorization": f"Bearer {SECRET}x"}):
        response = await edge.client.request(method, path, headers=headers)
        assert response.status_code == 401, response.text
    unconfigured = await make_edge()
    assert (await unconfigured.client.request(method, path, headers=AUTH)).status_code == 503


async def test_list_show_delete_and_replay(make_edge, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    room, other_room = "r" + uuid.uuid4().hex[:10], "r" + uuid.uuid4().hex[:10]
    durable = "d-" + uuid.uuid4().hex[:10]
    ids = await file_invalid(nats_server.url, room, durable, 3)
    await file_invalid(nats_server.url, other_room, durable, 1)
    assert len(ids) == 3

    listed = await edge.client.get(
        "/api/operator/deadletters", params={"consumer": durable, "room": room}, headers=AUTH
    )
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    items = listed.json()["deadLetters"]
    assert [item["id"] for item in items] == ids == sorted(ids, reverse=True)
    assert {item["room"] for item in items} == {room}
    assert items[0]["reason"] == "invalid" and items[0]["consumer"] == durable
    assert items[0]["payload"] == {"body": "2", "x": HOSTILE}  # data, not markup
    assert items[0]["subject"] == subjects.chat_submitted(room)
    limited = await edge.client.get(
        "/api/operator/deadletters", params={"consumer": durable, "limit": 2}, headers=AUTH
    )
    assert len(limited.json()["deadLetters"]) == 2  # the newest two, of both rooms

    shown = await edge.client.get(f"/api/operator/deadletters/{ids[1]}", headers=AUTH)
    assert shown.status_code == 200 and shown.json()["payload"]["body"] == "1"

    deleted = await edge.client.delete(f"/api/operator/deadletters/{ids[1]}", headers=AUTH)
    assert deleted.status_code == 204
    for method, path in (
        ("GET", f"/api/operator/deadletters/{ids[1]}"),
        ("DELETE", f"/api/operator/deadletters/{ids[1]}"),
        ("POST", f"/api/operator/deadletters/{ids[1]}/replay"),
    ):
        gone = await edge.client.request(method, path, headers=AUTH)
        assert gone.status_code == 404 and "no dead letter" in gone.json()["detail"]
    for far in (2**32, 2**63 - 1):  # the largest id the route takes is a clean 404 too
        for method, path in (
            ("GET", f"/api/operator/deadletters/{far}"),
            ("DELETE", f"/api/operator/deadletters/{far}"),
        ):
            gone = await edge.client.request(method, path, headers=AUTH)
            assert gone.status_code == 404, (method, far, gone.text)

    # A replay stores the payload again on its subject, addressed to its consumer.
    nc = await nats.connect(nats_server.url)
    try:
        sub = await nc.subscribe(subjects.chat_submitted(room))
        replayed = await edge.client.post(
            f"/api/operator/deadletters/{ids[0]}/replay", headers=AUTH
        )
        assert replayed.status_code == 202, replayed.text
        body = replayed.json()
        assert body["consumer"] == durable and body["subject"] == subjects.chat_submitted(room)
        msg = await sub.next_msg(timeout=5)
        assert json.loads(msg.data) == items[0]["payload"] and msg.headers is not None
        assert msg.headers["Livestage-Replay-For"] == durable
        assert msg.headers["Nats-Msg-Id"].startswith(f"replay:{ids[0]}:")
    finally:
        await nc.close()
    left = await edge.client.get(
        "/api/operator/deadletters", params={"consumer": durable, "room": room}, headers=AUTH
    )
    assert [item["id"] for item in left.json()["deadLetters"]] == [ids[2]]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/api/operator/deadletters", {"consumer": "a.b"}, "consumer"),
        ("/api/operator/deadletters", {"room": "x*"}, "room"),
        ("/api/operator/deadletters", {"limit": "0"}, "limit"),
        ("/api/operator/deadletters", {"limit": "501"}, "limit"),
        ("/api/operator/deadletters/0", {}, "dead_letter_id"),
        ("/api/operator/deadletters/abc", {}, "dead_letter_id"),
        ("/api/operator/deadletters/9223372036854775808", {}, "dead_letter_id"),
    ],
)
async def test_bad_arguments_are_422_naming_the_field(  # type: ignore[no-untyped-def]
    make_edge, path: str, params: dict[str, str], field: str
) -> None:
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.get(path, params=params, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [item["loc"][-1] for item in response.json()["detail"]] == [field]
