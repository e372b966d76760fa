"""The capture browser holds no secret: with secrets in the stage producer's environment, every
Chromium process of a capture (browser, zygotes, renderer, GPU and network utilities) has an
environment without any of them; and the sandbox is on exactly when it can be."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from livestage.egress import EgressPolicy
from stage_producer.app import PAGES_DIR
from stage_producer.capture.browser import CaptureBrowser, CaptureError, CaptureOptions
from stage_producer.capture.launch import (
    SandboxUnavailable,
    browser_environment,
    looks_secret,
    sandbox_plan,
    user_namespaces_allowed,
)
from stage_producer.egress.proxy import EgressProxy
from tests.support.browser import chromium_path
from tests.support.waiting import until

from .conftest import HELD

SECRETS = {
    "LIVEKIT_API_SECRET": "lk-secret-" + uuid.uuid4().hex,
    "LIVEKIT_API_KEY": "lk-key-" + uuid.uuid4().hex,
    "OPENAI_API_KEY": "sk-" + uuid.uuid4().hex,
    "ANAM_API_KEY": "anam-" + uuid.uuid4().hex,
    "OPERATOR_TOKEN": "op-" + uuid.uuid4().hex,
    "REDIS_PASSWORD": "redis-" + uuid.uuid4().hex,
    "NATS_URL": "nats://user:pw-" + uuid.uuid4().hex + "@127.0.0.1:4222",
    "REDIS_URL": "redis://:pw-" + uuid.uuid4().hex + "@127.0.0.1:6379/0",
}


def test_the_browser_environment_is_a_short_list_and_a_home_of_its_own() -> None:
    environ = {
        **SECRETS,
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/root",
        "HTTPS_PROXY": "http://corp-proxy:3128",
        "GEMINI_API_KEY": "g",
    }
    env = browser_environment(environ, "/tmp/chromium-home")
    assert env == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "HOME": "/tmp/chromium-home",
        "XDG_CONFIG_HOME": "/tmp/chromium-home/.config",
        "XDG_CACHE_HOME": "/tmp/chromium-home/.cache",
        "XDG_DATA_HOME": "/tmp/chromium-home/.local/share",
    }
    assert browser_environment({}, "/h")["PATH"]  # Chromium still finds its helpers
    assert all(looks_secret(name) for name in ["OPENAI_API_KEY", "x_token", "Db_Password"])
    assert not any(looks_secret(name) for name in ["PATH", "LANG", "TZ", "FONTCONFIG_FILE"])


@pytest.mark.parametrize(
    ("euid", "userns", "enabled", "why"),
    [
        (10001, True, True, "is on"),
        (0, True, False, "runs as root"),
        (10001, False, False, "user namespace"),
        (0, False, False, "runs as root"),
    ],
)
def test_the_sandbox_is_on_whenever_it_can_be(
    euid: int, userns: bool, enabled: bool, why: str
) -> None:
    plan = sandbox_plan("auto", euid, userns)
    assert plan.enabled is enabled and why in plan.reason
    if enabled:
        assert sandbox_plan("required", euid, userns) == plan
    else:
        assert "WITHOUT its sandbox" in plan.reason
        with pytest.raises(SandboxUnavailable, match="STAGE_CHROMIUM_SANDBOX=required"):
            sandbox_plan("required", euid, userns)


def _processes() -> dict[int, tuple[int, str, list[str]]]:
    """pid -> (parent pid, exe, argv) of every process we may read."""
    found: dict[int, tuple[int, str, list[str]]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            # Chromium rewrites its command line into one space-separated string
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").split()
            exe = os.readlink(f"/proc/{entry}/exe")
        except OSError:  # gone, or not ours to read
            continue
        found[int(entry)] = (parent, exe, [a.decode(errors="replace") for a in argv])
    return found


def _descendants(root: int, table: dict[int, tuple[int, str, list[str]]]) -> Iterator[int]:
    for pid, (parent, _, _) in table.items():
        if pid == root:
            continue
        ancestor = parent
        while ancestor > 1 and ancestor in table:
            if ancestor == root:
                yield pid
                break
            ancestor = table[ancestor][0]


def _chromium() -> str:
    return os.path.realpath(chromium_path())


def _raw_environ(pid: int) -> str:
    return Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    pairs = (item.decode(errors="replace").partition("=") for item in raw if item)
    return {name: value for name, _, value in pairs}


@pytest.mark.browser
async def test_no_chromium_process_of_a_capture_holds_a_secret(
    test_site: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    chromium = _chromium()
    proxy = await EgressProxy(
        EgressPolicy(allow_test_loopback=True), first_party_dir=PAGES_DIR
    ).start()
    browser = CaptureBrowser(CaptureOptions(chromium_path=Path(chromium)), proxy)
    key = uuid.uuid4().hex
    HELD[key] = threading.Event()
    try:
        capture = asyncio.create_task(browser.screenshot(f"{test_site}/held-page/{key}"))

        def renderers_up() -> dict[int, tuple[int, str, list[str]]] | None:
            table = _processes()
            mine = {pid: table[pid] for pid in _descendants(os.getpid(), table)}
            kinds = {
                next((a for a in argv if a.startswith("--type=")), "browser")
                for _, exe, argv in mine.values()
                if exe == chromium
            }
            return mine if {"browser", "--type=renderer"} <= kinds else None

        mine = await until(renderers_up, 30, "a renderer of the capture")
        chromiums = [pid for pid, (_, exe, _) in mine.items() if exe == chromium]
        drivers = [pid for pid, (_, _, argv) in mine.items() if "run-driver" in argv]
        # Crashpad handlers detach (their parent is init): they are found by their database,
        # which lies in the browser's own HOME.
        homes = {_environ(pid).get("HOME", "") for pid in chromiums} - {""}
        chromiums += [
            pid
            for pid, (_, exe, argv) in _processes().items()
            if exe.startswith(os.path.dirname(chromium) + "/")
            and pid not in mine
            and any(home in arg for arg in argv for home in homes)
        ]
        assert len(chromiums) >= 4, chromiums  # browser, zygote, network service, renderer
        leaked = {
            pid: sorted(name for name in _environ(pid) if looks_secret(name) or "_URL" in name)
            for pid in chromiums
        }
        assert all(not names for names in leaked.values()), leaked
        for pid in chromiums:  # (a process that retitled itself shows its title here)
            raw = _raw_environ(pid)
            assert not [value for value in SECRETS.values() if value in raw], pid
        assert homes and all("livestage-chromium" in home for home in homes), homes
        # The secrets were there to leak: the Playwright driver (node, not a browser) has them.
        assert any(_environ(pid).get("LIVEKIT_API_SECRET") for pid in drivers)
        HELD[key].set()
        shot = await capture
        assert shot.title == "Held page" and shot.data[:3] == b"\xff\xd8\xff"
    finally:
        HELD[key].set()
        await browser.close()
        await proxy.close()


AS_NOBODY = """#!/bin/sh
# Chromium as nobody (uid 65534), as the chart runs it (uid 10001, no capabilities, no new
# privileges): the profile folder Playwright made and the capture browser's HOME are handed
# over first.
for arg in "$@"; do
  case "$arg" in --user-data-dir=*) chown -R 65534:65534 "${arg#--user-data-dir=}";; esac
done
chown -R 65534:65534 "$HOME"
exec setpriv --no-new-privs --bounding-set=-all --inh-caps=-all \\
  --reuid=65534 --regid=65534 --clear-groups CHROMIUM "$@"
"""


def _as_nobody(folder: Path) -> Path:
    wrapper = folder / "chromium-as-nobody"
    wrapper.write_text(AS_NOBODY.replace("CHROMIUM", _chromium()))
    wrapper.chmod(0o755)
    return wrapper


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {name: value.strip() for name, _, value in (line.partition(":") for line in lines)}


@pytest.mark.browser
async def test_as_an_unprivileged_user_renderers_are_sandboxed(
    test_site: str, tmp_path: Path
) -> None:
    """Not root, user namespaces allowed (as here): the plan turns the sandbox on, Chromium
    starts with it, and a capture's renderer runs under seccomp-bpf in a PID namespace."""
    wrapper = _as_nobody(tmp_path)
    plan = sandbox_plan("required", 65534, await user_namespaces_allowed())
    assert plan.enabled
    proxy = await EgressProxy(
        EgressPolicy(allow_test_loopback=True), first_party_dir=PAGES_DIR
    ).start()
    browser = CaptureBrowser(CaptureOptions(chromium_path=wrapper), proxy, plan)
    key = uuid.uuid4().hex
    HELD[key] = threading.Event()
    try:
        capture = asyncio.create_task(browser.screenshot(f"{test_site}/held-page/{key}"))

        def renderers() -> list[int]:
            table = _processes()
            return [
                pid
                for pid in _descendants(os.getpid(), table)
                if "--type=renderer" in table[pid][2] and _status(pid)["Uid"].split()[0] == "65534"
            ]

        def sandboxed_renderers() -> list[int]:
            # A renderer installs its seccomp-bpf filter a moment after it starts (longer on a
            # loaded machine): wait until every renderer found reports it (`Seccomp: 2`); a
            # renderer without the sandbox never does, and the wait fails.
            try:
                found = renderers()
                statuses = [_status(pid) for pid in found]
            except OSError:  # a process ended between the listing and the read
                return []
            return found if found and all(s["Seccomp"] == "2" for s in statuses) else []

        found = await until(sandboxed_renderers, 30, "renderers as nobody under seccomp-bpf")
        for pid in found:
            status = _status(pid)
            assert len(status["NSpid"].split()) > 1, status  # in a PID namespace of its own
        HELD[key].set()
        shot = await capture
        assert shot.title == "Held page" and shot.data[:3] == b"\xff\xd8\xff"
    finally:
        HELD[key].set()
        await browser.close()
        await proxy.close()


async def test_the_sandbox_decision_is_logged_once_and_required_refuses(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The service says once whether Chromium runs sandboxed (as root, as these tests run
    here: without, and why), and with STAGE_CHROMIUM_SANDBOX=required it refuses to capture
    when the sandbox cannot be on."""
    expected = sandbox_plan("auto", os.geteuid(), await user_namespaces_allowed())
    options = CaptureOptions(chromium_path=Path(chromium_path()))
    proxy = await EgressProxy(EgressPolicy()).start()
    try:
        browser = CaptureBrowser(options, proxy)
        first, again = await browser.sandbox(), await browser.sandbox()
        assert first == again == expected
        said = [r for r in caplog.records if "sandbox" in r.getMessage()]
        assert len(said) == 1 and expected.reason in said[0].getMessage()
        if os.geteuid() == 0:
            assert not first.enabled and "runs as root" in first.reason
            assert said[0].levelname == "WARNING"
        if not expected.enabled:
            strict = CaptureBrowser(dataclasses.replace(options, sandbox="required"), proxy)
            with pytest.raises(CaptureError, match="STAGE_CHROMIUM_SANDBOX=required"):
                await strict.screenshot("http://pages.livestage.invalid/mars.html")
    finally:
        await proxy.close()
