"""A TCP stand-in in front of a real server, for tests of timeouts and call counts.

    async with TcpDouble(target=("127.0.0.1", livekit.port)) as double:
        double.mode = "blackhole"     # accept, read everything, never answer
        ... point a client at double.port ...
        double.mode = "forward"       # new connections reach the target again
        double.requests               # HTTP requests seen on forwarded connections

A connection keeps the mode it was accepted in, so switching to "forward" does not rescue a
request already swallowed. Listens on 127.0.0.1 only; everything is closed on exit.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Literal, Self

Mode = Literal["forward", "blackhole"]
# The start of an HTTP/1.1 request line, as clients write them (one per request).
_REQUEST_LINE = re.compile(rb"(?:^|\r\n)(?:GET|POST|PUT|DELETE|PATCH|HEAD) /[^ ]* HTTP/1\.[01]\r\n")


class TcpDouble:
    def __init__(self, target: tuple[str, int] | None = None, mode: Mode = "forward") -> None:
        self.target = target
        self.mode: Mode = mode
        self.requests: list[bytes] = []  # request lines seen on forwarded connections
        self.accepted = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        assert self._server is not None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        self._writers.add(writer)
        try:
            if self.mode == "blackhole" or self.target is None:
                while await reader.read(65536):
                    pass  # swallow; never answer
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            self._writers.add(upstream_writer)
            await asyncio.gather(
                self._pipe(reader, upstream_writer, count=True),
                self._pipe(upstream_reader, writer, count=False),
            )
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool
    ) -> None:
        try:
            while data := await reader.read(65536):
                if count:
                    self.requests.extend(m.group(0).strip() for m in _REQUEST_LINE.finditer(data))
                writer.write(data)
                await writer.drain()
        finally:
            with contextlib.suppress(Exception):
                writer.close()
