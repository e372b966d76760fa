"""The local stack of `make run`: what starts after what, and when it is all ready.

The Procfile runs every process under honcho. Each Livestage service line is
`scripts/stack.py start <name>`: it waits until the components the service needs answer (NATS,
then Redis, then LiveKit, ...), then becomes the service (`exec python -m <package>`), with a
health port of its own so that readiness can be asked. The `ready` line is
`scripts/stack.py announce`: it waits for every component in dependency order, says when each is
ready, prints the URLs (viewer page, OBS stage page, where traces and metrics go) and stays up
until Ctrl-C (honcho stops everything when any process exits).

    .venv/bin/python scripts/stack.py start moderation
    .venv/bin/python scripts/stack.py announce
    .venv/bin/python scripts/stack.py order        # the start order, one name a line

With LIVESTAGE_OBSERVE=1 (`make run OBSERVE=1`) the local OpenTelemetry Collector and Prometheus
are components too, and every service waits for the collector.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
POLL_S = 0.25
OBSERVE = os.environ.get("LIVESTAGE_OBSERVE") == "1"
COLLECTOR_HEALTH = ("127.0.0.1", 13133)
COLLECTOR_OTLP = "http://127.0.0.1:4318"
PROMETHEUS = ("127.0.0.1", 9090)


# --- checks -------------------------------------------------------------------------------------


def http_ok(host: str, port: int, path: str) -> bool:
    """GET http://host:port/path answers 200 (http.client never consults *_proxy variables)."""
    connection = http.client.HTTPConnection(host, port, timeout=1.0)
    try:
        connection.request("GET", path)
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def tcp_greets(host: str, port: int, send: bytes, expect: bytes) -> bool:
    """Connect, send `send` (may be empty), and see `expect` at the start of the answer."""
    try:
        with socket.create_connection((host, port), timeout=1.0) as sock:
            if send:
                sock.sendall(send)
            return sock.recv(64).startswith(expect)
    except OSError:
        return False


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parsed = urlparse(url)
    return parsed.hostname or "127.0.0.1", parsed.port or default_port


# --- components ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    name: str
    check: Callable[[], bool]
    after: tuple[str, ...] = ()
    module: str = ""  # a Livestage service: `python -m <module>`
    health_port: int = 0  # its /readyz under make run (LIVESTAGE_HEALTH_PORT)
    what: str = ""  # how it is checked, for messages


def components() -> dict[str, Component]:
    from livestage.settings import LiveKitSettings, NatsSettings, RedisSettings
    from token_service.settings import EdgeSettings

    nats = host_port(NatsSettings().servers[0], 4222)
    redis = host_port(RedisSettings().url, 6379)
    livekit = host_port(LiveKitSettings().http_url, 7880)
    edge = EdgeSettings()
    edge_host = "127.0.0.1" if edge.host in ("0.0.0.0", "::", "") else edge.host
    observe = ("otel-collector",) if OBSERVE else ()

    def worker(name: str, module: str, port: int, after: tuple[str, ...]) -> Component:
        return Component(
            name,
            lambda: http_ok("127.0.0.1", port, "/readyz"),
            after + observe,
            module,
            port,
            f"http://127.0.0.1:{port}/readyz",
        )

    found = [
        Component(
            "nats", lambda: tcp_greets(*nats, b"", b"INFO"), what=f"nats://{nats[0]}:{nats[1]}"
        ),
        Component(
            "redis",
            lambda: tcp_greets(*redis, b"PING\r\n", b"+PONG"),
            what=f"redis://{redis[0]}:{redis[1]}",
        ),
        Component(
            "livekit",
            lambda: http_ok(*livekit, "/"),
            what=f"http://{livekit[0]}:{livekit[1]}/",
        ),
    ]
    if OBSERVE:
        found += [
            Component(
                "otel-collector",
                lambda: http_ok(*COLLECTOR_HEALTH, "/"),
                what=f"http://{COLLECTOR_HEALTH[0]}:{COLLECTOR_HEALTH[1]}/",
            ),
            Component(
                "prometheus",
                lambda: http_ok(*PROMETHEUS, "/-/ready"),
                ("otel-collector",),
                what=f"http://{PROMETHEUS[0]}:{PROMETHEUS[1]}/-/ready",
            ),
        ]
    found += [
        worker("moderation", "moderation", 8191, ("nats",)),
        worker("chat-history", "chat_history", 8192, ("nats", "redis", "livekit")),
        worker("stage-producer", "stage_producer", 8193, ("nats",)),
        worker("host-agent", "host_agent", 8194, ("nats", "livekit")),
        # idle until a platform is configured (BRIDGE_YOUTUBE_VIDEO_ID, BRIDGE_TWITCH_CHANNEL)
        worker("chat-bridge", "chat_bridge", 8195, ("nats", "redis")),
        Component(
            "token",
            lambda: http_ok(edge_host, edge.port, "/readyz"),
            ("nats", "redis", "livekit", *observe),
            "token_service",
            what=f"http://{edge_host}:{edge.port}/readyz",
        ),
    ]
    return {c.name: c for c in found}


def start_order(table: dict[str, Component]) -> list[str]:
    """Every component after the ones it needs (a topological order; stable otherwise)."""
    order: list[str] = []
    visiting: set[str] = set()

    def visit(name: str) -> None:
        if name in order:
            return
        if name in visiting:
            raise SystemExit(f"stack.py: a dependency cycle through {name}")
        visiting.add(name)
        for dependency in table[name].after:
            visit(dependency)
        visiting.discard(name)
        order.append(name)

    for name in table:
        visit(name)
    return order


# --- waiting ------------------------------------------------------------------------------------


def _stop_quietly(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


def wait_ready(component: Component, say: Callable[[str], None]) -> float:
    started = time.monotonic()
    warned = False
    while not component.check():
        if not warned and time.monotonic() - started > 15:
            say(f"still waiting for {component.name} ({component.what})")
            warned = True
        time.sleep(POLL_S)
    return time.monotonic() - started


def say(message: str) -> None:
    print(message, flush=True)


def start(name: str) -> None:
    table = components()
    if name not in table or not table[name].module:
        services = [n for n, c in table.items() if c.module]
        raise SystemExit(f"stack.py start: {name!r} is not a service; one of {services}")
    component = table[name]
    for dependency in component.after:
        if not table[dependency].check():
            say(f"{name} waits for {dependency} ({table[dependency].what})")
            wait_ready(table[dependency], say)
    env = dict(os.environ)
    if component.health_port:
        env.setdefault("LIVESTAGE_HEALTH_PORT", str(component.health_port))
    if OBSERVE:
        env.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", COLLECTOR_OTLP)
    if name == "stage-producer" and "LIVESTAGE_VAR_DIR" in os.environ:
        # `make run VAR_DIR=...` keeps all of a run's data there, the stage's assets too (a
        # STAGE_ASSET_DIR in .env, which honcho loads, still wins).
        assets = Path(os.environ["LIVESTAGE_VAR_DIR"]) / "stage-assets"
        env.setdefault("STAGE_ASSET_DIR", str(assets))
    python = sys.executable
    os.execve(python, [python, "-m", component.module], env)


def where_telemetry_goes() -> list[str]:
    from livestage.settings import TelemetrySettings

    endpoint = TelemetrySettings().exporter_otlp_endpoint
    if OBSERVE:
        var = os.environ.get("LIVESTAGE_VAR_DIR", "var")
        return [
            f"  metrics  Prometheus http://{PROMETHEUS[0]}:{PROMETHEUS[1]}/graph "
            "(series in docs/metrics.md, e.g. livestage_chat_submitted_total)",
            f"  traces   {var}/otel/collector.log (every span with its trace id; "
            "Jaeger and Grafana come with docker compose)",
            "  logs     this console, each line inside a span with its trace and span ids",
        ]
    if endpoint:
        return [f"  traces, metrics, logs  OTLP to {endpoint}"]
    return [
        "  traces, metrics  not exported: set OTEL_EXPORTER_OTLP_ENDPOINT in .env, or run "
        "`make run OBSERVE=1` (a local collector + Prometheus)",
        "  logs     this console, each line inside a span with its trace and span ids",
    ]


def announce() -> None:
    table = components()
    began = time.monotonic()
    for name in start_order(table):
        waited = wait_ready(table[name], say)
        say(f"ready: {name} ({waited:.1f} s)")
    from token_service.settings import EdgeSettings

    edge = EdgeSettings()
    host = "127.0.0.1" if edge.host in ("0.0.0.0", "::", "") else edge.host
    base = f"http://{host}:{edge.port}"
    lines = [
        f"Livestage is ready ({time.monotonic() - began:.1f} s):",
        f"  viewer   {base}/",
        f"  stage    {base}/stage?width=1920&height=1080&captions=1  (OBS browser source)",
        f"  API      {base}/docs",
        *where_telemetry_goes(),
        "Stop with Ctrl-C.",
    ]
    say("\n".join(lines))
    signal.pause()


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGTERM, _stop_quietly)
    signal.signal(signal.SIGINT, _stop_quietly)
    if argv[:1] == ["start"] and len(argv) == 2:
        start(argv[1])
    elif argv == ["announce"]:
        announce()
    elif argv == ["order"]:
        print("\n".join(start_order(components())))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
