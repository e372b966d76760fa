"""Schemathesis drives the running edge from its own OpenAPI spec: whatever it sends, the edge
never answers 5xx (the backends are all up), and every answer matches the documented status
codes, content types and schemas. Bounded: a fixed number of examples per operation."""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import nats
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from livestage import subjects
from livestage.schemas import HistoryReply, HistoryRequest
from tests.support.services import (
    ServiceOutput,
    edge_env,
    free_port,
    start_service,
    stop_service,
    wait_http_ok,
)
from token_service.settings import EdgeSettings

ROOM = "fuzz-room"
OPERATOR_SECRET = "fuzz-operator-secret-0123456789"
# Every rate limit of the edge (a new one too), so high that the fuzzer never sees a 429.
GENEROUS_RATE_LIMITS = {
    f"{EdgeSettings.model_config['env_prefix']}{name.upper()}": "100000/minute"
    for name in EdgeSettings.model_fields
    if name.startswith("rate_")
}
STREAMS = {"GET /api/operator/events"}
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def history_responder(nats_server) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Answers `history.recent.fuzz-room` as chat-history will (an empty history)."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def serve() -> nats.aio.client.Client:
        nc = await nats.connect(nats_server.url)

        async def answer(msg: nats.aio.msg.Msg) -> None:
            HistoryRequest.from_json(msg.data)
            await msg.respond(HistoryReply(messages=[]).to_json())

        await nc.subscribe(subjects.history_recent(ROOM), cb=answer)
        await nc.flush()
        return nc

    nc = asyncio.run_coroutine_threadsafe(serve(), loop).result(timeout=10)
    yield
    asyncio.run_coroutine_threadsafe(nc.close(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


class _StageAssets(BaseHTTPRequestHandler):
    """Stands in for the stage producer's asset server: no fuzzed signature is valid."""

    def _refuse(self) -> None:
        body = b"forbidden: bad signature\n"
        self.send_response(403)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_HEAD = _refuse  # noqa: N815 - http.server's names

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def stage_assets() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _StageAssets)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def edge_process(
    history_responder: None, stage_assets: str, nats_server, redis_server, livekit_server
) -> Iterator[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """A real edge process with generous limits (so the fuzzer reaches the handlers)."""
    port = free_port()
    env = edge_env(
        port,
        nats_server,
        redis_server,
        livekit_server,
        **GENEROUS_RATE_LIMITS,
        TOKEN_HISTORY_TIMEOUT_S="0.2",
        LIVEKIT_ROOM=ROOM,
        LIVESTAGE_OPERATOR_SECRET=OPERATOR_SECRET,
        TOKEN_STAGE_MEDIA_URL=stage_assets,
    )
    process: subprocess.Popen[str] = start_service("token_service", env)
    # read its output as it comes: a full pipe (uvicorn logs every request) would stall the edge
    ServiceOutput(process)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(base + "/readyz", process)
        request = urllib.request.Request(
            base + "/api/livekit-token",
            data=json.dumps({"displayName": "Fuzz", "avatar": "fox"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            token = json.loads(response.read())["token"]
        yield base, token
    finally:
        stop_service(process)


def test_the_edge_honours_its_openapi_spec(edge_process: tuple[str, str]) -> None:
    base, token = edge_process
    schema = schemathesis.openapi.from_url(base + "/openapi.json")
    # A Server-Sent Events stream never ends, so no answer to validate: test_console_events.py
    # covers it.
    operations = [
        operation
        for operation in (result.ok() for result in schema.get_all_operations())
        if operation.label not in STREAMS
    ]
    assert len(operations) >= 7

    calls: dict[str, int] = {}

    def bearer_for(path: str) -> str:
        """Operator routes take the operator secret, everything else the viewer token."""
        return OPERATOR_SECRET if path.startswith("/api/operator") else token

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
        def honours_spec(case) -> None:  # type: ignore[no-untyped-def]
            calls[case.operation.label] = calls.get(case.operation.label, 0) + 1
            case.call_and_validate(
                base_url=base,
                headers={"Authorization": f"Bearer {bearer_for(case.operation.path)}"},
                checks=CHECKS,
            )

        honours_spec()
    # the operations that take input were really exercised, not just touched once
    for label in ("POST /api/livekit-token", "POST /api/chat", "POST /api/livekit/webhook"):
        assert calls[label] >= 10, calls
