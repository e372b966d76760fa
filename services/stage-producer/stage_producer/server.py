"""The asset server: `GET /media/<sha256>.<ext>?exp=&sig=` on 127.0.0.1, nothing else of note.

Only signed, unexpired URLs are served (403 otherwise, with the reason); names that are not
asset names are 404 before any file is touched. Range requests work (video needs them). The edge
(`token_service.routes.media`) streams from here, so browsers see the asset on the page's own
origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response
from starlette.routing import Route

from .assets import ASSET_NAME, AssetSigner, AssetStore

_ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cross-Origin-Resource-Policy": "same-origin",
}


def create_asset_app(store: AssetStore, signer: AssetSigner) -> Starlette:
    async def media(request: Request) -> Response:
        name = request.path_params["name"]
        if not ASSET_NAME.fullmatch(name):
            return PlainTextResponse("no such asset", status_code=404)
        problem = signer.check(
            name, request.query_params.get("exp"), request.query_params.get("sig")
        )
        if problem is not None:
            return PlainTextResponse(f"forbidden: {problem}", status_code=403)
        asset = store.get(name)
        if asset is None:
            return PlainTextResponse("no such asset (it may have been pruned)", status_code=404)
        remaining = max(0, int(request.query_params["exp"]) - int(time.time()))
        headers = {**_ASSET_HEADERS, "Cache-Control": f"private, max-age={min(remaining, 3600)}"}
        return FileResponse(asset.path, media_type=asset.media_type, headers=headers)

    async def healthz(_request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/media/{name}", media, methods=["GET", "HEAD"]),
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the service's stop event owns SIGINT/SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class AssetServer:
    """uvicorn serving `create_asset_app` inside the producer's event loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            log_level="warning",
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=2,  # a viewer mid-clip must not hold up a stop
        )
        self.server = _QuietServer(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        servers = getattr(self.server, "servers", [])
        for server in servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    async def start(self) -> AssetServer:
        self._task = asyncio.create_task(self.server.serve())
        async with asyncio.timeout(15):
            while not self.server.started:
                if self._task.done():
                    self._task.result()
                    raise RuntimeError("the asset server stopped while starting")
                await asyncio.sleep(0.02)
        return self

    async def close(self) -> None:
        self.server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5)
