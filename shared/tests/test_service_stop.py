"""`livestage.service.run` as a real process: a clean stop on SIGTERM, and a service whose
shutdown never returns is ended by the stop watchdog with status 1 and a log of where it hung;
a service that drains (`run(..., drain_s=...)`) gets its drain on top of the stop timeout."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from livestage import service

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
        if sys.argv[1] == "draining":
            await asyncio.sleep(2.5)  # work in flight finishing, longer than the stop timeout

    service.run("stop-test", main, drain_s=float(sys.argv[2]))
    """
)


def run_and_stop(mode: str, timeout_s: str = "1.5", drain_s: float = 0) -> tuple[int, str, float]:
    env = dict(os.environ, LIVESTAGE_STOP_TIMEOUT_S=timeout_s, LIVESTAGE_HEALTH_PORT="0")
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    process = subprocess.Popen(
        [sys.executable, "-c", SERVICE, mode, str(drain_s)],
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


def test_the_stop_budget_is_the_drain_then_the_stop_timeout() -> None:
    assert service.stop_budget_s(4.0) == 4.0
    assert service.stop_budget_s(4.0, drain_s=20) == 24.0
    assert service.stop_budget_s(4.0, drain_s=-1) == 4.0


def test_a_draining_service_may_take_its_drain_and_exits_0() -> None:
    code, output, took = run_and_stop("draining", drain_s=3)
    assert code == 0, output
    assert "did not stop" not in output
    assert took >= 2.5  # beyond the 1.5 s stop timeout alone, which would have exited 1


def test_a_draining_service_stuck_past_its_drain_is_ended_and_says_its_budget() -> None:
    code, output, took = run_and_stop("stuck", drain_s=1)
    assert code == 1, output
    assert "stop-test did not stop within 2.5 s (its 1.0 s drain + LIVESTAGE_STOP_TIMEOUT_S)" in (
        output
    )
    assert took >= 2.5
