"""`livestage.service.run` serves /healthz and /readyz when LIVESTAGE_HEALTH_PORT is set (the
container images and the Helm chart probe them); readiness follows the NATS connection; the
`python -m livestage.health URL` probe client exits 0 only on a 200."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

from tests.support.services import free_port, stop_service

WORKER = """
from livestage import service

async def main(stop):
    bus = await service.connect_bus("health-probe", stop)
    if bus is not None:
        await stop.wait()
        await bus.close()

service.run("health-probe", main)
"""


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def wait_status(url: str, status: int, within: float = 20) -> dict[str, object]:
    deadline = time.monotonic() + within
    last: object = None
    while time.monotonic() < deadline:
        try:
            code, body = get(url)
            if code == status:
                return body
            last = (code, body)
        except OSError as error:
            last = error
        time.sleep(0.1)
    raise AssertionError(f"{url} never answered {status}; last {last!r}")


def health_client(url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "livestage.health", url], capture_output=True, text=True, timeout=20
    )


def test_worker_health_follows_nats_and_the_probe_client_agrees(fresh_nats) -> None:  # type: ignore[no-untyped-def]
    nats = fresh_nats()
    nats.stop()
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", WORKER],
        env={
            "PATH": "/usr/bin:/bin",
            "NATS_URL": nats.url,
            "LIVESTAGE_HEALTH_PORT": str(port),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_status(f"{base}/healthz", 200)
        body = wait_status(f"{base}/readyz", 503)
        assert body["failing"] == ["nats"]
        failed = health_client(f"{base}/readyz")
        assert failed.returncode == 1 and "503" in failed.stderr

        nats.restart()
        assert wait_status(f"{base}/readyz", 200)["failing"] == []
        assert health_client(f"{base}/readyz").returncode == 0
        assert get(f"{base}/nope")[0] == 404
    finally:
        output = stop_service(process)
    assert process.returncode == 0, output
    refused = health_client(f"{base}/healthz")  # nothing listens any more
    assert refused.returncode == 1 and "unhealthy" in refused.stderr
