"""Stage assets through the edge (`GET /media/...`, the page's own origin): the stage
producer's asset server checks the signature, the edge streams what it answers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from stage_producer.assets import AssetSigner, AssetStore
from stage_producer.server import AssetServer, create_asset_app
from tests.support.edge import running_edge
from tests.support.services import free_port

KEY = b"stage-asset-key-for-tests-012345"


@dataclass
class Stack:
    edge: httpx.AsyncClient
    store: AssetStore
    signer: AssetSigner


@pytest.fixture
async def stack(tmp_path: Path, nats_server, redis_server, livekit_server) -> AsyncIterator[Stack]:  # type: ignore[no-untyped-def]
    store = AssetStore(tmp_path, max_total_bytes=1 << 30, max_asset_bytes=1 << 26)
    signer = AssetSigner(KEY)
    assets = await AssetServer(create_asset_app(store, signer), "127.0.0.1", 0).start()
    try:
        async with (
            running_edge(
                nats_server,
                redis_server,
                livekit_server,
                stage_media_url=f"http://127.0.0.1:{assets.port}",
            ) as edge,
            httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=30) as client,
        ):
            yield Stack(client, store, signer)
    finally:
        await assets.close()


async def test_a_signed_url_serves_the_asset_through_the_edge(stack: Stack) -> None:
    data = bytes(range(256)) * 40_000  # ~10 MB, streamed through
    asset = stack.store.put(data, "webm")
    url = stack.signer.url(asset.name, int(time.time()) + 600)
    response = await stack.edge.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "video/webm"
    assert int(response.headers["content-length"]) == len(data)
    assert response.content == data
    part = await stack.edge.get(url, headers={"Range": "bytes=1000-1999"})
    assert part.status_code == 206 and part.content == data[1000:2000]
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(data)}"
    head = await stack.edge.head(url)
    assert head.status_code == 200 and head.content == b""


@pytest.mark.parametrize("problem", ["tampered", "expired", "missing"])
async def test_tampered_expired_or_missing_signatures_are_403_through_the_edge(
    stack: Stack, problem: str
) -> None:
    asset = stack.store.put(b"a picture", "jpg")
    good = stack.signer.url(asset.name, int(time.time()) + 600)
    url = {
        "tampered": good.replace("sig=", "sig=0")[: len(good)],
        "expired": stack.signer.url(asset.name, int(time.time()) - 5),
        "missing": good.split("?")[0],
    }[problem]
    response = await stack.edge.get(url)
    assert response.status_code == 403, response.text
    assert "forbidden" in response.text and b"a picture" not in response.content


async def test_only_asset_names_are_forwarded(stack: Stack) -> None:
    for path in ["/media/x.jpg", "/media/" + "a" * 64 + ".html", "/media/..%2Fsecrets"]:
        response = await stack.edge.get(path)
        assert response.status_code in (404, 422), (path, response.status_code)
    assert (await stack.edge.get("/assets/" + "a" * 64 + ".jpg")).status_code == 404


async def test_the_edge_streams_without_waiting_for_the_whole_file(
    nats_server, redis_server, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    """An upstream that sends one chunk and then waits: the browser must get that chunk first."""
    release = asyncio.Event()

    async def slow(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "video/webm"})
        await response.prepare(request)
        await response.write(b"first-chunk")
        await release.wait()
        await response.write(b"rest")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_get("/media/{name}", slow)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    upstream = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    try:
        async with (
            running_edge(
                nats_server, redis_server, livekit_server, stage_media_url=upstream
            ) as edge,
            httpx.AsyncClient(base_url=edge.url, trust_env=False, timeout=10) as client,
        ):
            async with client.stream("GET", "/media/" + "b" * 64 + ".webm?exp=1&sig=x") as response:
                chunks = response.aiter_raw()
                async with asyncio.timeout(5):
                    first = await anext(chunks)
                assert first.startswith(b"first-chunk")
                release.set()
                rest = b"".join([chunk async for chunk in chunks])
        assert (first + rest).endswith(b"rest")
    finally:
        release.set()
        await runner.cleanup()


async def test_a_stage_producer_that_is_down_is_a_503(
    nats_server, redis_server, livekit_server
) -> None:  # type: ignore[no-untyped-def]
    async with (
        running_edge(
            nats_server,
            redis_server,
            livekit_server,
            stage_media_url=f"http://127.0.0.1:{free_port()}",
        ) as edge,
        httpx.AsyncClient(base_url=edge.url, trust_env=False) as client,
    ):
        response = await client.get("/media/" + "c" * 64 + ".jpg?exp=1&sig=x")
    assert response.status_code == 503 and response.headers["retry-after"]
    assert "asset server" in response.json()["detail"]
