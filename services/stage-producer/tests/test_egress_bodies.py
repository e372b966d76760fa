"""Request bodies through the egress proxy: streamed upstream in chunks, capped
(STAGE_EGRESS_MAX_BODY_BYTES: over it → 413 and the upstream gets nothing), chunked bodies refused
clearly. A real local upstream on 127.0.0.1 (test-only loopback switch on)."""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from livestage.egress import EgressPolicy
from stage_producer.capture.browser import CaptureBrowser, CaptureOptions
from stage_producer.egress.proxy import REFUSED_HEADER, EgressProxy, body_length_or_refusal
from tests.support.browser import chromium_path

CAP = 256 * 1024


@dataclass
class Upstream:
    """An HTTP server that reads a request's body and answers its length and SHA-256."""

    port: int = 0
    connections: int = 0
    body_bytes: int = 0
    server: asyncio.Server | None = field(default=None, repr=False)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
            length = 0
            for line in head.split("\r\n")[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            digest = hashlib.sha256()
            left = length
            while left:
                chunk = await reader.read(min(left, 65536))
                if not chunk:
                    break
                self.body_bytes += len(chunk)
                digest.update(chunk)
                left -= len(chunk)
            body = f"{length - left}:{digest.hexdigest()}".encode()
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@pytest.fixture
async def upstream() -> AsyncIterator[Upstream]:
    up = Upstream()
    up.server = await asyncio.start_server(up.handle, "127.0.0.1", 0)
    up.port = up.server.sockets[0].getsockname()[1]
    yield up
    up.server.close()
    await up.server.wait_closed()


@pytest.fixture
async def proxy() -> AsyncIterator[EgressProxy]:
    started = await EgressProxy(
        EgressPolicy(allow_test_loopback=True), max_body_bytes=CAP, idle_timeout_s=5.0
    ).start()
    yield started
    await started.close()


async def post(
    proxy: EgressProxy, port: int, headers: dict[str, str], body: bytes
) -> tuple[int, dict[str, str], bytes]:
    """Send one POST through the proxy (as Chromium does: absolute URL, Basic credentials)."""
    with proxy.session(1 << 30) as session:
        token = base64.b64encode(f"{session.id}:{session.password}".encode()).decode()
        reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
        lines = [
            f"POST http://127.0.0.1:{port}/upload HTTP/1.1",
            f"Host: 127.0.0.1:{port}",
            f"Proxy-Authorization: Basic {token}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for offset in range(0, len(body), 65536):
                writer.write(body[offset : offset + 65536])
                await writer.drain()
            writer.write_eof()
        except ConnectionError:
            pass  # the proxy answered and closed before taking it all
        async with asyncio.timeout(10):
            answer = await reader.read()
        writer.close()
    head, _, content = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer_headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    return int(status_line.split(" ")[1]), answer_headers, content


async def test_a_body_within_the_cap_is_forwarded_whole(
    proxy: EgressProxy, upstream: Upstream
) -> None:
    body = bytes(range(256)) * (CAP // 256)  # exactly the cap, several chunks
    status, _, content = await post(proxy, upstream.port, {"Content-Length": str(len(body))}, body)
    assert status == 200
    assert content.decode() == f"{len(body)}:{hashlib.sha256(body).hexdigest()}"


async def test_a_body_over_the_cap_is_refused_and_never_reaches_upstream(
    proxy: EgressProxy, upstream: Upstream
) -> None:
    body = b"x" * (CAP + 1)
    status, headers, content = await post(
        proxy, upstream.port, {"Content-Length": str(len(body))}, body
    )
    assert status == 413
    assert "STAGE_EGRESS_MAX_BODY_BYTES" in content.decode()
    assert "STAGE_EGRESS_MAX_BODY_BYTES" in headers[REFUSED_HEADER.lower()]
    assert upstream.body_bytes <= CAP
    assert upstream.connections == 0


async def test_a_gibibyte_post_is_refused_before_any_of_it_is_read(
    proxy: EgressProxy, upstream: Upstream
) -> None:
    status, _, content = await post(
        proxy, upstream.port, {"Content-Length": str(1 << 30)}, b"y" * 65536
    )
    assert status == 413 and f"{1 << 30} bytes" in content.decode()
    assert upstream.connections == 0


async def test_chunked_bodies_are_refused_with_the_reason(
    proxy: EgressProxy, upstream: Upstream
) -> None:
    status, _, content = await post(
        proxy, upstream.port, {"Transfer-Encoding": "chunked"}, b"5\r\nhello\r\n0\r\n\r\n"
    )
    assert status == 411 and "chunked" in content.decode()
    assert upstream.connections == 0


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([], 0),
        ([("Content-Length", " 9 ")], 9),
        ([("Content-Length", "10"), ("content-length", "10")], 10),
        ([("Content-Length", "10"), ("Content-Length", "11")], (400, "more than one")),
        ([("Content-Length", "-1")], (400, "whole number")),
        ([("Content-Length", "1e3")], (400, "whole number")),
        ([("Content-Length", "٣")], (400, "whole number")),
        ([("Content-Length", "11")], (413, "limit of 10 bytes")),
        ([("Transfer-Encoding", "chunked")], (411, "chunked")),
    ],
)
def test_body_lengths_are_read_strictly(
    headers: list[tuple[str, str]], expected: int | tuple[int, str]
) -> None:
    got = body_length_or_refusal(headers, 10)
    if isinstance(expected, int):
        assert got == expected
    else:
        assert isinstance(got, tuple) and got[0] == expected[0] and expected[1] in got[1], got


@pytest.mark.browser
async def test_a_captured_page_posting_over_the_cap_gets_413(test_site: str) -> None:
    """Chromium itself, posting from a page: it reads the 413 (the proxy lingers before
    closing, so the answer is not lost to a reset); a small body still goes out."""
    proxy = await EgressProxy(EgressPolicy(allow_test_loopback=True), max_body_bytes=CAP).start()
    browser = CaptureBrowser(CaptureOptions(chromium_path=Path(chromium_path())), proxy)
    try:
        big = await browser.screenshot(f"{test_site}/post.html?kib={4 * CAP // 1024}")
        assert big.title == "status 413"
        # SimpleHTTPRequestHandler has no POST: its 501 shows the body was let through.
        small = await browser.screenshot(f"{test_site}/post.html?kib=16")
        assert small.title == "status 501"
    finally:
        await browser.close()
        await proxy.close()
