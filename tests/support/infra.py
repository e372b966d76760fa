"""Real infrastructure for tests: nats-server, redis-server and livekit-server on 127.0.0.1.

Each server runs as a child process with its own temporary directory (data, config, log) and its
own free ports, so tests never collide with each other or with a developer's running stack.

    with NatsServer() as nats:          # started, ready, and stopped+cleaned on exit
        ...nats.url...
        nats.kill()                     # SIGKILL, as in a crash
        nats.restart()                  # same ports, same data dir

Everything stays on this machine: servers listen on 127.0.0.1 (LiveKit's ICE-TCP listener, which
cannot be bound, aside), probes connect to 127.0.0.1, and the LiveKit config keeps ICE and STUN
on 127.0.0.1 too (see ``LiveKitServer`` for the one wrinkle: a WebRTC client's own end of the
media path is this machine's interface address, delivered over ``lo``).

Binaries are found through an environment variable first (``NATS_SERVER_BIN``,
``REDIS_SERVER_BIN``, ``LIVEKIT_SERVER_BIN``), then at the usual places; ``make bootstrap``
installs whatever is missing.
"""

from __future__ import annotations

import atexit
import http.client
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

HOST = "127.0.0.1"
PORT_RETRIES = 2  # fresh ports for a first start that lost one to another process
REPO_ROOT = Path(__file__).resolve().parents[2]


class BinaryNotFoundError(FileNotFoundError):
    """A server binary is not installed where we look for it."""


class ServerStartError(RuntimeError):
    """A server did not become ready; the message carries the tail of its log."""


# --------------------------------------------------------------------------------------------
# small helpers


def _below_ephemeral() -> tuple[int, int]:
    """Ports no outgoing connection is ever given (below the kernel's ephemeral range): a port
    chosen here cannot be taken by some process's client socket before its server binds it."""
    try:
        first = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first = 32768
    return 20000, max(first - 1, 20001)


def _bind_below_ephemeral(kind: int) -> socket.socket:
    """A socket bound to a free port below the ephemeral range (any free port if none is)."""
    low, high = _below_ephemeral()
    for _ in range(200):
        s = socket.socket(socket.AF_INET, kind)
        try:
            s.bind((HOST, secrets.randbelow(high - low + 1) + low))
            return s
        except OSError:
            s.close()
    s = socket.socket(socket.AF_INET, kind)
    s.bind((HOST, 0))
    return s


def free_ports(tcp: int = 0, udp: int = 0) -> tuple[list[int], list[int]]:
    """Distinct free ports on 127.0.0.1 below the ephemeral range (a port the kernel handed out
    with bind(0) could be given to another process's outgoing connection before the server that
    was told it binds: "address already in use"); all held open until all are chosen."""
    socks: list[socket.socket] = []
    try:
        tcp_ports: list[int] = []
        udp_ports: list[int] = []
        for kind, count, out in (
            (socket.SOCK_STREAM, tcp, tcp_ports),
            (socket.SOCK_DGRAM, udp, udp_ports),
        ):
            while len(out) < count:
                s = _bind_below_ephemeral(kind)
                socks.append(s)
                port = s.getsockname()[1]
                # keep TCP and UDP ports distinct too, so a config can never mix them up
                if port not in tcp_ports and port not in udp_ports:
                    out.append(port)
        return tcp_ports, udp_ports
    finally:
        for s in socks:
            s.close()


def http_get(port: int, path: str = "/", timeout: float = 1.0) -> tuple[int, bytes]:
    """GET http://127.0.0.1:port/path (http.client never consults *_proxy env vars)."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``, recursing into dicts present in both."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# util-linux's setpriv (always on Debian) execs the server with a parent-death signal, so a
# killed test run (pytest SIGKILLed, CI timeout) does not leave servers behind.
_SETPRIV = shutil.which("setpriv")


def _with_parent_death_signal(argv: list[str]) -> list[str]:
    # The signal fires when the *thread* that started the child exits, so only use it from the
    # main thread (where pytest runs fixtures), never from a worker thread.
    if _SETPRIV and threading.current_thread() is threading.main_thread():
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *argv]
    return argv


_running: weakref.WeakSet[ServerProcess] = weakref.WeakSet()


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_running):
        server.kill()


# --------------------------------------------------------------------------------------------
# the shared base class


class ServerProcess:
    """One server child process with a temp dir, fixed ports, a log file and a readiness probe.

    Subclasses set the class attributes, pick their ports in ``__init__`` and implement
    ``command()`` and ``probe()``; ``prepare()`` may write config files before each start.
    """

    name: ClassVar[str]  # short name, used for the temp dir and log file
    binary_env: ClassVar[str]  # env var that overrides the binary path
    install_hint: ClassVar[str]  # how to get the binary
    # what stop() sends, in turn, and how long it waits after each before SIGKILL
    stop_sequence: ClassVar[tuple[tuple[signal.Signals, float], ...]] = ((signal.SIGTERM, 10.0),)

    def __init__(self, *, startup_timeout: float = 30.0) -> None:
        self.binary = self.find_binary()
        self.startup_timeout = startup_timeout
        self.tmp_dir = Path(tempfile.mkdtemp(prefix=f"livestage-{self.name}-"))
        self.log_path = self.tmp_dir / f"{self.name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._started_before = False

    # -- to implement ------------------------------------------------------------------------

    @classmethod
    def candidate_paths(cls) -> list[Path | str]:
        """Where to look after the env var: absolute paths, or bare names searched on PATH."""
        raise NotImplementedError

    def command(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> bool:
        """One quick readiness check; True when the server is ready for tests."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Called before every (re)start, e.g. to write a config file."""

    def pick_ports(self) -> None:
        """Choose free ports (subclasses; called by `__init__`, and again when a first start
        lost a port it was given to another process meanwhile)."""

    # -- binary lookup -----------------------------------------------------------------------

    @classmethod
    def find_binary(cls) -> str:
        override = os.environ.get(cls.binary_env)
        if override:
            if Path(override).is_file() and os.access(override, os.X_OK):
                return override
            raise BinaryNotFoundError(
                f"{cls.binary_env}={override!r} is not an executable file. {cls.install_hint}"
            )
        looked = []
        for candidate in cls.candidate_paths():
            looked.append(str(candidate))
            if isinstance(candidate, Path):
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return str(candidate)
            elif found := shutil.which(candidate):
                return found
        raise BinaryNotFoundError(
            f"{cls.name}: binary not found (set {cls.binary_env}, or looked at: "
            f"{', '.join(looked)}). {cls.install_hint}"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> Self:
        """Start and wait until ready. A first start that finds a chosen port taken (another
        process bound it between `free_ports` closing it and the server binding it: a race a
        busy test run does hit) is tried again on fresh ports, up to `PORT_RETRIES` times; a
        restart keeps its ports (tests rely on them)."""
        for attempt in range(PORT_RETRIES + 1):
            try:
                return self._start_once()
            except ServerStartError as error:
                lost_port = "address already in use" in str(error).lower()
                if not lost_port or self._started_before or attempt == PORT_RETRIES:
                    raise
                self.pick_ports()
        raise AssertionError("unreachable")

    def _start_once(self) -> Self:
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.prepare()
        argv = self.command()
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} starting: {argv}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                _with_parent_death_signal(argv),
                cwd=self.tmp_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        _running.add(self)
        self._wait_ready()
        self._started_before = True
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"{self.name} exited with code {self.process.returncode} during startup.\n"
                    f"{self.log_tail()}"
                )
            try:
                if self.probe():
                    return
            except (OSError, http.client.HTTPException) as exc:
                last_error = exc
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(
            f"{self.name} not ready within {self.startup_timeout:.0f}s "
            f"(last probe error: {last_error!r}).\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """Graceful stop (``stop_sequence``, then SIGKILL). Keeps the temp dir."""
        for sig, wait in self.stop_sequence:
            if not self.running:
                break
            assert self.process is not None
            self.process.send_signal(sig)
            try:
                self.process.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def kill(self) -> None:
        """SIGKILL, as in a crash: no shutdown, no flushing. Keeps the temp dir."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait(10)
        _running.discard(self)

    def restart(self) -> Self:
        """Stop if running, then start again on the same ports with the same data dir."""
        self.stop()
        return self.start()

    def cleanup(self) -> None:
        """Stop and delete the temp dir (data, config, log)."""
        self.stop()
        shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.cleanup()
            raise

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{tail}"

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {getattr(self, 'url', '')} {state}>"


# --------------------------------------------------------------------------------------------
# NATS


class NatsServer(ServerProcess):
    """``nats-server -js`` with a file store in its temp dir.

    Ready when the monitoring endpoint says JetStream is enabled and the client port greets
    with INFO.
    """

    name = "nats-server"
    binary_env = "NATS_SERVER_BIN"
    install_hint = "Run `make bootstrap` (installs the nats-server-bin package into .venv)."

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.store_dir = self.tmp_dir / "jetstream"
        self.pick_ports()

    def pick_ports(self) -> None:
        (self.port, self.monitor_port), _ = free_ports(tcp=2)
        self.url = f"nats://{HOST}:{self.port}"

    @classmethod
    def candidate_paths(cls) -> list[Path | str]:
        return [Path(sys.executable).parent / "nats-server", "nats-server"]

    def command(self) -> list[str]:
        return [
            self.binary,
            "-js",
            "-a", HOST,
            "-p", str(self.port),
            "-m", str(self.monitor_port),
            "-sd", str(self.store_dir),
        ]  # fmt: skip

    def probe(self) -> bool:
        status, _ = http_get(self.monitor_port, "/healthz?js-enabled-only=true")
        if status != 200:
            return False
        with socket.create_connection((HOST, self.port), timeout=1) as s:
            return s.recv(5) == b"INFO "


class AuthNatsServer(NatsServer):
    """A `NatsServer` that wants a user and a password (random unless given).

    ``url`` carries no credentials (the probe needs none: INFO comes before auth);
    ``auth_url`` is the ``nats://user:password@127.0.0.1:<port>`` a client connects with.
    """

    def __init__(self, *, user: str = "livestage", password: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.user = user
        self.password = password or secrets.token_urlsafe(16)
        self.pick_ports()

    def pick_ports(self) -> None:
        super().pick_ports()
        if hasattr(self, "password"):  # NatsServer.__init__ picks before the credentials exist
            self.auth_url = f"nats://{self.user}:{self.password}@{HOST}:{self.port}"

    def command(self) -> list[str]:
        return [*super().command(), "--user", self.user, "--pass", self.password]


# --------------------------------------------------------------------------------------------
# Redis


class RedisServer(ServerProcess):
    """``redis-server`` on 127.0.0.1. No persistence unless ``persistence=True``.

    With ``persistence=True`` the append-only file is on and fsynced on every write, so data
    written before a ``kill()`` is there after ``restart()``.
    """

    name = "redis-server"
    binary_env = "REDIS_SERVER_BIN"
    install_hint = "Run `make bootstrap` (or `apt-get install redis-server`)."

    def __init__(self, *, persistence: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.persistence = persistence
        self.data_dir = self.tmp_dir
        self.pick_ports()

    def pick_ports(self) -> None:
        (self.port,), _ = free_ports(tcp=1)
        self.url = f"redis://{HOST}:{self.port}/0"

    @classmethod
    def candidate_paths(cls) -> list[Path | str]:
        return ["redis-server", Path("/usr/bin/redis-server"), Path("/usr/local/bin/redis-server")]

    def command(self) -> list[str]:
        cmd = [
            self.binary,
            "--bind", HOST,
            "--port", str(self.port),
            "--dir", str(self.data_dir),
            "--save", "",
            "--daemonize", "no",
            "--logfile", "",
        ]  # fmt: skip
        if self.persistence:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no"]
        return cmd

    def probe(self) -> bool:
        with socket.create_connection((HOST, self.port), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")


# --------------------------------------------------------------------------------------------
# LiveKit


class LiveKitServer(ServerProcess):
    """``livekit-server --config <generated>`` with its own keys, ports and loopback-only media.

    Attributes: ``url`` (ws://), ``http_url``, ``api_key``, ``api_secret``, ``config_path``.
    ``webhook_urls`` (optional) are posted to, signed with ``webhook_api_key`` (defaults to
    ``api_key``). ``extra_config`` is merged (recursively) into the generated config, e.g.
    ``extra_config={"room": {"departure_timeout": 1}}``.

    MEDIA ON 127.0.0.1 -- the ``rtc`` section below, and why (checked against v1.13.5 and the
    Python rtc SDK 1.1.21; see ``tests/infra/test_livekit.py``):

    * ``node_ip: 127.0.0.1`` -- the server advertises 127.0.0.1 in its ICE candidates (pion's
      1:1 NAT rewrite of host candidates). Left unset, the server picks a LAN address and,
      worse, adds public STUN servers (Google, Twilio) to its own ICE agent.
    * ``use_external_ip: false`` -- never ask a STUN server on the internet for a public IP.
    * ``enable_loopback_candidate: true`` + ``ips.includes: [127.0.0.1/32]`` -- the UDP socket is
      bound to 127.0.0.1 and nothing else. Without these, pion skips loopback and binds the
      LAN addresses (IPv4 and IPv6); node_ip then only relabels the IPv4 candidate while media
      actually flows between LAN addresses, and an IPv6 LAN candidate is advertised as is.
    * ``udp_port`` (one port: a UDP mux) and ``tcp_port`` (ICE over TCP) -- free ports chosen
      here, so ``restart()`` keeps them; nothing listens on the default 50000-60000 range.
      (The ICE-TCP listener binds all interfaces; no config changes that, but only 127.0.0.1
      is advertised.)
    * ``stun_servers: [127.0.0.1:<closed UDP port>]`` -- the join response hands clients the
      server's STUN list, and an *empty* list means "use Google's and Twilio's". A loopback port
      where nothing listens keeps every client (Python SDK, Chromium) off the internet; their
      binding requests get "port unreachable" and ICE carries on with host candidates.

    The client needs no special options (``rtc.RoomOptions()`` / ``RtcConfiguration`` defaults).
    libwebrtc ignores loopback adapters when gathering, and the Python SDK cannot change that,
    so a client's own candidates are this machine's other interface addresses (192.0.2.2 here),
    and it sends its checks *to* the server's 127.0.0.1 candidate; Linux delivers packets
    between local addresses over ``lo``, so nothing leaves the machine. Consequence: the machine
    needs at least one non-loopback interface with an address. With ``lo`` alone (e.g. a
    container with networking off) the client gathers nothing and ``connect()`` times out
    ("wait_pc_connection timed out"); adding any interface (a veth, a dummy) fixes it.
    """

    name = "livekit-server"
    binary_env = "LIVEKIT_SERVER_BIN"
    install_hint = (
        "Run `make bootstrap` (it builds it with `go install "
        "github.com/livekit/livekit-server/cmd/server@v1.13.5`), or point LIVEKIT_SERVER_BIN at "
        "a livekit-server binary."
    )
    # The first SIGTERM drains: the server waits for every participant to leave. A second one
    # forces the shutdown.
    stop_sequence = ((signal.SIGTERM, 2.0), (signal.SIGTERM, 5.0))

    def __init__(
        self,
        *,
        api_key: str | None = None,
        api_secret: str | None = None,
        webhook_urls: Sequence[str] = (),
        webhook_api_key: str | None = None,
        log_level: str = "info",
        extra_config: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.api_key = api_key or f"lk_{secrets.token_hex(6)}"
        self.api_secret = api_secret or secrets.token_hex(24)  # server wants >= 32 chars
        self.webhook_urls = list(webhook_urls)
        self.webhook_api_key = webhook_api_key or self.api_key
        self.log_level = log_level
        self.extra_config = extra_config or {}
        self.config_path = self.tmp_dir / "livekit.yaml"
        self._first_ok: float | None = None
        self.pick_ports()

    def pick_ports(self) -> None:
        (self.port, self.rtc_tcp_port), (self.rtc_udp_port, self.stun_port) = free_ports(
            tcp=2, udp=2
        )
        self.url = f"ws://{HOST}:{self.port}"
        self.http_url = f"http://{HOST}:{self.port}"

    @classmethod
    def candidate_paths(cls) -> list[Path | str]:
        return [REPO_ROOT / ".cache" / "bin" / "livekit-server", "livekit-server"]

    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "port": self.port,
            "bind_addresses": [HOST],
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": self.log_level, "json": False},
            "rtc": {
                "node_ip": HOST,
                "use_external_ip": False,
                "enable_loopback_candidate": True,
                "ips": {"includes": [f"{HOST}/32"]},
                "udp_port": self.rtc_udp_port,
                "tcp_port": self.rtc_tcp_port,
                "stun_servers": [f"{HOST}:{self.stun_port}"],
            },
            "room": {"auto_create": True},
        }
        if self.webhook_urls:
            config["webhook"] = {"api_key": self.webhook_api_key, "urls": self.webhook_urls}
        return _merge(config, self.extra_config)

    def command(self) -> list[str]:
        return [self.binary, "--config", str(self.config_path)]

    def prepare(self) -> None:
        # JSON is valid YAML, and needs no YAML library
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self._first_ok = None

    def probe(self) -> bool:
        status, body = http_get(self.port, "/")
        if status != 200 or body.strip() != b"OK":
            return False
        # livekit-server answers HTTP ~100 ms before it marks itself running, and a SIGTERM in
        # that window is ignored (Stop() returns early). Give it that moment.
        now = time.monotonic()
        if self._first_ok is None:
            self._first_ok = now
        return now - self._first_ok >= 0.2
