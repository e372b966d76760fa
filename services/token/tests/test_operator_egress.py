"""Going live without OBS: the operator's egress routes against the Egress API double, whose
webhooks reach the edge's real `/api/livekit/webhook` signed with the LiveKit key and secret.

Start -> the state shown (GET) -> the webhook makes it active -> stop -> complete; a failing
egress shows its error in GET and in the `EgressEvent`; the stream key is never in a response,
a log line, a NATS message or Redis, even though the double echoes the full ingest URL."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest
from livekit.protocol import egress as proto
from redis.asyncio import Redis

from livestage import subjects
from livestage.schemas import EgressEvent
from tests.doubles.base import Fault
from tests.doubles.egress import EgressConfig, EgressDouble
from tests.support.services import free_port
from tests.support.waiting import until

SECRET = "operator-secret-for-tests-0123456789"
AUTH = {"Authorization": f"Bearer {SECRET}"}
KEY = "sk-live-4f9a-b2c7-SECRETKEY"
INGEST = "rtmp://127.0.0.1:1935/live2"


@pytest.fixture
async def egress(livekit_server) -> AsyncIterator[EgressDouble]:  # type: ignore[no-untyped-def]
    double = EgressDouble(
        api_key=livekit_server.api_key,
        api_secret=livekit_server.api_secret,
        config=EgressConfig(activate_after_s=0.3, end_after_s=0.3, fail_after_s=0.3),
    )
    async with double:
        yield double


class Seen:
    """Every message on the room's egress subject (core NATS: what any subscriber hears)."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.events: asyncio.Queue[EgressEvent] = asyncio.Queue()

    async def on(self, msg: Any) -> None:
        self.raw.append(msg.data)
        self.events.put_nowait(EgressEvent.from_json(msg.data))

    async def until(self, egress_id: str, status: str) -> EgressEvent:
        async with asyncio.timeout(10):
            while True:
                event = await self.events.get()
                if event.egress_id == egress_id and event.status == status:
                    return event


async def _edge_with(make_edge, egress: EgressDouble):  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, egress_api_url=egress.url)
    egress.webhook_url = f"{edge.base_url}/api/livekit/webhook"
    await edge.wait_for_bus()
    return edge


async def _listed(edge: Any) -> list[dict[str, Any]]:
    response = await edge.client.get("/api/operator/egress", headers=AUTH)
    assert response.status_code == 200, response.text
    egresses: list[dict[str, Any]] = response.json()["egresses"]
    return egresses


async def test_start_shows_state_goes_active_by_webhook_and_stops(
    make_edge, egress, nats_server, redis_server, caplog
) -> None:  # type: ignore[no-untyped-def]
    edge = await _edge_with(make_edge, egress)
    nc = await nats.connect(nats_server.url)
    seen = Seen()
    await nc.subscribe(subjects.room_egress(edge.room), cb=seen.on)
    await nc.flush()
    answers: list[str] = []
    caplog.set_level(logging.DEBUG)
    try:
        started = await edge.client.post(
            "/api/operator/egress",
            json={"rtmpUrl": INGEST, "streamKey": KEY, "width": 1920, "height": 1080},
            headers=AUTH,
        )
        answers.append(started.text)
        assert started.status_code == 202, started.text
        body = started.json()
        egress_id = body["egressId"]
        assert (body["status"], body["target"], body["room"]) == ("starting", INGEST, edge.room)

        # what LiveKit was asked: the stage page, streamed to <ingest>/<key> at the size given
        sent = egress.info(egress_id).web
        assert sent.url == "http://127.0.0.1:8080/stage?captions=1"
        assert list(sent.stream_outputs[0].urls) == [f"{INGEST}/{KEY}"]
        assert (sent.advanced.width, sent.advanced.height) == (1920, 1080)

        assert (await seen.until(egress_id, "starting")).target == INGEST
        active = await seen.until(egress_id, "active")  # from the egress_updated webhook
        assert active.started_at > 0 and active.target == INGEST
        listed = await _listed(edge)
        answers.append(str(listed))
        assert [(e["egressId"], e["status"], e["target"]) for e in listed] == [
            (egress_id, "active", INGEST)
        ]
        # every replica's gauge follows the events (its own subscription: it may lag ours)
        tracker = edge.services.egress.tracker
        await until(lambda: (1.0, {"room": edge.room}) in tracker.observe(), 10, "gauge 1")

        again = await edge.client.post(
            "/api/operator/egress", json={"rtmpUrl": INGEST, "streamKey": KEY}, headers=AUTH
        )
        answers.append(again.text)
        assert again.status_code == 409 and egress_id in again.json()["detail"]

        stopped = await edge.client.delete(f"/api/operator/egress/{egress_id}", headers=AUTH)
        answers.append(stopped.text)
        assert stopped.status_code == 202, stopped.text
        assert stopped.json()["status"] == "ending"
        complete = await seen.until(egress_id, "complete")
        assert complete.error == ""
        await until(lambda: (0.0, {"room": edge.room}) in tracker.observe(), 10, "gauge 0")
        listed = await _listed(edge)
        assert [(e["egressId"], e["status"]) for e in listed] == [(egress_id, "complete")]

        missing = await edge.client.delete("/api/operator/egress/EG_unknown", headers=AUTH)
        assert missing.status_code == 404
    finally:
        await nc.close()

    assert [d.status for d in egress.webhooks] == [204] * len(egress.webhooks)
    assert KEY not in "".join(answers)
    assert all(KEY.encode() not in raw for raw in seen.raw)
    assert KEY not in "\n".join(r.getMessage() for r in caplog.records)
    redis = Redis.from_url(redis_server.url)
    try:
        for key in await redis.keys("livestage:egress*"):
            kind = (await redis.type(key)).decode()
            value = await (redis.hgetall(key) if kind == "hash" else redis.smembers(key))
            assert KEY.encode() not in repr(value).encode()
    finally:
        await redis.aclose()


async def test_a_failing_egress_shows_its_error(make_edge, egress, nats_server) -> None:  # type: ignore[no-untyped-def]
    edge = await _edge_with(make_edge, egress)
    nc = await nats.connect(nats_server.url)
    seen = Seen()
    await nc.subscribe(subjects.room_egress(edge.room), cb=seen.on)
    await nc.flush()
    egress.fail_next_start(f"rtmp: {INGEST}/{KEY} refused the stream (401)")
    try:
        started = await edge.client.post(
            "/api/operator/egress", json={"rtmpUrl": INGEST + "/", "streamKey": KEY}, headers=AUTH
        )
        assert started.status_code == 202, started.text
        egress_id = started.json()["egressId"]
        failed = await seen.until(egress_id, "failed")
    finally:
        await nc.close()
    await egress.wait_for_status(egress_id, proto.EgressStatus.EGRESS_FAILED)
    assert failed.target == INGEST
    # LiveKit's error quoted the full ingest URL: shown with the key masked
    assert failed.error == f"rtmp: {INGEST}/*** refused the stream (401)"
    listed = await _listed(edge)
    assert [(e["egressId"], e["status"]) for e in listed] == [(egress_id, "failed")]
    assert listed[0]["error"] == failed.error
    assert (0.0, {"room": edge.room}) in edge.services.egress.tracker.observe()
    # a failed egress is not live: the operator may start again at once
    again = await edge.client.post(
        "/api/operator/egress", json={"rtmpUrl": INGEST, "streamKey": KEY}, headers=AUTH
    )
    assert again.status_code == 202, again.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"rtmpUrl": "http://example.org/live", "streamKey": KEY}, "rtmpUrl"),
        ({"rtmpUrl": "rtmp://user:pw@example.org/live", "streamKey": KEY}, "rtmpUrl"),
        ({"rtmpUrl": "rtmp://example.org/live now", "streamKey": KEY}, "rtmpUrl"),
        ({"rtmpUrl": "rtmp://example.org/live?key=1", "streamKey": KEY}, "rtmpUrl"),
        ({"rtmpUrl": INGEST, "streamKey": ""}, "streamKey"),
        ({"rtmpUrl": INGEST, "streamKey": "a b"}, "streamKey"),
        ({"rtmpUrl": INGEST, "streamKey": "a/b"}, "streamKey"),
        ({"rtmpUrl": INGEST, "streamKey": "k" * 201}, "streamKey"),
        ({"rtmpUrl": INGEST, "streamKey": KEY, "width": 99999}, "width"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(make_edge, egress, body, field) -> None:  # type: ignore[no-untyped-def]
    edge = await _edge_with(make_edge, egress)
    response = await edge.client.post("/api/operator/egress", json=body, headers=AUTH)
    assert response.status_code == 422, response.text
    assert [item["loc"][-1] for item in response.json()["detail"]] == [field]
    assert KEY not in response.text
    if len(body["streamKey"]) > 3:  # a refused key is not echoed either
        assert body["streamKey"] not in response.text
    assert not egress.requests_to("/twirp/livekit.Egress/StartWebEgress")


async def test_livekit_refusals_and_outages(make_edge, egress, caplog) -> None:  # type: ignore[no-untyped-def]
    edge = await _edge_with(make_edge, egress)
    caplog.set_level(logging.DEBUG)
    body = {"rtmpUrl": INGEST, "streamKey": KEY}
    assert (await edge.client.post("/api/operator/egress", json=body)).status_code == 401
    assert (await edge.client.get("/api/operator/egress")).status_code == 401
    assert (await edge.client.delete("/api/operator/egress/EG_x")).status_code == 401

    egress.refuse_no_worker()  # livekit-server with no egress service
    no_worker = await edge.client.post("/api/operator/egress", json=body, headers=AUTH)
    assert no_worker.status_code == 503 and "Retry-After" in no_worker.headers
    assert "no response from servers" in no_worker.json()["detail"]
    egress.refuse_no_worker(False)

    egress.fail(Fault.HTTP_500, times=1)
    internal = await edge.client.get("/api/operator/egress", headers=AUTH)
    assert internal.status_code == 503 and "Retry-After" in internal.headers

    # LiveKit rejecting the request is a 502 with its message (the double wants rtmp URLs,
    # and here a listed, started egress is stopped twice)
    started = await edge.client.post("/api/operator/egress", json=body, headers=AUTH)
    egress_id = started.json()["egressId"]
    assert (
        await edge.client.delete(f"/api/operator/egress/{egress_id}", headers=AUTH)
    ).status_code == 202
    await egress.wait_for_status(egress_id, proto.EgressStatus.EGRESS_COMPLETE)
    twice = await edge.client.delete(f"/api/operator/egress/{egress_id}", headers=AUTH)
    assert twice.status_code == 502 and "cannot be stopped" in twice.json()["detail"]

    unreachable = await make_edge(
        operator_secret=SECRET, egress_api_url=f"http://127.0.0.1:{free_port()}"
    )
    down = await unreachable.client.post("/api/operator/egress", json=body, headers=AUTH)
    assert down.status_code == 503 and "Retry-After" in down.headers
    assert KEY not in down.text + no_worker.text + twice.text
    assert KEY not in "\n".join(r.getMessage() for r in caplog.records)


async def test_another_show_streams_its_own_stage(make_edge, egress) -> None:  # type: ignore[no-untyped-def]
    edge = await _edge_with(make_edge, egress)
    quiz = "quiz-" + egress_suffix()
    created = await edge.client.post(
        "/api/operator/shows",
        json={"room": quiz, "title": "Quiz"},
        headers={**AUTH, "X-Livestage-Operator": "1"},
    )
    assert created.status_code == 201, created.text
    show = {"show": quiz}
    started = await edge.client.post(
        "/api/operator/egress",
        params=show,
        json={"rtmpUrl": INGEST, "streamKey": KEY},
        headers=AUTH,
    )
    assert started.status_code == 202, started.text
    egress_id = started.json()["egressId"]
    assert started.json()["room"] == quiz
    # the egress opens the show's stage, not the default one
    assert egress.info(egress_id).web.url == f"http://127.0.0.1:8080/stage?captions=1&show={quiz}"

    listed = await edge.client.get("/api/operator/egress", params=show, headers=AUTH)
    assert [e["egressId"] for e in listed.json()["egresses"]] == [egress_id]
    assert await _listed(edge) == []  # the default show streams nothing
    other = await edge.client.delete(f"/api/operator/egress/{egress_id}", headers=AUTH)
    assert other.status_code == 404  # not the default show's egress
    stopped = await edge.client.delete(
        f"/api/operator/egress/{egress_id}", params=show, headers=AUTH
    )
    assert stopped.status_code == 202, stopped.text
    unknown = await edge.client.get("/api/operator/egress", params={"show": "nope"}, headers=AUTH)
    assert unknown.status_code == 404


def egress_suffix() -> str:
    return uuid.uuid4().hex[:8]
