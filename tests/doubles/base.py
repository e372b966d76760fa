"""What every API double shares: an aiohttp server on 127.0.0.1, a request log, injected faults.

A double is an async context manager that binds a free port (or the one you give it), serves
until the block ends, and keeps everything it received::

    async with SomeDouble() as double:
        client = make_client(base_url=double.base_url)   # http://127.0.0.1:PORT/v1
        ...
        assert double.requests[-1].path == "/v1/..."

Faults are chosen at runtime and apply to the next requests the double serves::

    double.fail(Fault.HTTP_500)            # every request until heal()
    double.fail(Fault.HANG, times=1)       # only the next request
    double.heal()

``Fault.HANG`` never answers: the request stays open until the client gives up or the double
stops (stopping releases every hung request at once, so a test never waits on it). Each double
lists the faults it understands in ``supported_faults``; asking for another is a ``ValueError``.

As pytest fixtures (function scope keeps faults and logs from leaking between tests)::

    @pytest.fixture
    async def realtime():
        async with OpenAIRealtimeDouble() as double:
            yield double

Standalone, for poking at it by hand: ``python -m tests.doubles.openai_chat --port 8765``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType
from typing import Any, ClassVar, Self, TypeVar

from aiohttp import web

from tests.support.waiting import Changed

HOST = "127.0.0.1"
T = TypeVar("T")
log = logging.getLogger("tests.doubles")


class Fault(StrEnum):
    """Ways a double can misbehave. Not every double supports every fault."""

    HTTP_500 = "http_500"
    """Answer 500 with an error body in the API's own error shape."""
    HTTP_401 = "http_401"
    """Answer 401 (bad key) with an error body in the API's own error shape."""
    HANG = "hang"
    """Accept the connection, read the request, never answer."""
    CLOSE_MID_STREAM = "close_mid_stream"
    """Start answering (a stream, a WebSocket reply), then drop the connection mid-way."""
    SILENT = "silent"
    """WebSocket only: accept the upgrade, then never send a single event."""
    AUTH_ERROR_EVENT = "auth_error_event"
    """WebSocket only: accept the upgrade, send an ``invalid_api_key`` error event, close."""
    NO_VIDEO = "no_video"
    """Avatar only: accept the session and join the room, but never publish video."""


@dataclass
class RecordedRequest:
    """One HTTP request as the double received it (WebSocket upgrades included)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    received_at: float = field(default_factory=time.monotonic)
    fault: Fault | None = None
    """The fault this request was answered with, if any."""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def bearer(self) -> str | None:
        """The token of an ``Authorization: Bearer ...`` header, if there is one."""
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None


class _FaultPlan:
    def __init__(self) -> None:
        self.fault: Fault | None = None
        self.remaining: int | None = None

    def set(self, fault: Fault, times: int | None) -> None:
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for 'until heal()'), not {times}")
        self.fault, self.remaining = fault, times

    def clear(self) -> None:
        self.fault, self.remaining = None, None

    def take(self) -> Fault | None:
        fault = self.fault
        if fault is not None and self.remaining is not None:
            self.remaining -= 1
            if self.remaining == 0:
                self.clear()
        return fault


class DoubleServer:
    """Base of the doubles: lifecycle, port, request log, fault plan, waiting helpers.

    Subclasses add routes in ``routes()`` and call ``self.record(request)`` first thing in
    each handler; ``record`` also takes the next planned fault (see ``RecordedRequest.fault``).
    """

    supported_faults: ClassVar[frozenset[Fault]] = frozenset()
    name: ClassVar[str] = "double"

    def __init__(
        self, *, port: int = 0, fault: Fault | None = None, api_key: str | None = None
    ) -> None:
        """``port``: 0 for a free one; ``fault``: fail from the start (see ``fail``);
        ``api_key``: when set, any other bearer token gets a 401 (else any key is fine)."""
        self.api_key = api_key
        self._requested_port = port
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._faults = _FaultPlan()
        self._stopping = asyncio.Event()
        self._changed = Changed()
        self.requests: list[RecordedRequest] = []
        if fault is not None:
            self.fail(fault)

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError(f"{self.name} is not started: use `async with` or await start()")
        return self._port

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (no path)."""
        return f"http://{HOST}:{self.port}"

    def routes(self) -> list[web.RouteDef]:
        raise NotImplementedError

    async def start(self) -> Self:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.add_routes(self.routes())
        app.on_response_prepare.append(_add_request_id)
        # a hung handler must not hold the shutdown: stop() releases them, this bounds the rest
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, self._requested_port))
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        log.debug("%s listening on %s", self.name, self.url)
        return self

    async def stop(self) -> None:
        self._stopping.set()
        await self.on_stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def on_stop(self) -> None:
        """Subclass hook, before the HTTP server shuts down (close sockets, leave rooms)."""

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- faults ------------------------------------------------------------------------------

    def fail(self, fault: Fault | str, *, times: int | None = None) -> None:
        """Answer the next ``times`` requests (all, with None) with ``fault`` until ``heal()``."""
        fault = Fault(fault)
        if fault not in self.supported_faults:
            supported = ", ".join(sorted(f.value for f in self.supported_faults))
            raise ValueError(
                f"{self.name} does not support fault {fault.value!r}; it has: {supported}"
            )
        self._faults.set(fault, times)

    def heal(self) -> None:
        """Stop injecting faults."""
        self._faults.clear()

    @property
    def planned_fault(self) -> Fault | None:
        return self._faults.fault

    # -- recording ---------------------------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        """Log ``request`` (body read in full) and take the next planned fault for it."""
        body = await request.read() if request.can_read_body else b""
        entry = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
            fault=self._faults.take(),
        )
        self.requests.append(entry)
        self.notify()
        return entry

    def notify(self) -> None:
        """Wake ``wait_until`` callers: call after changing anything they may be waiting on."""
        self._changed.notify()

    async def wait_until(self, condition: Callable[[], T | None], within: float = 10.0) -> T:
        """Wait (bounded) until ``condition()`` is truthy and return its value.

        It is re-checked whenever the double records something, so no polling interval.
        """
        return await self._changed.until(condition, within, f"{self.name} double")

    async def hang(self) -> None:
        """Never answer (until the double stops); for ``Fault.HANG`` handlers."""
        await self._stopping.wait()

    def requests_to(self, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == path]


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    # as the real APIs do; the openai client exposes it as `request_id` (the TTS plugin warns
    # when it is missing)
    response.headers.setdefault("x-request-id", f"req_{secrets.token_hex(12)}")


def error_response(status: int, message: str, *, type_: str, code: str | None) -> web.Response:
    """An error in the OpenAI error-body shape (Anam's is close enough for the plugin)."""
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return web.json_response(body, status=status)


async def openai_refusal(
    double: DoubleServer, entry: RecordedRequest, api_key: str | None
) -> web.StreamResponse | None:
    """What an OpenAI endpoint of `double` answers to an injected fault or a wrong key (500,
    401, or no answer until the double stops), or None to go on with the request."""
    if entry.fault is Fault.HTTP_500:
        return error_response(
            500,
            "The server had an error while processing your request.",
            type_="server_error",
            code=None,
        )
    if entry.fault is Fault.HTTP_401 or (api_key and entry.bearer != api_key):
        return error_response(
            401,
            "Incorrect API key provided.",
            type_="invalid_request_error",
            code="invalid_api_key",
        )
    if entry.fault is Fault.HANG:
        await double.hang()
        return web.Response(status=503)
    return None


def serve_forever(make: Callable[[int], DoubleServer], argv: list[str] | None = None) -> None:
    """``python -m tests.doubles.<name> [--port N]``: run one double until Ctrl-C."""
    parser = argparse.ArgumentParser(description="Run an API double on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    async def main() -> None:
        async with make(args.port) as double:
            print(f"{double.name} on {double.url} (Ctrl-C stops it)", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
