"""How the capture browser is started: the environment it gets and whether its sandbox is on.

Pure decisions (`browser_environment`, `sandbox_plan`) apart from the one probe that needs the
system (`user_namespaces_allowed`, a short child process).

- **Environment.** Chromium gets only what it needs to run and draw text: PATH, the locale
  (LANG, LANGUAGE, LC_*), TZ, fontconfig's variables, TMPDIR, and a HOME (with XDG folders) of
  its own in a temporary folder. Nothing else of the service's environment reaches it, so no
  LiveKit, OpenAI, Anam, Gemini or operator key, no NATS/Redis URL with a password, no proxy
  setting. A name that looks like a secret (KEY, SECRET, TOKEN, PASSWORD, PASSWD, CREDENTIAL)
  is dropped even from that short list.
- **Sandbox.** Debian's Chromium sandboxes its renderers with user namespaces (it ships no
  setuid helper). That works when the process is not root (Chromium refuses to sandbox as root)
  and the kernel, its seccomp filter and its AppArmor policy let an unprivileged process create
  a user namespace. `STAGE_CHROMIUM_SANDBOX=auto` turns it on whenever both hold and otherwise
  runs without it, saying why once at start; `required` refuses to capture without it.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, Literal

SandboxMode = Literal["auto", "required"]

PASSED_THROUGH: Final = (
    "PATH",
    "LANG",
    "LANGUAGE",
    "LC_ALL",
    "LC_CTYPE",
    "LC_MESSAGES",
    "LC_NUMERIC",
    "LC_TIME",
    "TZ",
    "TMPDIR",
    "FONTCONFIG_FILE",
    "FONTCONFIG_PATH",
)
"""The only variables of the service's environment Chromium may see."""

DEFAULT_PATH: Final = "/usr/local/bin:/usr/bin:/bin"
_SECRET_NAME: Final = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)


def looks_secret(name: str) -> bool:
    """True for a variable name that may hold a credential."""
    return bool(_SECRET_NAME.search(name))


def browser_environment(environ: Mapping[str, str], home: str) -> dict[str, str]:
    """The whole environment Chromium starts with: `PASSED_THROUGH` from `environ` (minus any
    secret-looking name) and a HOME of its own (`home`, with its XDG folders inside)."""
    env = {
        name: environ[name]
        for name in PASSED_THROUGH
        if name in environ and environ[name] and not looks_secret(name)
    }
    env.setdefault("PATH", DEFAULT_PATH)
    env["HOME"] = home
    env["XDG_CONFIG_HOME"] = f"{home}/.config"
    env["XDG_CACHE_HOME"] = f"{home}/.cache"
    env["XDG_DATA_HOME"] = f"{home}/.local/share"
    return env


@dataclass(frozen=True)
class SandboxPlan:
    """Whether Chromium runs sandboxed, and in words why (or why not)."""

    enabled: bool
    reason: str


class SandboxUnavailable(Exception):
    """STAGE_CHROMIUM_SANDBOX=required, and the sandbox cannot be on here; the message says why."""


def sandbox_plan(mode: SandboxMode, euid: int, user_namespaces: bool) -> SandboxPlan:
    """On when the process is not root and user namespaces work; raises `SandboxUnavailable`
    for `required` when it cannot be on."""
    if euid == 0:
        why = (
            "the stage producer runs as root and Chromium does not sandbox as root; run it as "
            "an unprivileged user (the container image uses uid 10001)"
        )
    elif not user_namespaces:
        why = (
            "this system does not let an unprivileged process create a user namespace (a "
            "seccomp filter such as the container runtime's default, an AppArmor restriction, "
            "or user.max_user_namespaces=0); allow it for this container (see the README's "
            "Safety section)"
        )
    else:
        return SandboxPlan(True, f"Chromium's sandbox is on (uid {euid}, user namespaces)")
    if mode == "required":
        raise SandboxUnavailable(
            f"STAGE_CHROMIUM_SANDBOX=required but the sandbox cannot be on: {why}"
        )
    return SandboxPlan(False, f"Chromium runs WITHOUT its sandbox: {why}")


_PROBE = (
    "import ctypes, sys\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "sys.exit(0 if libc.unshare(0x10000000) == 0 else 1)\n"  # CLONE_NEWUSER
)


async def user_namespaces_allowed() -> bool:
    """Whether a fresh child of this process may create a user namespace (what Chromium's
    sandbox needs), asked of the kernel itself rather than guessed from sysctls."""
    if sys.platform != "linux":
        return False
    try:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _PROBE,
            env={"PATH": os.environ.get("PATH", DEFAULT_PATH)},
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await asyncio.wait_for(child.wait(), 10) == 0
    except (OSError, TimeoutError):
        return False
