"""`livestage.service.run` as a real process: a clean stop on SIGTERM, and a service whose
shutdown never returns is ended by the stop watchdog with status 1 and a log of where it hung."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVICE = textwrap.dedent(
    """
    import asyncio, sys
    from livestage import service

    async def main(stop: asyncio.Event) -> None:
        print("up", flush=True)
        await stop.wait()
        if sys.argv[1] == "stuck":
            await asyncio.Event().wait()  # a cleanup step that never returns

    service.run("stop-test", main)
    """
)


def run_and_stop(mode: str, timeout_s: str = "1.5") -> tuple[int, str, float]:
    env = dict(os.environ, LIVESTAGE_STOP_TIMEOUT_S=timeout_s, LIVESTAGE_HEALTH_PORT="0")
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE, mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=ROOT,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "up"
    process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    try:
        output, _ = process.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError("the service ignored SIGTERM and its watchdog") from None
    return process.returncode, output, time.monotonic() - sent


def test_a_service_that_shuts_down_exits_0() -> None:
    code, output, _ = run_and_stop("clean")
    assert code == 0, output
    assert "did not stop" not in output


def test_a_service_stuck_in_its_shutdown_is_ended_by_the_watchdog_and_says_where() -> None:
    code, output, took = run_and_stop("stuck")
    assert code == 1, output
    assert "stop-test did not stop within 1.5 s (LIVESTAGE_STOP_TIMEOUT_S)" in output
    assert "<string>:" in output  # the stuck task's frame, in the service's own code
    assert took >= 1.5
