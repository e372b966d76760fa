"""The README's commands from a plain shell: `env -i`, the default PATH, no venv, nothing exported.

`make run` runs in a network namespace of its own (`unshare --net`, only loopback inside), so its
fixed ports (4222, 6379, 7880, 8080) can never meet a developer's running stack or another test,
and nothing it starts can reach beyond this machine. Readiness is probed from inside that
namespace with `nsenter`. Its data goes to a temporary VAR_DIR.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
PLAIN_SHELL = ["env", "-i", f"HOME={os.environ['HOME']}", "LANG=C.UTF-8", f"PATH={DEFAULT_PATH}"]
PROBE = (
    "import sys, urllib.request\n"
    "try:\n"
    "    status = urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2).status\n"
    "except Exception:\n"
    "    status = 0\n"
    "sys.exit(0 if status == 200 else 1)\n"
)


def _net_namespace(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def _processes_in_namespace(inode: int) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "ns" / "net").stat().st_ino == inode:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def test_bootstrap_finds_its_tools_from_a_plain_shell() -> None:
    result = subprocess.run(
        [*PLAIN_SHELL, "make", "-C", str(ROOT), "bootstrap"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bootstrap done" in result.stdout


def test_make_run_from_a_plain_shell_gets_ready_and_stops_cleanly_on_sigint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log_path = tmp_path / "make-run.log"
    command = [
        "unshare", "--net", "--",
        "bash", "-c", 'ip link set lo up && exec "$@"', "make-run",
        *PLAIN_SHELL, "make", "-C", str(ROOT), "run", f"VAR_DIR={tmp_path / 'var'}",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        # Its own session, so SIGINT can go to the whole foreground group, as Ctrl-C does.
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    inode = 0
    own = _net_namespace(os.getpid())
    try:
        deadline = time.monotonic() + 120
        ready = False
        while time.monotonic() < deadline and process.poll() is None:
            inode = _net_namespace(process.pid)
            if inode == own:  # unshare has not switched namespaces yet
                time.sleep(0.05)
                continue
            probe = subprocess.run(
                ["nsenter", "-t", str(process.pid), "-n", sys.executable, "-c", PROBE],
                capture_output=True,
                timeout=10,
            )
            # The edge answers, and the stack's own readiness line says every service is up.
            if probe.returncode == 0 and "Livestage is ready" in log_path.read_text():
                ready = True
                break
            time.sleep(0.5)
        assert ready, f"/readyz never answered 200:\n{log_path.read_text()[-4000:]}"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
            raise AssertionError(
                f"make run ignored SIGINT:\n{log_path.read_text()[-4000:]}"
            ) from None
    output = log_path.read_text()
    assert "SIGINT received" in output, output[-4000:]
    assert "sending SIGKILL" not in output, f"a process had to be killed:\n{output[-4000:]}"
    started = set(re.findall(r"system\s+\| (\S+) started", output))
    stopped = set(re.findall(r"system\s+\| (\S+) stopped", output))
    assert started and started == stopped, (started, stopped)
    # every piece of the run's data went to VAR_DIR, the stage's assets too
    for folder in ("nats", "redis", "stage-assets"):
        assert (tmp_path / "var" / folder).is_dir(), folder
    assert f"assets={tmp_path / 'var' / 'stage-assets'}" in output
    assert inode and inode != own
    assert _processes_in_namespace(inode) == []
