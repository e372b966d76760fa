"""Every service starts with `python -m <package>` on real NATS and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IDLE_SERVICES = ["moderation", "chat_history", "stage_producer", "host_agent"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start(package: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", package],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=15)
    return output


@pytest.mark.parametrize("package", IDLE_SERVICES)
def test_idle_service_connects_declares_streams_and_stops(package: str, nats_server) -> None:  # type: ignore[no-untyped-def]
    process = start(package, {"NATS_URL": nats_server.url})
    try:
        deadline = time.monotonic() + 20
        lines: list[str] = []
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            lines.append(line)
            if "connected to NATS" in line or process.poll() is not None:
                break
        assert any("connected to NATS" in line for line in lines), "".join(lines)
    finally:
        output = stop(process)
    assert process.returncode == 0, output


def test_a_service_started_before_nats_says_so_and_connects_when_it_comes(fresh_nats) -> None:  # type: ignore[no-untyped-def]
    """Under a Procfile runner services and NATS start together: nobody may give up early."""
    nats = fresh_nats()
    nats.stop()
    process = start("moderation", {"NATS_URL": nats.url})
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert f"NATS at {nats.url}" in first and "retrying" in first, first
        nats.restart()
        deadline = time.monotonic() + 20
        lines = [first]
        while time.monotonic() < deadline and "connected to NATS" not in lines[-1]:
            lines.append(process.stdout.readline())
        assert "connected to NATS" in lines[-1], "".join(lines)
    finally:
        output = stop(process)
    assert process.returncode == 0, output


def test_edge_serves_health_and_stops(nats_server, redis_server, livekit_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = start(
        "token_service",
        {
            "TOKEN_PORT": str(port),
            "NATS_URL": nats_server.url,
            "REDIS_URL": redis_server.url,
            "LIVEKIT_URL": livekit_server.url,
            "LIVEKIT_API_KEY": livekit_server.api_key,
            "LIVEKIT_API_SECRET": livekit_server.api_secret,
        },
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                    status = r.status
            except OSError:
                time.sleep(0.2)
        assert status == 200
    finally:
        output = stop(process)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
