"""Every metric docs/metrics.md names is emitted by a real run of the pipeline: the five services
as processes on the session's NATS, Redis and LiveKit, exporting over OTLP to a local collector
double, driven as a show is: a viewer joins (a host job starts and speaks), chat is approved and
rejected, a burst is refused, an operator removes a message and skips the host, the viewer
leaves (the job ends). The metrics that never arrived are listed by area.

PENDING (not committed until it passes): paid-backend metrics need the OpenAI Realtime and Anam
doubles (tests/doubles) and the production voice/avatar backends; a job crash and a backend
fallback need a way to provoke them in a real run.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import otlp
from tests.support.livekit_helpers import join, leave
from tests.support.services import edge_env, free_port, start_service, stop_service, wait_http_ok

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {
    "moderation": "moderation",
    "chat-history": "chat_history",
    "stage-producer": "stage_producer",
    "host-agent": "host_agent",
}
OPERATOR_SECRET = "ops-test-operator-secret-0123456789"


def documented_metrics() -> dict[str, str]:
    """Metric name -> area, read from docs/metrics.md (what the docs promise)."""
    area = ""
    found: dict[str, str] = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("## "):
            area = line[3:].strip()
        match = re.match(r"^\| `(livestage\.[a-z_.]+)` \|", line)
        if match:
            found[match.group(1)] = area
    return found


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


def request(
    method: str, url: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


async def test_every_documented_metric_is_emitted_by_a_run_of_the_pipeline(  # type: ignore[no-untyped-def]
    collector, nats_server, redis_server, livekit_server
) -> None:
    documented = documented_metrics()
    assert len(documented) >= 20
    room = f"metrics{uuid.uuid4().hex[:8]}"
    port = free_port()
    env = (
        edge_env(port, nats_server, redis_server, livekit_server)
        | otlp.fast_export_env(collector.url)
        | {
            "LIVEKIT_ROOM": room,
            "LIVESTAGE_OPERATOR_SECRET": OPERATOR_SECRET,
            "TOKEN_RATE_CHAT": "3/10seconds",
            "HOST_EXECUTOR": "thread",
            "HOST_IDLE_AFTER_S": "2",
            "TOKEN_STAGE_MEDIA_URL": f"http://127.0.0.1:{free_port()}",
        }
    )
    env["STAGE_HTTP_PORT"] = env["TOKEN_STAGE_MEDIA_URL"].rsplit(":", 1)[1]
    processes: dict[str, subprocess.Popen[str]] = {}
    health: dict[str, str] = {}
    try:
        for name, package in WORKERS.items():
            health_port = free_port()
            health[name] = f"http://127.0.0.1:{health_port}/readyz"
            worker_env = dict(env, LIVESTAGE_HEALTH_PORT=str(health_port))
            worker_env.pop("TOKEN_PORT")
            processes[name] = start_service(package, worker_env)
        processes["token"] = start_service("token_service", env)
        health["token"] = f"http://127.0.0.1:{port}/readyz"
        for name, process in processes.items():
            await asyncio.to_thread(wait_http_ok, health[name], process, 90)

        base = f"http://127.0.0.1:{port}"
        _, viewer = request(
            "POST", f"{base}/api/livekit-token", {"displayName": "Ann", "avatar": "fox"}
        )
        browser = await join(livekit_server, viewer["token"])  # the host job starts for a viewer
        try:
            status, approved = request(
                "POST", f"{base}/api/chat", {"body": "hi host, what is on screen?"}, viewer["token"]
            )
            assert status == 202
            status, _ = request(
                "POST", f"{base}/api/chat", {"body": "you are a stupid idiot"}, viewer["token"]
            )
            assert status == 202
            refused = [
                request("POST", f"{base}/api/chat", {"body": f"burst {n}"}, viewer["token"])[0]
                for n in range(4)
            ]
            assert 429 in refused
            operator = f"{base}/api/operator"
            status, _ = request(
                "DELETE", f"{operator}/chat/messages/{approved['id']}", token=OPERATOR_SECRET
            )
            assert status == 202, status
            await asyncio.sleep(8)  # the host answers, idles, talks about the screen
            request("POST", f"{operator}/host/skip", token=OPERATOR_SECRET)
            await asyncio.sleep(3)
        finally:
            await leave(browser)

        def all_metrics(received: otlp.Received) -> bool:
            return set(documented) <= {p.metric for p in received.points}

        try:
            await asyncio.to_thread(collector.wait_for, all_metrics, 60, "every documented metric")
        except TimeoutError:
            pass
    finally:
        outputs = {name: stop_service(process) for name, process in processes.items()}
    emitted = {p.metric for p in collector.received.points}
    missing: dict[str, list[str]] = {}
    for name, area in documented.items():
        if name not in emitted:
            missing.setdefault(area, []).append(name)
    assert not missing, f"documented but never emitted, by area: {missing}"
    for name, process in processes.items():
        assert process.returncode in (0, -signal.SIGTERM), outputs[name]
