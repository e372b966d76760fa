"""Every service starts with `python -m <package>` on real NATS and stops cleanly on SIGTERM."""

from __future__ import annotations

import signal
import time

import pytest

from tests.support.services import edge_env, free_port, start_service, stop_service, wait_http_ok

IDLE_SERVICES = ["moderation", "chat_history", "stage_producer", "host_agent", "chat_bridge"]


@pytest.mark.parametrize("package", IDLE_SERVICES)
def test_idle_service_connects_declares_streams_and_stops(
    package: str, nats_server, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    # The stage producer also serves assets: a free port and a folder of its own.
    stage = {"STAGE_HTTP_PORT": str(free_port()), "STAGE_ASSET_DIR": str(tmp_path)}
    # The host agent's worker, stopped this soon after its start, first waits for the job
    # process it is prewarming to finish starting (its imports: seconds on a loaded machine);
    # its stop watchdog allows its drain (HOST_DRAIN_TIMEOUT_S) on top of the stop timeout.
    process = start_service(package, {"NATS_URL": nats_server.url, **stage})
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
        output = stop_service(process, timeout=30)
    assert process.returncode == 0, output


def test_a_service_started_before_nats_says_so_and_connects_when_it_comes(fresh_nats) -> None:  # type: ignore[no-untyped-def]
    """Under a Procfile runner services and NATS start together: nobody may give up early."""
    nats = fresh_nats()
    nats.stop()
    process = start_service("moderation", {"NATS_URL": nats.url})
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
        output = stop_service(process)
    assert process.returncode == 0, output


def test_edge_serves_health_and_stops(nats_server, redis_server, livekit_server) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    process = start_service(
        "token_service", edge_env(port, nats_server, redis_server, livekit_server)
    )
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/readyz", process)
    finally:
        output = stop_service(process)
    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught
    assert process.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output


def test_a_service_still_waiting_for_nats_stops_at_once_on_sigterm(fresh_nats) -> None:  # type: ignore[no-untyped-def]
    """Ctrl-C under `make run` must stop a service whose NATS never came (or went first)."""
    nats = fresh_nats()
    nats.stop()
    process = start_service("moderation", {"NATS_URL": nats.url})
    try:
        assert process.stdout is not None
        assert "retrying" in process.stdout.readline()
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        assert time.monotonic() - started < 5
    finally:
        output = stop_service(process)
    assert process.returncode == 0, output
