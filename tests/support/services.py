"""Running our own services as real processes (`python -m <package>`) in tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from tests.support.infra import free_ports

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    (port,), _ = free_ports(tcp=1)
    return port


def start_service(
    package: str, env: dict[str, str], *, new_session: bool = False
) -> subprocess.Popen[str]:
    """Start `python -m package` from the repo root with `env` added; output is piped.

    `new_session`: in a process group of its own, so that `os.killpg(process.pid, SIGKILL)`
    takes its children too (the host's job processes, the stage's Chromium), as a crash would."""
    return subprocess.Popen(
        [sys.executable, "-m", package],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
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


def livekit_env(livekit: Any) -> dict[str, str]:
    """The test livekit-server's URL and keys as every service (and agent worker) reads them."""
    return {
        "LIVEKIT_URL": livekit.url,
        "LIVEKIT_API_KEY": livekit.api_key,
        "LIVEKIT_API_SECRET": livekit.api_secret,
    }


def edge_env(port: int, nats: Any, redis: Any, livekit: Any, **extra: str) -> dict[str, str]:
    """Environment for `python -m token_service` against the test servers."""
    return {
        "TOKEN_PORT": str(port),
        "NATS_URL": nats.url,
        "REDIS_URL": redis.url,
        **livekit_env(livekit),
        **extra,
    }


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` as JSON and return the JSON answer (an HTTPError for anything but 2xx)."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.loads(response.read())
        return result


def wait_http_ok(url: str, process: subprocess.Popen[str], within: float = 90) -> None:
    """Poll `url` until it answers 200; fail with the process output if it dies or times out.

    The bound is generous: on a loaded 2-core CI machine a service's start (its imports
    included) has taken over 30 s; a healthy start returns as soon as it answers."""
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


class ServiceOutput:
    """Reads a process's output lines in a thread (a full pipe would stall the process), so a
    test can wait for a line and show everything the process printed when it fails."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, text: str, within_s: float = 30.0) -> str:
        """The first line containing `text`; AssertionError with the output if none comes
        within `within_s` or the process ends without it."""
        deadline = time.monotonic() + within_s
        with self._changed:
            while True:
                for line in self.lines:
                    if text in line:
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._thread.is_alive()):
                    raise AssertionError(f"no line with {text!r} within {within_s} s:\n{self.text}")
                self._changed.wait(min(left, 0.5))

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def finish(self, timeout_s: float = 15.0) -> str:
        self._thread.join(timeout_s)
        return self.text


def start_service_until(
    package: str,
    env: dict[str, str],
    ready_line: str,
    within: float = 90,
    *,
    new_session: bool = False,
) -> subprocess.Popen[str]:
    """`start_service`, then wait until it prints a line containing `ready_line` (the bound is
    generous for a loaded machine, as in `wait_http_ok`).

    The rest of its output keeps being read in the background (so the pipe never fills) and is
    kept on `process.lines` for a failing test to show; `process.output.wait_for(text)` waits
    for a later line. `new_session`: as in `start_service` (SIGKILL it with its children).
    """
    process = start_service(package, env, new_session=new_session)
    output = ServiceOutput(process)
    process.lines = output.lines  # type: ignore[attr-defined]
    process.output = output  # type: ignore[attr-defined]  # to wait for later lines
    try:
        output.wait_for(ready_line, within)
    except AssertionError:
        process.kill()
        process.wait(5)
        raise RuntimeError(
            f"{package} did not print {ready_line!r} within {within} s:\n" + output.text
        ) from None
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
