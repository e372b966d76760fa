"""Running our own services as real processes (`python -m <package>`) in tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.infra import free_ports

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    (port,), _ = free_ports(tcp=1)
    return port


def start_service(package: str, env: dict[str, str]) -> subprocess.Popen[str]:
    """Start `python -m package` from the repo root with `env` added; output is piped."""
    return subprocess.Popen(
        [sys.executable, "-m", package],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def start_stage_producer(
    nats: Any, asset_dir: Path, **extra: str
) -> tuple[subprocess.Popen[str], int]:
    """`python -m stage_producer` against `nats`, its assets in `asset_dir`, its asset server on a
    free port; `extra` adds `STAGE_*` settings. Returns the process and the port."""
    port = free_port()
    env = {"NATS_URL": nats.url, "STAGE_HTTP_PORT": str(port), "STAGE_ASSET_DIR": str(asset_dir)}
    return start_service("stage_producer", {**env, **extra}), port


def stop_service(process: subprocess.Popen[str], timeout: float = 15) -> str:
    """SIGTERM, wait, and return everything the process printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=timeout)
    return output


def edge_env(port: int, nats: Any, redis: Any, livekit: Any, **extra: str) -> dict[str, str]:
    """Environment for `python -m token_service` against the test servers."""
    return {
        "TOKEN_PORT": str(port),
        "NATS_URL": nats.url,
        "REDIS_URL": redis.url,
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
        **extra,
    }


def wait_http_ok(url: str, process: subprocess.Popen[str], within: float = 30) -> None:
    """Poll `url` until it answers 200; fail with the process output if it dies or times out."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"service exited early:\n{stop_service(process)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not answer 200 within {within} s:\n{stop_service(process)}")


def start_service_until(
    package: str, env: dict[str, str], ready_line: str, within: float = 30
) -> subprocess.Popen[str]:
    """`start_service`, then wait until it prints a line containing `ready_line`.

    The rest of its output keeps being read in the background (so the pipe never fills) and is
    kept on `process.lines` for a failing test to show.
    """
    import threading

    process = start_service(package, env)
    assert process.stdout is not None
    lines: list[str] = []
    process.lines = lines  # type: ignore[attr-defined]
    ready = threading.Event()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if ready_line in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + within
    while not ready.wait(0.05):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait(5)
            raise RuntimeError(
                f"{package} did not print {ready_line!r} within {within} s:\n" + "".join(lines)
            )
    return process


def end_service(process: subprocess.Popen[str], timeout: float = 15) -> str:
    """SIGTERM a `start_service_until` process, wait, and return everything it printed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)
    return "".join(getattr(process, "lines", []))
