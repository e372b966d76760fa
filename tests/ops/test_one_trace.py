"""One chat message is one trace: from the edge's `POST /api/chat` through moderation and
chat-history to the LiveKit send. The three services run as real processes on the session's NATS,
Redis and LiveKit and export over OTLP to a local collector double; the test follows the trace
id of the edge's server span."""

from __future__ import annotations

import json
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support import otlp
from tests.support.otlp import Received, Span
from tests.support.services import edge_env, free_port, start_service, stop_service, wait_http_ok

SERVICES = {"moderation": "moderation", "chat-history": "chat_history"}


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


def post(url: str, body: dict[str, Any], token: str = "") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())


def trace_of_chat_post(received: Received) -> str | None:
    for span in received.spans:
        if span.service == "token" and span.kind == 2 and span.name == "POST /api/chat":
            return span.trace_id
    return None


def test_one_chat_message_is_one_trace_across_edge_moderation_and_chat_history(  # type: ignore[no-untyped-def]
    collector, nats_server, redis_server, livekit_server
) -> None:
    room = f"trace{uuid.uuid4().hex[:10]}"
    common = {
        **otlp.fast_export_env(collector.url),
        "LIVEKIT_ROOM": room,
    }
    port = free_port()
    backends = edge_env(port, nats_server, redis_server, livekit_server)
    backends.pop("TOKEN_PORT")
    processes: dict[str, subprocess.Popen[str]] = {}
    try:
        for name, package in SERVICES.items():
            health = free_port()
            processes[name] = start_service(
                package,
                backends | common | {"LIVESTAGE_HEALTH_PORT": str(health)},
            )
            processes[name].health_url = f"http://127.0.0.1:{health}/readyz"  # type: ignore[attr-defined]
        processes["token"] = start_service(
            "token_service", edge_env(port, nats_server, redis_server, livekit_server) | common
        )
        for process in processes.values():
            url = getattr(process, "health_url", f"http://127.0.0.1:{port}/readyz")
            wait_http_ok(url, process)

        base = f"http://127.0.0.1:{port}"
        _, issued = post(f"{base}/api/livekit-token", {"displayName": "Ann", "avatar": "fox"})
        status, accepted = post(f"{base}/api/chat", {"body": "hello, one trace"}, issued["token"])
        assert status == 202

        trace_id = collector.wait_for(trace_of_chat_post, 20, "the edge's POST /api/chat span")

        def whole_trace(received: Received) -> list[Span] | None:
            spans = [s for s in received.spans if s.trace_id == trace_id]
            services = {s.service for s in spans}
            sent = any(
                s.service == "chat-history" and s.name == "livekit RoomService/SendData"
                for s in spans
            )
            return spans if {"token", "moderation", "chat-history"} <= services and sent else None

        spans = collector.wait_for(whole_trace, 30, f"trace {trace_id} in all three services")
    finally:
        outputs = {name: stop_service(process) for name, process in processes.items()}
    for name, process in processes.items():
        # uvicorn (the edge) shuts down gracefully, then re-raises the SIGTERM it caught
        assert process.returncode in (0, -signal.SIGTERM), outputs[name]

    # Stopping flushed every service's exporter: read the trace again, since a parent span ends
    # (and is exported) after its children, so the snapshot above may lack a parent.
    spans = [s for s in collector.received.spans if s.trace_id == trace_id]
    # One tree: a single root (the edge's server span), every other span's parent in the trace.
    ids = {s.span_id for s in spans}
    orphans = [
        (s.service, s.name) for s in spans if s.parent_span_id and s.parent_span_id not in ids
    ]
    assert orphans == []
    roots = [s for s in spans if not s.parent_span_id]
    assert [(r.service, r.name) for r in roots] == [("token", "POST /api/chat")]
    assert all(s.parent_span_id in ids for s in spans if s.parent_span_id)
    # The message travelled over NATS with the context: consumer spans in each worker.
    by_service = {service: [s for s in spans if s.service == service] for service in SERVICES}
    for service, service_spans in by_service.items():
        assert any(s.kind == 5 for s in service_spans), (service, service_spans)  # CONSUMER
    # The edge's publish carried the message id the workers saw.
    published = [s for s in spans if s.service == "token" and s.kind == 4]  # PRODUCER
    assert any(accepted["id"] in str(s.attributes.get("messaging.message.id")) for s in published)
