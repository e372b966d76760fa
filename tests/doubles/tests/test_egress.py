"""The Egress API double against the real `livekit-api` `EgressService` (Twirp, protobuf), and
its webhooks against the real `WebhookReceiver`: a start goes starting -> active, a stop ending
-> complete, a planned failure ends failed with its error, each change is one signed webhook in
order, and the server's refusals arrive as `TwirpError`s with LiveKit's codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from livekit import api
from livekit.protocol import egress as proto

from tests.doubles.base import Fault
from tests.doubles.egress import EgressDouble
from tests.support.services import free_port

KEY, SECRET = "egress-test-key", "egress-test-secret-0123456789abcdef"


def web_request(key: str = "live-key-123") -> api.WebEgressRequest:
    return api.WebEgressRequest(
        url="http://127.0.0.1:8080/stage?captions=1",
        stream_outputs=[
            api.StreamOutput(
                protocol=api.StreamProtocol.RTMP, urls=[f"rtmp://127.0.0.1:1935/live/{key}"]
            )
        ],
    )


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[str, list[api.WebhookEvent]]]:
    """A webhook endpoint that verifies like the edge does and keeps what it accepted."""
    got: list[api.WebhookEvent] = []
    verify = api.WebhookReceiver(api.TokenVerifier(KEY, SECRET))

    async def hook(request: web.Request) -> web.Response:
        body = (await request.read()).decode()
        try:
            got.append(verify.receive(body, request.headers.get("Authorization", "")))
        except Exception:  # noqa: BLE001 - a bad signature is a 401, as the edge answers
            return web.Response(status=401)
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}/hook", got
    await runner.cleanup()


async def test_start_activate_list_stop_complete_with_signed_webhooks(receiver) -> None:  # type: ignore[no-untyped-def]
    url, got = receiver
    async with EgressDouble(api_key=KEY, api_secret=SECRET, webhook_url=url) as egress:
        async with api.LiveKitAPI(egress.url, KEY, SECRET) as lk:
            info = await lk.egress.start_web_egress(web_request())
            assert info.status == proto.EgressStatus.EGRESS_STARTING
            assert info.room_name == "" and info.egress_id.startswith("EG_")
            request = egress.requests_to("/twirp/livekit.Egress/StartWebEgress")[0]
            assert request.headers["Content-Type"] == "application/protobuf"

            await egress.wait_for_status(info.egress_id, proto.EgressStatus.EGRESS_ACTIVE)
            listed = await lk.egress.list_egress(api.ListEgressRequest(active=True))
            assert [i.egress_id for i in listed.items] == [info.egress_id]
            assert listed.items[0].started_at > 0
            none = await lk.egress.list_egress(api.ListEgressRequest(room_name="some-room"))
            assert list(none.items) == []

            stopped = await lk.egress.stop_egress(api.StopEgressRequest(egress_id=info.egress_id))
            assert stopped.status == proto.EgressStatus.EGRESS_ENDING
            await egress.wait_for_webhook("egress_ended", info.egress_id)
            with pytest.raises(api.TwirpError) as again:
                await lk.egress.stop_egress(api.StopEgressRequest(egress_id=info.egress_id))
            assert (again.value.code, again.value.status) == ("failed_precondition", 412)
            with pytest.raises(api.TwirpError) as unknown:
                await lk.egress.stop_egress(api.StopEgressRequest(egress_id="EG_nope"))
            assert unknown.value.code == "not_found"

    assert [d.status for d in egress.webhooks] == [204] * 4
    assert [(e.event, e.egress_info.status) for e in got] == [
        ("egress_started", proto.EgressStatus.EGRESS_STARTING),
        ("egress_updated", proto.EgressStatus.EGRESS_ACTIVE),
        ("egress_updated", proto.EgressStatus.EGRESS_ENDING),
        ("egress_ended", proto.EgressStatus.EGRESS_COMPLETE),
    ]


async def test_a_planned_failure_ends_failed_with_its_error(receiver) -> None:  # type: ignore[no-untyped-def]
    url, got = receiver
    async with EgressDouble(api_key=KEY, api_secret=SECRET, webhook_url=url) as egress:
        egress.fail_next_start("rtmp: ingest refused the stream key")
        async with api.LiveKitAPI(egress.url, KEY, SECRET) as lk:
            info = await lk.egress.start_web_egress(web_request())
            assert info.status == proto.EgressStatus.EGRESS_STARTING
            ended = await egress.wait_for_webhook("egress_ended", info.egress_id)
            assert ended.status == 204
            failed = egress.info(info.egress_id)
            assert failed.status == proto.EgressStatus.EGRESS_FAILED
            assert failed.error == "rtmp: ingest refused the stream key"
            # only the next start fails
            second = await lk.egress.start_web_egress(web_request())
            await egress.wait_for_status(second.egress_id, proto.EgressStatus.EGRESS_ACTIVE)
    first = [
        (e.event, e.egress_info.status) for e in got if e.egress_info.egress_id == info.egress_id
    ]
    assert first == [
        ("egress_started", proto.EgressStatus.EGRESS_STARTING),
        ("egress_ended", proto.EgressStatus.EGRESS_FAILED),
    ]
    assert got[1].egress_info.error == "rtmp: ingest refused the stream key"


async def test_refusals_are_twirp_errors_with_livekits_codes() -> None:
    async with EgressDouble(api_key=KEY, api_secret=SECRET) as egress:
        async with api.LiveKitAPI(
            egress.url, KEY, "wrong-secret-0123456789abcdef-0123456789"
        ) as forged:
            with pytest.raises(api.TwirpError) as denied:
                await forged.egress.list_egress(api.ListEgressRequest())
            assert (denied.value.status, denied.value.code) == (401, "unauthenticated")
        async with api.LiveKitAPI(egress.url, KEY, SECRET) as lk:
            egress.refuse_no_worker()
            with pytest.raises(api.TwirpError) as no_worker:
                await lk.egress.start_web_egress(web_request())
            assert (no_worker.value.status, no_worker.value.message) == (
                503,
                "no response from servers",
            )
            egress.refuse_no_worker(False)
            egress.fail(Fault.HTTP_500, times=1)
            with pytest.raises(api.TwirpError) as internal:
                await lk.egress.list_egress(api.ListEgressRequest())
            assert internal.value.code == "internal"
            assert not egress.egresses
            info = await lk.egress.start_web_egress(web_request())
            assert info.egress_id in egress.egresses
