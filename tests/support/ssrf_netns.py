"""The SSRF table, run inside a network namespace of its own (`python -m tests.support.ssrf_netns`).

`run_in_namespace()` starts this module under `unshare --net --map-root-user`: inside, only
loopback exists, so nothing here can send a packet to a real private or public address even if
the code under test were wrong. The namespace then gets the "private" addresses (10.0.0.5,
172.16.0.5, 192.168.1.5, 169.254.169.254, 100.64.0.5, fd00::5, plus 127.0.0.1 and ::1) and a
stand-in "public" address (93.184.216.34) on its loopback, and one catch-all HTTP server on port
80 of all of them. The public address serves the test pages; a request reaching any other
address is a *private hit*, which the tests require to stay at zero: a real leak would be seen,
not just a refusal logged.

Names resolve through a scripted resolver double (`ScriptedResolver`), including a rebinding
name that answers public first and private after. Every row is one target; the result says
whether it was refused and why. Output: one JSON document on stdout.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = "93.184.216.34"
PRIVATE_V4 = ["10.0.0.5", "172.16.0.5", "192.168.1.5", "169.254.169.254", "100.64.0.5"]
PRIVATE_V6 = ["fd00::5"]

# Names the scripted resolver answers (a list: one answer per call, the last one repeats).
DNS: dict[str, list[list[str]]] = {
    "public.test": [[PUBLIC]],
    "private.test": [["10.0.0.5"]],
    "mixed.test": [[PUBLIC, "10.0.0.5"]],
    "metadata.test": [["169.254.169.254"]],
    "mapped.test": [["::ffff:10.0.0.5"]],
    "v6private.test": [["fd00::5"]],
    "rebind.test": [[PUBLIC], ["10.0.0.5"]],
}


@dataclass(frozen=True)
class Row:
    id: str
    how: str  # "proxy-get", "proxy-connect", "capture", "page" (a subresource of a page)
    target: str
    expect: str  # a word the reason must contain


ROWS: tuple[Row, ...] = (
    # Spellings of loopback, straight at the proxy (Chromium would canonicalize these first).
    Row("loopback-dotted", "proxy-get", "http://127.0.0.1/", "loopback"),
    Row("loopback-name", "proxy-get", "http://localhost/", "loopback"),
    Row("loopback-decimal", "proxy-get", "http://2130706433/", "loopback"),
    Row("loopback-hex-short", "proxy-get", "http://0x7f.1/", "loopback"),
    Row("loopback-hex-whole", "proxy-get", "http://0x7f000001/", "loopback"),
    Row("loopback-octal", "proxy-get", "http://0177.0.0.1/", "loopback"),
    Row("loopback-short", "proxy-get", "http://127.1/", "loopback"),
    Row("loopback-v6", "proxy-get", "http://[::1]/", "loopback"),
    Row("loopback-v4-mapped", "proxy-get", "http://[::ffff:127.0.0.1]/", "loopback"),
    Row("loopback-subdomain", "proxy-get", "http://a.localhost/", "loopback"),
    # Private and special ranges.
    Row("private-10", "proxy-get", "http://10.0.0.5/", "private"),
    Row("private-172-16", "proxy-get", "http://172.16.0.5/", "private"),
    Row("private-192-168", "proxy-get", "http://192.168.1.5/", "private"),
    Row("metadata-169-254", "proxy-get", "http://169.254.169.254/latest/meta-data/", "link-local"),
    Row("cgnat-100-64", "proxy-get", "http://100.64.0.5/", "carrier-grade"),
    Row("unspecified-0000", "proxy-get", "http://0.0.0.0/", "this network"),
    Row("unique-local-fc00", "proxy-get", "http://[fc00::1]/", "unique local"),
    Row("unique-local-fd00", "proxy-get", "http://[fd00::5]/", "unique local"),
    Row("link-local-fe80", "proxy-get", "http://[fe80::1]/", "link-local"),
    Row("nat64-private", "proxy-get", "http://[64:ff9b::a00:1]/", "NAT64"),
    Row("6to4-private", "proxy-get", "http://[2002:a00:5::]/", "6to4"),
    Row("connect-private", "proxy-connect", "10.0.0.5:443", "private"),
    Row("connect-loopback-v6", "proxy-connect", "[::1]:443", "loopback"),
    # Names that resolve somewhere private (the check is on every resolved address).
    Row("name-to-private", "proxy-get", "http://private.test/", "resolved to 10.0.0.5"),
    Row("name-mixed-answers", "proxy-get", "http://mixed.test/", "resolved to 10.0.0.5"),
    Row("name-to-metadata", "proxy-get", "http://metadata.test/", "link-local"),
    Row("name-to-v4-mapped", "proxy-connect", "mapped.test:443", "IPv4-mapped"),
    Row("name-to-fd00", "proxy-connect", "v6private.test:443", "unique local"),
    Row("port-not-allowed", "proxy-get", "http://public.test:22/", "port 22"),
    # Through the real browser.
    Row("browser-private", "capture", "http://10.0.0.5/", "private"),
    Row("browser-decimal-loopback", "capture", "http://2130706433/", "loopback"),
    Row("browser-name-to-private", "capture", "http://private.test/", "resolved to 10.0.0.5"),
    Row(
        "redirect-to-private", "capture", f"http://{PUBLIC}/redirect?to=http://10.0.0.5/", "private"
    ),
    Row(
        "redirect-to-metadata-name",
        "capture",
        "http://public.test/redirect?to=http://metadata.test/latest/",
        "link-local",
    ),
    Row("img-private", "page", "http://192.168.1.5/pixel.png", "private"),
    Row("fetch-private", "page", "http://172.16.0.5/api", "private"),
    Row("iframe-metadata", "page", "http://169.254.169.254/latest/meta-data/", "link-local"),
    Row("script-name-private", "page", "http://private.test/app.js", "resolved to 10.0.0.5"),
    Row("websocket-private", "page", "10.0.0.5:80", "private"),
    Row("rebinding", "page", "http://rebind.test/secret", "resolved to 10.0.0.5"),
    # Schemes that are not the web.
    Row("scheme-file", "capture", "file:///etc/passwd", "scheme file:"),
    Row("scheme-data", "capture", "data:text/html,<h1>hi</h1>", "scheme data:"),
    Row("scheme-chrome", "capture", "chrome://settings", "scheme chrome:"),
    Row("scheme-view-source", "capture", "view-source:http://10.0.0.5/", "scheme view-source:"),
    Row("scheme-ftp", "capture", "ftp://10.0.0.5/", "scheme ftp:"),
    Row("scheme-ws", "capture", "ws://10.0.0.5/", "scheme ws:"),
)

SUBRESOURCE_PAGE = """<!doctype html><html><head><title>Subresources</title>
<meta name="description" content="filled in by the script"></head><body>
<h1>A page that asks for private things</h1>
<img src="http://192.168.1.5/pixel.png">
<iframe src="http://169.254.169.254/latest/meta-data/"></iframe>
<iframe src="file:///etc/passwd"></iframe>
<script src="http://private.test/app.js"></script>
<script>
  window.results = {};
  fetch("http://172.16.0.5/api")
    .then(() => results.fetch = "loaded", e => results.fetch = String(e));
  try {
    const ws = new WebSocket("ws://10.0.0.5/");
    ws.onopen = () => results.ws = "open";
    ws.onerror = () => results.ws = "error";
  } catch (e) { results.ws = String(e); }
  document.querySelector("meta[name=description]").content = typeof RTCPeerConnection;
</script>
</body></html>"""

REBIND_PAGE = """<!doctype html><html><head><title>Rebinding</title></head><body>
<h1>First answer public, then private</h1>
<img src="/secret">
<script>fetch("/secret").then(r => r.text()).then(t => document.title = "GOT " + t,
  e => document.title = "blocked");</script>
</body></html>"""

PLAIN_PAGE = """<!doctype html><html><head><title>Public page</title></head>
<body style="background:#246"><h1 style="color:#fff">A public page</h1></body></html>"""


class ScriptedResolver:
    """A resolver double: scripted answers per name, counting every call."""

    def __init__(self, table: dict[str, list[list[str]]]) -> None:
        self.table = table
        self.calls: dict[str, int] = {}

    async def resolve(self, host: str, port: int) -> list[Any]:
        from stage_producer.egress.resolver import ResolveError

        answers = self.table.get(host)
        if answers is None:
            raise ResolveError(f"{host} did not resolve: no such name in the test resolver")
        count = self.calls.get(host, 0)
        self.calls[host] = count + 1
        return [ipaddress.ip_address(a) for a in answers[min(count, len(answers) - 1)]]


class CatchAll(BaseHTTPRequestHandler):
    """Port 80 of every address in the namespace: pages on PUBLIC, a recorded hit elsewhere."""

    hits: list[dict[str, str]] = []

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        local = self.connection.getsockname()[0]
        local = local.removeprefix("::ffff:")
        if local != PUBLIC:
            CatchAll.hits.append(
                {"address": local, "path": self.path, "host": self.headers["Host"]}
            )
            self._send(200, "text/plain", b"SECRET")
            return
        path = self.path
        if path.startswith("/redirect?to="):
            self.send_response(302)
            self.send_header("Location", path.split("=", 1)[1])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/subresources":
            self._send(200, "text/html", SUBRESOURCE_PAGE.encode())
        elif path == "/rebind":
            self._send(200, "text/html", REBIND_PAGE.encode())
        else:
            self._send(200, "text/html", PLAIN_PAGE.encode())

    def _send(self, status: int, content_type: str, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class DualStackServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def setup_namespace() -> None:
    commands = [["ip", "link", "set", "lo", "up"]]
    commands += [["ip", "addr", "add", f"{a}/32", "dev", "lo"] for a in [PUBLIC, *PRIVATE_V4]]
    commands += [["ip", "-6", "addr", "add", f"{a}/128", "dev", "lo"] for a in PRIVATE_V6]
    for command in commands:
        subprocess.run(command, check=True, capture_output=True)


async def raw_proxy_request(proxy: Any, session: Any, row: Row) -> str:
    """Send one request straight to the proxy; return the refusal reason (or what came back)."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    creds = base64.b64encode(f"{session.id}:{session.password}".encode()).decode()
    if row.how == "proxy-connect":
        head = f"CONNECT {row.target} HTTP/1.1\r\nHost: {row.target}\r\n"
    else:
        head = f"GET {row.target} HTTP/1.1\r\nHost: x\r\n"
    writer.write(f"{head}Proxy-Authorization: Basic {creds}\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(10):
        answer = await reader.read(4096)
    writer.close()
    text = answer.decode("latin-1")
    status_line, _, rest = text.partition("\r\n")
    if " 403 " in status_line + " ":
        return rest.split("\r\n\r\n", 1)[-1].strip()
    return f"NOT REFUSED: {status_line}"


async def main() -> dict[str, Any]:
    from livestage.egress import EgressPolicy
    from stage_producer.capture.browser import (
        CaptureBrowser,
        CaptureError,
        CaptureOptions,
        CaptureRefused,
    )
    from stage_producer.egress.proxy import EgressProxy
    from tests.support.browser import chromium_path

    setup_namespace()
    server = DualStackServer(("::", 80), CatchAll)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    resolver = ScriptedResolver(DNS)
    proxy = await EgressProxy(EgressPolicy(), resolver, connect_timeout_s=2).start()
    browser = await CaptureBrowser(
        CaptureOptions(chromium_path=Path(chromium_path()), timeout_s=20), proxy
    ).start()
    results: dict[str, dict[str, Any]] = {}
    connected: list[str] = []
    extra: dict[str, Any] = {}

    def record(row: Row, refused: bool, reason: str) -> None:
        results[row.id] = {**asdict(row), "refused": refused, "reason": reason}

    async def capture(url: str) -> tuple[bool, str, Any]:
        try:
            shot = await browser.screenshot(url)
        except CaptureRefused as error:
            return True, str(error), None
        except CaptureError as error:
            return False, f"failed but not refused: {error}", None
        return False, "captured", shot

    try:
        # The control: a public page loads, so refusals below are not an accident of the setup.
        ok, reason, shot = await capture(f"http://{PUBLIC}/plain")
        extra["control"] = {"refused": ok, "reason": reason, "title": shot and shot.title}

        for row in ROWS:
            if row.how in ("proxy-get", "proxy-connect"):
                with proxy.session(1 << 20) as session:
                    reason = await raw_proxy_request(proxy, session, row)
                    connected += [e.address for e in session.events if e.address]
                record(row, not reason.startswith("NOT REFUSED"), reason)
            elif row.how == "capture":
                refused, reason, _ = await capture(row.target)
                record(row, refused, reason)

        page_rows = [row for row in ROWS if row.how == "page"]
        sessions: list[Any] = []
        original = proxy.session

        def spying_session(max_bytes: int) -> Any:
            manager = original(max_bytes)
            session = manager.__enter__()
            sessions.append(session)

            class Wrapper:
                def __enter__(self) -> Any:
                    return session

                def __exit__(self, *exc: Any) -> Any:
                    return manager.__exit__(*exc)

            return Wrapper()

        proxy.session = spying_session  # type: ignore[method-assign]
        refused_a, reason_a, shot_a = await capture("http://public.test/subresources")
        extra["rtc"] = shot_a.description if shot_a else None
        await asyncio.sleep(0)
        refused_b, reason_b, shot_b = await capture("http://rebind.test/rebind")
        proxy.session = original  # type: ignore[method-assign]
        extra["subresource_page"] = {"refused": refused_a, "reason": reason_a}
        extra["rebind_page"] = {
            "refused": refused_b,
            "reason": reason_b,
            "title": shot_b and shot_b.title,
        }
        events = [event for session in sessions for event in session.events]
        connected += [e.address for e in events if e.address]
        for row in page_rows:
            match = next(
                (
                    e
                    for e in events
                    if e.refused and (e.target == row.target or row.target in e.target)
                ),
                None,
            )
            record(row, match is not None, match.refused if match else "no refusal seen")
        extra["events"] = [asdict(e) for e in events]
    finally:
        await browser.close()
        await proxy.close()
        server.shutdown()

    return {
        "rows": results,
        "private_hits": CatchAll.hits,
        "connected": connected,
        "resolver_calls": resolver.calls,
        **extra,
    }


def run_in_namespace(timeout_s: float = 120) -> dict[str, Any]:
    """Run `main()` in a fresh network namespace and return its JSON result."""
    command = ["unshare", "--net", "--map-root-user", sys.executable, "-m", __name__]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s
    )
    if done.returncode != 0:
        raise RuntimeError(f"SSRF runner failed ({done.returncode}):\n{done.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main())))
