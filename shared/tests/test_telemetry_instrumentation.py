"""What `setup_telemetry` instruments, seen at a local OTLP collector double: LiveKit server API
calls (against a real livekit-server), Redis (a real redis-server), httpx, FastAPI server spans
(probes left out), model calls with their token metric, and logs that carry trace and span ids
on stderr and in OTLP. It runs in a fresh interpreter: global providers are set once a process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.support import otlp

PROBE = """
import asyncio, logging, sys
import httpx
import redis.asyncio as aioredis
from fastapi import FastAPI
from livekit import api
from opentelemetry import trace
from livestage.bus import Bus
from livestage.schemas import HistoryReply, HistoryRequest
from livestage.settings import NatsSettings
from livestage.telemetry import (
    instrument_app, linked_span, model_call, serving_request, setup_telemetry,
)
from opentelemetry import context as otel_context

livekit_url, key, secret, redis_url, collector_url, nats_url = sys.argv[1:7]
telemetry = setup_telemetry("probe-instrumented")

app = instrument_app(FastAPI())

@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}

@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"ok": "yes"}

async def main() -> None:
    with trace.get_tracer("probe").start_as_current_span("probe-root") as root:
        context = root.get_span_context()
        print(f"ROOT {context.trace_id:032x} {context.span_id:016x}", flush=True)
        logging.getLogger("probe").warning("inside the root span")
        lk = api.LiveKitAPI(livekit_url, key, secret)
        await lk.room.list_rooms(api.ListRoomsRequest())
        try:
            await lk.room.get_participant(
                api.RoomParticipantIdentity(room="no-such-room", identity="nobody")
            )
        except api.TwirpError:
            pass
        await lk.aclose()
        client = aioredis.from_url(redis_url)
        await client.set("telemetry-probe", "1")
        await client.aclose()
        async with httpx.AsyncClient() as http:
            await http.post(collector_url + "/v1/unknown", content=b"")
        bus = await Bus.connect(NatsSettings(url=nats_url), "probe")

        async def answer(msg):
            with serving_request(msg):
                await msg.respond(HistoryReply(messages=[]).to_json())

        await bus.nc.subscribe("history.recent.probe", cb=answer)
        await bus.request("history.recent.probe", HistoryRequest(room="probe"), HistoryReply)
        await bus.close()
        with model_call("openai-realtime", "chat", model="gpt-probe") as call:
            call.tokens(input_tokens=10, output_tokens=5, modality="audio")
            call.tokens(output_tokens=2, modality="audio")
            call.spend(0.25)
        root_context = otel_context.get_current()
    # a reply to that message, later, in a trace of its own, links to it
    with linked_span("host reply", [root_context, otel_context.Context()]):
        pass
    # outside any span, as a request from another process arrives
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://t") as c:
        assert (await c.get("/hello")).status_code == 200
        assert (await c.get("/healthz")).status_code == 200

asyncio.run(main())
telemetry.shutdown()
"""


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


def test_library_calls_become_child_spans_and_logs_carry_ids(  # type: ignore[no-untyped-def]
    collector, livekit_server, redis_server, nats_server
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            PROBE,
            livekit_server.url,
            livekit_server.api_key,
            livekit_server.api_secret,
            redis_server.url,
            collector.url,
            nats_server.url,
        ],  # fmt: skip
        env=env | {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    _, trace_id, root_id = result.stdout.split()[:3]
    spans = collector.received.spans
    children = {s.name: s for s in spans if s.parent_span_id == root_id}
    assert all(s.trace_id == trace_id for s in children.values())

    listed = children["livekit RoomService/ListRooms"]
    assert listed.kind == 3  # SPAN_KIND_CLIENT
    assert listed.attributes["rpc.system"] == "livekit"
    assert listed.attributes["rpc.method"] == "ListRooms"
    assert listed.attributes["server.port"] == int(livekit_server.url.rsplit(":", 1)[1])
    assert listed.status_code != 2  # not an error
    missing = children["livekit RoomService/GetParticipant"]
    assert missing.status_code == 2  # STATUS_CODE_ERROR
    assert missing.attributes["rpc.livekit.error_code"] == "not_found"

    assert any(s.attributes.get("db.system") == "redis" for s in children.values()), children
    posted = children["POST"].attributes  # the httpx client span (old or new HTTP semconv names)
    assert posted.get("http.response.status_code", posted.get("http.status_code")) == 404

    served = children["serve history.recent.probe"]  # joined the requester's trace
    assert served.kind == 2 and served.attributes["messaging.system"] == "nats"

    model = children["chat gpt-probe"]
    assert model.attributes["gen_ai.provider.name"] == "openai-realtime"
    assert model.attributes["gen_ai.usage.input_tokens"] == 10
    assert model.attributes["gen_ai.usage.output_tokens"] == 7

    (reply,) = [s for s in spans if s.name == "host reply"]
    assert reply.trace_id != trace_id and reply.links == (trace_id,)

    # FastAPI: a server span for the route, none for the probe path.
    server_spans = [s for s in spans if s.kind == 2]  # SPAN_KIND_SERVER
    assert [(s.name, s.parent_span_id) for s in server_spans if s.name.startswith("GET")] == [
        ("GET /hello", "")
    ]

    tokens = {
        (p.attributes["direction"], p.attributes["modality"], p.attributes["backend"]): p.value
        for p in collector.received.points
        if p.metric == "livestage.model.tokens"
    }
    assert tokens == {
        ("input", "audio", "openai-realtime"): 10,
        ("output", "audio", "openai-realtime"): 7,
    }
    spend = [
        p.value
        for p in collector.received.points
        if p.metric == "livestage.model.estimated_spend_usd"
    ]
    assert spend == [0.25]

    (log,) = [r for r in collector.received.logs if r.body == "inside the root span"]
    assert (log.trace_id, log.span_id) == (trace_id, root_id)
    assert f"[trace={trace_id} span={root_id}]: inside the root span" in result.stderr
