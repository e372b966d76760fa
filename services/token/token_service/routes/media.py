"""`GET /media/<sha256>.<ext>?exp=&sig=`: the stage's assets, on the page's own origin.

The edge fetches the asset from the stage producer's asset server (`TOKEN_STAGE_MEDIA_URL`),
passing the signature query and a `Range` header through. The stage producer checks the
signature: tampered, expired or missing → 403, which reaches the browser as is. Only asset names
(64 hex characters and an image or WebM extension) are forwarded; anything else is a 422 before
any upstream call. `/assets/` stays the built pages' own files.

What a reader may hold, per replica (settings `TOKEN_MEDIA_*`, `TOKEN_RATE_MEDIA_PER_NETWORK`):

- per client network, a request rate and a number of responses in flight: 429 with
  Retry-After and the limit's name;
- images are read whole (up to `TOKEN_MEDIA_MAX_IMAGE_BYTES`) while holding one of
  `TOKEN_MEDIA_MAX_READS` image slots, then sent from memory: a slow reader of an image holds no
  upstream connection;
- clips are streamed chunk by chunk (never held in memory) while holding one of
  `TOKEN_MEDIA_MAX_STREAMS` stream slots. Image and clip slots are apart and the upstream pool
  has room for both, so readers of clips cannot keep images from anyone. No free slot within
  `TOKEN_MEDIA_SLOT_WAIT_S` → 503 with Retry-After;
- every chunk must be taken by the reader within `TOKEN_MEDIA_STALL_TIMEOUT_S`, or the
  connection is cut (aborted, so nothing is left buffered for it) and its slots are free again.

Each refusal or cut adds one to `livestage.edge.media_refused{reason}`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import Response, StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from ..deps import ClientNetwork, Services, ServicesDep
from ..errors import unavailable
from ..media_guard import ABORT_EXTENSION, Refused
from ..models import ErrorResponse

ASSET_NAME = r"^[0-9a-f]{64}\.(jpg|webp|png|webm)$"
CHUNK_BYTES = 64 * 1024
RETRY_AFTER_S = 1
_PASSED_HEADERS = (
    "content-type",
    "content-length",
    "content-range",
    "accept-ranges",
    "cache-control",
    "etag",
    "last-modified",
    "content-security-policy",
    "cross-origin-resource-policy",
)


class ReaderStalled(Exception):
    """The reader took nothing for the stall timeout (raised only where the server offers no
    way to abort the connection)."""


class GuardedStream(Response):
    """Sends `chunks`, each within `stall_s`; a reader that stalls is cut off. `cleanup` (slots,
    the upstream response) is closed however the response ends."""

    def __init__(
        self,
        chunks: AsyncIterable[bytes],
        status_code: int,
        headers: dict[str, str],
        *,
        stall_s: float,
        on_stall: Callable[[], None],
        cleanup: contextlib.AsyncExitStack,
    ) -> None:
        self.chunks = chunks
        self.status_code = status_code
        self.background = None
        self.raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        self.stall_s = stall_s
        self.on_stall = on_stall
        self.cleanup = cleanup

    async def _send(self, send: Send, message: Message) -> None:
        try:
            async with asyncio.timeout(self.stall_s):
                await send(message)
        except TimeoutError:
            raise ReaderStalled(f"the reader took nothing for {self.stall_s:g} s") from None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gone = asyncio.Event()

        async def listen_for_disconnect() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        listener = asyncio.create_task(listen_for_disconnect())
        try:
            start = {"type": "http.response.start", "status": self.status_code}
            await self._send(send, start | {"headers": self.raw_headers})
            async for chunk in self.chunks:
                if gone.is_set():
                    return  # the reader left: stop reading the stage producer too
                await self._send(send, _body(chunk, more=True))
            await self._send(send, _body(b"", more=False))
        except ReaderStalled:
            self.on_stall()
            abort = (scope.get("extensions") or {}).get(ABORT_EXTENSION)
            if abort is None:
                raise
            abort()  # drop the connection and whatever is buffered for it, now
        finally:
            listener.cancel()
            await self.cleanup.aclose()


def _body(chunk: bytes, *, more: bool) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


async def _slices(body: bytes) -> AsyncIterator[bytes]:
    for offset in range(0, len(body), CHUNK_BYTES):
        yield body[offset : offset + CHUNK_BYTES]


router = APIRouter(tags=["media"])


async def limit_media(network: ClientNetwork, services: ServicesDep) -> None:
    try:
        await services.local_limiter.check(services.limits.media_per_network, network)
    except HTTPException:
        services.media_refused.add(1, {"reason": "rate"})
        raise


def _refusal(services: Services, refused: Refused) -> HTTPException:
    services.media_refused.add(1, {"reason": refused.reason})
    code = (
        status.HTTP_429_TOO_MANY_REQUESTS
        if refused.reason == "client_streams"
        else status.HTTP_503_SERVICE_UNAVAILABLE
    )
    return HTTPException(
        code,
        detail=f"{refused}; try again in {RETRY_AFTER_S} s",
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


def _passed(upstream: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in upstream.headers.items() if k.lower() in _PASSED_HEADERS}


async def _read_image(
    services: Services, request: httpx.Request
) -> tuple[int, dict[str, str], bytes]:
    """The whole image (status, headers, body), read within an image slot."""
    cap = services.edge.media_max_image_bytes
    async with services.media.reads.hold():
        upstream = await services.media_client.send(request, stream=True)
        try:
            declared = int(upstream.headers.get("content-length") or 0)
            body = bytearray()
            if declared <= cap:
                async for chunk in upstream.aiter_raw():
                    body += chunk
                    if len(body) > cap:
                        break
            if declared > cap or len(body) > cap:
                services.media_refused.add(1, {"reason": "too_large"})
                raise HTTPException(
                    status.HTTP_502_BAD_GATEWAY,
                    detail=f"the image is larger than TOKEN_MEDIA_MAX_IMAGE_BYTES ({cap} bytes)",
                )
            return upstream.status_code, _passed(upstream), bytes(body)
        finally:
            await upstream.aclose()


# HEAD answers like GET; only GET is in the OpenAPI document (one route for both methods would
# give both the same operation id).
@router.head("/media/{name}", include_in_schema=False, dependencies=[Depends(limit_media)])
@router.get(
    "/media/{name}",
    response_class=StreamingResponse,
    dependencies=[Depends(limit_media)],
    responses={
        200: {"description": "The asset", "content": {"image/jpeg": {}, "video/webm": {}}},
        206: {"description": "Part of the asset (Range)"},
        403: {"description": "Missing, tampered or expired signature"},
        404: {"description": "No such asset (or it was pruned)"},
        429: {
            "model": ErrorResponse,
            "description": "The client network's request rate or responses in flight; see "
            "Retry-After",
        },
        502: {"model": ErrorResponse, "description": "An image over the edge's size cap"},
        503: {
            "model": ErrorResponse,
            "description": "The stage producer is not reachable, or every slot is busy; see "
            "Retry-After",
        },
    },
)
async def media(
    request: Request,
    services: ServicesDep,
    network: ClientNetwork,
    name: Annotated[str, Path(pattern=ASSET_NAME, description="<sha256>.<jpg|webp|png|webm>")],
    exp: Annotated[str | None, Query(max_length=12, description="Expiry, epoch s")] = None,
    sig: Annotated[str | None, Query(max_length=64, description="HMAC signature")] = None,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
) -> Response:
    """A stage asset from the stage producer (signed URLs only): images read whole and sent,
    clips streamed."""
    client = services.media_client
    params = {key: value for key, value in (("exp", exp), ("sig", sig)) if value is not None}
    upstream_request = client.build_request(
        request.method,
        f"{services.edge.stage_media_url.rstrip('/')}/media/{name}",
        params=params,
        headers={"range": range_} if range_ else {},
    )
    guard = services.media
    cleanup = contextlib.AsyncExitStack()
    try:
        guard.clients.acquire(network)
        cleanup.callback(guard.clients.release, network)
        if name.endswith(".webm"):
            await guard.streams.acquire()
            cleanup.callback(guard.streams.release)
            upstream = await client.send(upstream_request, stream=True)
            cleanup.push_async_callback(upstream.aclose)
            code, headers, chunks = upstream.status_code, _passed(upstream), upstream.aiter_raw()
        else:
            code, headers, body = await _read_image(services, upstream_request)
            chunks = _slices(body)
    except Refused as refused:
        await cleanup.aclose()
        raise _refusal(services, refused) from None
    except httpx.HTTPError as error:
        await cleanup.aclose()
        raise unavailable("the stage producer's asset server") from error
    except BaseException:
        await cleanup.aclose()
        raise
    return GuardedStream(
        chunks,
        code,
        headers,
        stall_s=services.edge.media_stall_timeout_s,
        on_stall=lambda: services.media_refused.add(1, {"reason": "stalled"}),
        cleanup=cleanup,
    )
