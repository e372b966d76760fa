"""Health endpoints for services that serve no HTTP of their own, and the probe client.

A worker started with `livestage.service.run` answers, when `LIVESTAGE_HEALTH_PORT` is set
(containers and the Helm chart set it; `make run` does not):

    GET /healthz  200 while its event loop runs (liveness: a wedged loop stops answering)
    GET /readyz   200 when every registered check passes (e.g. NATS connected), else 503
                  with the failing checks named

`connect_bus` registers the NATS check; a service adds its own with `add_ready_check(name, fn)`.

`python -m livestage.health URL` is the container HEALTHCHECK client (slim images have no curl):
exit 0 on a 200 within two seconds, else 1 with the reason on stderr.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import urllib.error
import urllib.request
from collections.abc import Callable

from livestage.settings import HealthSettings

log = logging.getLogger(__name__)

ReadyCheck = Callable[[], bool]
_checks: dict[str, ReadyCheck] = {}


def add_ready_check(name: str, check: ReadyCheck) -> None:
    """Make /readyz depend on `check()` (a cheap, non-blocking predicate)."""
    _checks[name] = check


def remove_ready_check(name: str) -> None:
    _checks.pop(name, None)


def failing_checks() -> list[str]:
    failing = []
    for name, check in sorted(_checks.items()):
        try:
            ok = check()
        except Exception:  # a check that raises is a failing check, never a crashed probe
            log.exception("ready check %s raised", name)
            ok = False
        if not ok:
            failing.append(name)
    return failing


def _response(status: int, body: dict[str, object]) -> bytes:
    payload = json.dumps(body).encode()
    reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + payload


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        request_line = await asyncio.wait_for(reader.readline(), 5)
        parts = request_line.decode("latin-1").split()
        path = parts[1].split("?", 1)[0] if len(parts) >= 2 else ""
        if path == "/healthz":
            writer.write(_response(200, {"status": "ok"}))
        elif path == "/readyz":
            failing = failing_checks()
            status = 503 if failing else 200
            writer.write(
                _response(
                    status, {"status": "ok" if status == 200 else "not ready", "failing": failing}
                )
            )
        else:
            writer.write(_response(404, {"detail": "try /healthz or /readyz"}))
        await writer.drain()
    except (TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


async def serve(settings: HealthSettings | None = None) -> asyncio.Server | None:
    """Start the health endpoints if LIVESTAGE_HEALTH_PORT is set; None otherwise."""
    settings = settings or HealthSettings()
    if not settings.health_port:
        return None
    server = await asyncio.start_server(_handle, settings.health_host, settings.health_port)
    log.info(
        "health endpoints on http://%s:%d/healthz and /readyz",
        settings.health_host,
        settings.health_port,
    )
    return server


def probe(url: str, timeout_s: float = 2.0) -> str | None:
    """None if `url` answers 200 within `timeout_s`, else why not."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310
            return None if response.status == 200 else f"{url}: HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"{url}: HTTP {error.code} {error.read()[:200].decode(errors='replace')}"
    except (OSError, ValueError) as error:
        return f"{url}: {error}"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m livestage.health URL", file=sys.stderr)
        return 2
    problem = probe(argv[0])
    if problem:
        print(f"unhealthy: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
