"""`python -m host_agent start` as production runs it, as a test's subprocess.

host = HostAgentProcess(env)      # LIVEKIT_*, NATS_URL, HOST_* settings
await host.registered()           # LiveKit registered the worker
host.kill_group()                 # SIGKILL it and its job processes, as in a crash
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest

from tests.support.services import ServiceOutput, start_service

GREETING_HOST = {
    "HOST_AVATAR": "none",
    "HOST_VOICE": "local",
    "HOST_HEALTH_PORT": "0",
    "HOST_IDLE_PROCESSES": "1",
    "HOST_GREET": "true",
    "HOST_VIEWER_WAIT_S": "20",
}


class HostAgentProcess:
    """`python -m host_agent start` in its own process group (so a crash can take it all)."""

    def __init__(self, env: dict[str, str]) -> None:
        # `start` is host_agent's default command
        self.process = start_service("host_agent", env, new_session=True)
        self._output = ServiceOutput(self.process)
        self.lines = self._output.lines

    def output(self) -> str:
        return "".join(line for line in self.lines if "ignoring byte stream" not in line)

    async def registered(self, within: float = 60) -> None:
        """Wait until the worker registered with LiveKit (a dispatch made before that waits)."""
        deadline = time.monotonic() + within
        while not any("registered worker" in line for line in self.lines):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the host-agent worker did not register:\n" + self.output()[-4000:])
            await asyncio.sleep(0.1)

    def kill_group(self) -> str:
        """SIGKILL the process and its job processes, as in a crash; returns what it printed."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)
        self._output.finish(5)
        return self.output()
