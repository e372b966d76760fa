"""The capture browser's only way out: an HTTP proxy that checks, pins and then connects.

Chromium is launched with this proxy for everything (`<-loopback>` keeps even loopback on it)
and with `--host-resolver-rules=MAP * ~NOTFOUND`, so it can neither resolve a name nor reach an
address by itself. For every request — the page, each redirect, each subresource, each
WebSocket (a CONNECT) — the proxy:

1. reads the target (`CONNECT host:port` or an absolute `http://` URL) and checks its spelling,
   literal address and port (`livestage.egress.EgressPolicy`);
2. resolves the name once and checks every address it got (`address_refusal`);
3. connects to one of exactly those addresses (never to the name again).

A refusal answers 403 with the reason in the body and in `X-Livestage-Egress-Refused`, and is
recorded in the capture's `EgressSession`. Each capture has its own session, identified by
Basic proxy credentials (random per session): the proxy is of no use to anyone without them,
and it counts each session's bytes against its limit.

Pages this package ships are served by the proxy itself under `http://pages.livestage.invalid/`
(`.invalid` never resolves anywhere), so the shipped sources need no network at all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import mimetypes
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import unquote, urlsplit

from livestage.egress import EgressPolicy, IPAddress, Refusal, Target

from .resolver import ResolveError, Resolver, SystemResolver

log = logging.getLogger(__name__)

FIRST_PARTY_HOST: Final = "pages.livestage.invalid"
FIRST_PARTY_ORIGIN: Final = f"http://{FIRST_PARTY_HOST}"
REFUSED_HEADER: Final = "X-Livestage-Egress-Refused"

_MAX_HEAD_BYTES = 32 * 1024
_CHUNK = 64 * 1024
_LINGER_S = 2.0
DEFAULT_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
    "host",
}


@dataclass
class EgressEvent:
    """One request the browser made through the proxy, and what became of it."""

    method: str
    target: str
    address: str = ""
    refused: str = ""


@dataclass
class EgressSession:
    """One capture's use of the proxy: its credentials, bytes and every request it made."""

    id: str
    password: str
    max_bytes: int
    bytes_down: int = 0
    events: list[EgressEvent] = field(default_factory=list)
    limit_hit: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def over_limit(self) -> bool:
        return self.bytes_down > self.max_bytes

    @property
    def limit_reason(self) -> str:
        return f"capture size limit of {self.max_bytes} bytes (STAGE_CAPTURE_MAX_BYTES)"

    @property
    def refusals(self) -> list[EgressEvent]:
        return [event for event in self.events if event.refused]

    def refusal_for(self, url: str) -> str | None:
        """The reason a request for `url` (or its host) was refused, if it was."""
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        for event in self.events:
            if event.refused and (event.target == url or host and host in event.target.lower()):
                return event.refused
        return None


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.reason)
        self.refusal = refusal


class EgressProxy:
    """An HTTP/CONNECT proxy on 127.0.0.1 that lets through only checked, pinned connections."""

    def __init__(
        self,
        policy: EgressPolicy,
        resolver: Resolver | None = None,
        *,
        first_party_dir: Path | None = None,
        connect_timeout_s: float = 5.0,
        idle_timeout_s: float = 20.0,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    ) -> None:
        self.policy = policy
        self.resolver: Resolver = resolver or SystemResolver()
        self.first_party_dir = first_party_dir.resolve() if first_party_dir else None
        self.connect_timeout_s = connect_timeout_s
        self.idle_timeout_s = idle_timeout_s
        self.max_body_bytes = max_body_bytes
        self._sessions: dict[str, EgressSession] = {}
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def start(self, port: int = 0) -> EgressProxy:
        self._server = await asyncio.start_server(
            self._handle, self.host, port, limit=_MAX_HEAD_BYTES
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    @contextlib.contextmanager
    def session(self, max_bytes: int) -> Iterator[EgressSession]:
        """Credentials for one capture; they stop working when the block ends."""
        session = EgressSession(
            id="cap-" + secrets.token_hex(6),
            password=secrets.token_urlsafe(18),
            max_bytes=max_bytes,
        )
        self._sessions[session.id] = session
        try:
            yield session
        finally:
            self._sessions.pop(session.id, None)

    # --- one client connection ------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass
        except asyncio.LimitOverrunError:
            await _reply(writer, 431, "request head too large")
        except Exception:
            log.exception("egress proxy: unexpected error")
        finally:
            if task is not None:
                self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with asyncio.timeout(self.idle_timeout_s):
            head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        try:
            method, target, _version = lines[0].split(" ")
        except ValueError:
            await _reply(writer, 400, "malformed request line")
            return
        headers = [tuple(line.split(":", 1)) for line in lines[1:] if ":" in line]
        header_map = {name.strip().lower(): value.strip() for name, value in headers}
        session = self._authenticate(header_map.get("proxy-authorization", ""))
        if session is None:
            await _reply(
                writer,
                407,
                "proxy credentials required",
                {"Proxy-Authenticate": 'Basic realm="livestage-egress"'},
            )
            return
        event = EgressEvent(method=method, target=target)
        session.events.append(event)
        try:
            if session.over_limit:
                raise _Refused(Refusal(session.limit_reason))
            if method == "CONNECT":
                await self._tunnel(session, event, target, reader, writer)
            else:
                await self._forward(session, event, method, target, headers, reader, writer)
        except _Refused as refused:
            event.refused = refused.refusal.reason
            log.info("egress refused %s %s: %s", method, target, event.refused)
            await _reply(writer, 403, event.refused, {REFUSED_HEADER: _ascii(event.refused)})

    def _authenticate(self, header: str) -> EgressSession | None:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(encoded.strip()).decode().partition(":")
        except ValueError:
            return None
        session = self._sessions.get(user)
        if session is None or not secrets.compare_digest(session.password, password):
            return None
        return session

    async def _checked_addresses(self, target: Target) -> list[IPAddress]:
        """Resolve once and check every answer: the only addresses a connection may use."""
        if target.address is not None:
            return [target.address]
        try:
            addresses = await self.resolver.resolve(target.host, target.port)
        except ResolveError as error:
            raise _Refused(Refusal(str(error))) from error
        if not addresses:
            raise _Refused(Refusal(f"{target.host} did not resolve to any address"))
        for address in addresses:
            refusal = self.policy.address_refusal(address)
            if refusal is not None:
                raise _Refused(Refusal(f"{target.host} resolved to {refusal.reason}"))
        return addresses

    async def _connect(
        self, target: Target, addresses: list[IPAddress], event: EgressEvent
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        last_error: Exception | None = None
        for address in addresses:
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    pair = await asyncio.open_connection(str(address), target.port)
            except (OSError, TimeoutError) as error:
                last_error = error
                continue
            event.address = str(address)
            return pair
        raise ConnectionRefusedError(f"could not connect to {target.authority}: {last_error!r}")

    async def _tunnel(
        self,
        session: EgressSession,
        event: EgressEvent,
        authority: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        host, _, port_text = authority.rpartition(":")
        if not host or not port_text.isdigit():
            raise _Refused(Refusal(f"CONNECT target {authority!r} is not host:port"))
        if host.strip("[]").lower() == FIRST_PARTY_HOST:
            raise _Refused(Refusal(f"{FIRST_PARTY_HOST} is served over plain http only"))
        checked = self.policy.check_authority("https", host, int(port_text))
        if isinstance(checked, Refusal):
            raise _Refused(checked)
        upstream = await self._upstream(checked, event, writer)
        if upstream is None:
            return
        upstream_reader, upstream_writer = upstream
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        await self._pipe(session, reader, writer, upstream_reader, upstream_writer)

    async def _upstream(
        self, checked: Target, event: EgressEvent, writer: asyncio.StreamWriter
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter] | None:
        """A connection to the checked address (resolved and checked here, once), or None once
        the browser was answered 502."""
        addresses = await self._checked_addresses(checked)
        try:
            return await self._connect(checked, addresses, event)
        except OSError as error:
            await _reply(writer, 502, str(error))
            return None

    async def _forward(
        self,
        session: EgressSession,
        event: EgressEvent,
        method: str,
        url: str,
        headers: list[tuple[str, ...]],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        checked = self.policy.check_url(url)
        parts = urlsplit(url)
        if (parts.hostname or "").lower() == FIRST_PARTY_HOST and parts.scheme == "http":
            await self._first_party(method, parts.path, writer)
            return
        if isinstance(checked, Refusal):
            raise _Refused(checked)
        body_length = body_length_or_refusal(headers, self.max_body_bytes)
        if isinstance(body_length, tuple):
            status, why = body_length
            event.refused = why
            log.info("egress refused %s %s: %s", method, url[:200], why)
            await _reply(writer, status, why, {REFUSED_HEADER: _ascii(why)})
            await self._linger(reader, writer)
            return
        upstream = await self._upstream(checked, event, writer)
        if upstream is None:
            return
        upstream_reader, upstream_writer = upstream
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        host_header = checked.host if ":" not in checked.host else f"[{checked.host}]"
        if checked.port != 80:
            host_header += f":{checked.port}"
        out = [f"{method} {path} HTTP/1.1", f"Host: {host_header}", "Connection: close"]
        out += [
            f"{name.strip()}: {value.strip()}"
            for name, value in headers
            if name.strip().lower() not in _HOP_BY_HOP
        ]
        upstream_writer.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        await upstream_writer.drain()
        await self._send_body(reader, upstream_writer, body_length)
        await self._copy(session, upstream_reader, writer)
        upstream_writer.close()

    async def _linger(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """After refusing a body: end our side and discard (never keep) what the page still
        sends, for a moment, so closing does not reset the connection before it read the answer."""
        with contextlib.suppress(ConnectionError, OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
        discarded = 0
        with contextlib.suppress(TimeoutError, ConnectionError):
            async with asyncio.timeout(_LINGER_S):
                while discarded <= self.max_body_bytes and (chunk := await reader.read(_CHUNK)):
                    discarded += len(chunk)

    async def _send_body(
        self, reader: asyncio.StreamReader, sink: asyncio.StreamWriter, length: int
    ) -> None:
        """Stream exactly `length` body bytes (already checked against the cap) in chunks: never
        the whole body in memory."""
        left = length
        while left:
            async with asyncio.timeout(self.idle_timeout_s):
                chunk = await reader.read(min(left, _CHUNK))
            if not chunk:
                raise asyncio.IncompleteReadError(b"", left)
            left -= len(chunk)
            sink.write(chunk)
            await sink.drain()

    async def _pipe(
        self,
        session: EgressSession,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream_reader: asyncio.StreamReader,
        upstream_writer: asyncio.StreamWriter,
    ) -> None:
        up = asyncio.create_task(self._copy(None, client_reader, upstream_writer))
        down = asyncio.create_task(self._copy(session, upstream_reader, client_writer))
        try:
            await asyncio.wait({up, down}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (up, down):
                task.cancel()
            await asyncio.gather(up, down, return_exceptions=True)
            upstream_writer.close()

    async def _copy(
        self,
        session: EgressSession | None,
        source: asyncio.StreamReader,
        sink: asyncio.StreamWriter,
    ) -> None:
        while True:
            async with asyncio.timeout(self.idle_timeout_s):
                chunk = await source.read(64 * 1024)
            if not chunk:
                return
            if session is not None:
                session.bytes_down += len(chunk)
                if session.over_limit:
                    session.events.append(EgressEvent("-", "-", refused=session.limit_reason))
                    session.limit_hit.set()
                    return
            sink.write(chunk)
            await sink.drain()

    async def _first_party(self, method: str, raw_path: str, writer: asyncio.StreamWriter) -> None:
        if self.first_party_dir is None or method not in ("GET", "HEAD"):
            await _reply(writer, 404, "no such page")
            return
        relative = unquote(raw_path).lstrip("/") or "index.html"
        path = (self.first_party_dir / relative).resolve()
        if not path.is_relative_to(self.first_party_dir) or not path.is_file():
            await _reply(writer, 404, "no such page")
            return
        body = path.read_bytes()
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if content_type.startswith("text/"):
            content_type += "; charset=utf-8"
        head = (
            f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode() + (body if method == "GET" else b""))
        await writer.drain()


def body_length_or_refusal(
    headers: Sequence[tuple[str, ...]], max_body_bytes: int
) -> int | tuple[int, str]:
    """The request body's length from its headers, or (status, reason) when the proxy will not
    forward it: a chunked body (411, its length must be known to be capped), a bad or repeated
    Content-Length (400) or one over the cap (413, STAGE_EGRESS_MAX_BODY_BYTES)."""
    names = [name.strip().lower() for name, *_ in headers]
    lengths = {value.strip() for name, value in headers if name.strip().lower() == "content-length"}
    if "transfer-encoding" in names:
        return 411, (
            "chunked request bodies are not forwarded by the capture proxy: "
            "send a Content-Length (at most "
            f"{max_body_bytes} bytes, STAGE_EGRESS_MAX_BODY_BYTES)"
        )
    if len(lengths) > 1:
        return 400, "more than one Content-Length"
    text = lengths.pop() if lengths else "0"
    if not text.isascii() or not text.isdigit() or len(text) > 19:
        return 400, "Content-Length is not a whole number of bytes"
    length = int(text)
    if length > max_body_bytes:
        return 413, (
            f"request body of {length} bytes is over the capture proxy's limit of "
            f"{max_body_bytes} bytes (STAGE_EGRESS_MAX_BODY_BYTES)"
        )
    return length


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode()[:300]


_REASONS = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    407: "Proxy Authentication Required",
    411: "Length Required",
    413: "Content Too Large",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
}


async def _reply(
    writer: asyncio.StreamWriter, status: int, text: str, headers: dict[str, str] | None = None
) -> None:
    body = (text + "\n").encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
        "Content-Type: text/plain; charset=utf-8",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{name}: {value}" for name, value in (headers or {}).items()),
    ]
    with contextlib.suppress(ConnectionError):
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
