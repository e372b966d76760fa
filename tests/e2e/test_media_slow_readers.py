"""`/media` under slow readers (issue #17): the real stage producer's asset server behind a real
edge. Readers come from many addresses through the trusted-proxy header the edge honours, open
an asset and read nothing, or one byte a second, with a small receive buffer (as a slow phone
would); a normal viewer must still get a visual in under a second, the readers are cut off after
the stall timeout, and the per-client limits answer 429 naming the limit."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from livestage import metrics
from stage_producer.assets import AssetSigner, AssetStore
from stage_producer.server import AssetServer, create_asset_app
from tests.support.edge import RunningEdge, running_edge
from tests.support.waiting import until

KEY = b"stage-asset-key-for-tests-012345"
CLIP = bytes(range(256)) * (8 * 4096)  # 8 MiB: far more than socket buffers take in
BIG_PICTURE = b"\x89PNG" + bytes(range(256)) * 8192  # 2 MiB
PICTURE = b"\xff\xd8\xff" + bytes(range(256)) * 1200  # 300 KB, what a viewer loads


@dataclass
class Assets:
    clip: str
    big_picture: str
    picture: str


@dataclass
class Stack:
    """The stage producer's asset server with the three assets, and a way to start an edge in
    front of it (trusting 127.0.0.1 as a proxy; refusals counted in `reader`)."""

    urls: Assets
    edge: Callable[..., AbstractAsyncContextManager[RunningEdge]]
    reader: InMemoryMetricReader

    def refusals(self) -> dict[str, int]:
        return refusals(self.reader)


@pytest.fixture
async def stack(  # type: ignore[no-untyped-def]
    tmp_path: Path, nats_server, redis_server, livekit_server
) -> AsyncIterator[Stack]:
    store = AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 26)
    signer = AssetSigner(KEY)
    expires = int(time.time()) + 600
    urls = Assets(
        *(
            signer.url(store.put(data, ext).name, expires)
            for data, ext in ((CLIP, "webm"), (BIG_PICTURE, "png"), (PICTURE, "jpg"))
        )
    )
    server = await AssetServer(create_asset_app(store, signer), "127.0.0.1", 0).start()
    reader = InMemoryMetricReader()
    counter = metrics.counter(
        metrics.MEDIA_REFUSED, MeterProvider(metric_readers=[reader]).get_meter("test")
    )

    def edge(**settings: Any) -> AbstractAsyncContextManager[RunningEdge]:
        return running_edge(
            nats_server,
            redis_server,
            livekit_server,
            stage_media_url=f"http://127.0.0.1:{server.port}",
            trusted_proxies=["127.0.0.1/32"],
            media_refused_counter=counter,
            **settings,
        )

    try:
        yield Stack(urls, edge, reader)
    finally:
        await server.close()


def refusals(reader: InMemoryMetricReader) -> dict[str, int]:
    data = reader.get_metrics_data()
    counts: dict[str, int] = {}
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == metrics.MEDIA_REFUSED.name:
                    for point in metric.data.data_points:  # type: ignore[union-attr]
                        reason = str(point.attributes["reason"])  # type: ignore[index]
                        counts[reason] = counts.get(reason, 0) + int(point.value)  # type: ignore[union-attr]
    return counts


class SlowReader:
    """A raw HTTP/1.1 client with a 4 KiB receive buffer that reads nothing, or a byte a second."""

    def __init__(self, sock: socket.socket, pace: bool) -> None:
        self.sock = sock
        self.task = asyncio.create_task(self._read() if pace else self._idle())

    @classmethod
    async def open(cls, edge: RunningEdge, path: str, address: str, pace: bool) -> SlowReader:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", int(edge.url.rsplit(":", 1)[1])))
        request = f"GET {path} HTTP/1.1\r\nHost: edge\r\nX-Forwarded-For: {address}\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        return cls(sock, pace)

    async def _idle(self) -> None:
        await asyncio.Event().wait()  # takes nothing until closed

    async def _read(self) -> None:
        loop = asyncio.get_running_loop()
        with contextlib.suppress(OSError):
            while await loop.sock_recv(self.sock, 1):  # noqa: ASYNC110 - a pace, not a wait
                await asyncio.sleep(1)  # the pace of a slow reader is what is under test

    def close(self) -> None:
        self.task.cancel()
        self.sock.close()


async def test_slow_readers_cannot_keep_a_viewer_from_a_visual(stack: Stack) -> None:
    urls = stack.urls
    readers: list[SlowReader] = []
    async with (
        asyncio.timeout(90),
        stack.edge(media_stall_timeout_s=10) as edge,
        httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=10) as viewer,
    ):
        guard = edge.services.media
        viewing = {"X-Forwarded-For": "192.0.2.7"}
        # the viewer has the page open (its client warmed up) and has seen a visual already
        assert (await viewer.get(urls.picture, headers=viewing)).status_code == 200
        try:
            # 100 slow readers from 50 addresses: 80 on the clip, 20 on the big picture
            readers = list(
                await asyncio.gather(
                    *(
                        SlowReader.open(
                            edge,
                            urls.clip if n < 80 else urls.big_picture,
                            f"10.0.{n // 2}.1",
                            pace=n % 2 == 1,
                        )
                        for n in range(100)
                    )
                )
            )
            # every slow reader is in: the clip slots are all held (the clip readers past them
            # were refused), and the picture's readers hold what was read for them
            await until(
                lambda: (
                    guard.streams.in_use == guard.streams.size
                    and guard.clients.in_flight() == guard.streams.size + 20
                    and stack.refusals().get("busy") == 80 - guard.streams.size
                ),
                20,
                "the slow readers to hold every clip slot",
            )
            started = time.monotonic()
            response = await viewer.get(urls.picture, headers=viewing)
            elapsed = time.monotonic() - started
            print(f"viewer's visual with {len(readers)} slow readers: {elapsed * 1000:.0f} ms")
            assert response.status_code == 200, response.text
            assert response.content == PICTURE
            assert elapsed < 1.0, f"the visual took {elapsed:.2f} s"

            # The stall timeout cuts every slow reader off and frees its slots...
            await until(
                lambda: guard.streams.in_use == 0 and guard.clients.in_flight() == 0,
                30,
                "every slow reader to be cut off",
            )
            # ...and the connections are gone at once (aborted, nothing left buffered)
            await until(
                lambda: len(edge.server.server_state.connections) <= 1,
                30,
                "the edge to drop the slow readers' connections",
            )
            clip = await viewer.get(urls.clip, headers=viewing)
            assert clip.status_code == 200 and clip.content == CLIP
        finally:
            for slow in readers:
                slow.close()
    refused = stack.refusals()
    assert refused.get("stalled", 0) >= guard.streams.size, refused
    assert refused.get("stalled", 0) + refused.get("busy", 0) >= 80, refused


async def test_per_client_streams_and_rate_are_429_naming_the_limit(stack: Stack) -> None:
    urls = stack.urls
    async with (
        asyncio.timeout(60),
        stack.edge(media_streams_per_client=2, rate_media_per_network="4/minute") as edge,
        httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=10) as client,
    ):
        guard = edge.services.media
        holders = [await SlowReader.open(edge, urls.clip, "10.1.0.1", pace=False) for _ in "ab"]
        try:
            await until(lambda: guard.clients.in_flight("10.1.0.1") == 2, 10, "two streams")
            third = await client.get(urls.picture, headers={"X-Forwarded-For": "10.1.0.1"})
            assert third.status_code == 429, third.text
            assert int(third.headers["retry-after"]) >= 1
            assert "media-streams-per-client" in third.json()["detail"]
            other = await client.get(urls.picture, headers={"X-Forwarded-For": "10.1.0.2"})
            assert other.status_code == 200 and other.content == PICTURE
        finally:
            for holder in holders:
                holder.close()
        # a reader that leaves frees its slot at once
        await until(lambda: guard.clients.in_flight() == 0, 10, "the readers' slots back")
        again = await client.get(urls.picture, headers={"X-Forwarded-For": "10.1.0.1"})
        assert again.status_code == 200

        codes = [
            (await client.get(urls.picture, headers={"X-Forwarded-For": "10.2.0.1"})).status_code
            for _ in range(4)
        ]
        assert codes == [200] * 4
        over = await client.get(urls.picture, headers={"X-Forwarded-For": "10.2.0.1"})
        assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1
        assert "media-network" in over.json()["detail"]
    assert stack.refusals() == {"client_streams": 1, "rate": 1}
