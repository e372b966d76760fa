"""`GET /media/<sha256>.<ext>?exp=&sig=`: the stage's assets, on the page's own origin.

The edge streams the asset from the stage producer's asset server (`TOKEN_STAGE_MEDIA_URL`),
passing the signature query and a `Range` header through, chunk by chunk (a clip is never held
in memory here). The stage producer checks the signature: tampered, expired or missing → 403,
which reaches the browser as is. Only asset names (64 hex characters and an image or WebM
extension) are forwarded; anything else is a 422 before any upstream call. `/assets/` stays
the built pages' own files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import httpx
from fastapi import APIRouter, FastAPI, Header, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from ..deps import ServicesDep
from ..errors import unavailable
from ..models import ErrorResponse

ASSET_NAME = r"^[0-9a-f]{64}\.(jpg|webp|png|webm)$"
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


@asynccontextmanager
async def _client(app: FastAPI) -> AsyncIterator[None]:
    app.state.media_client = httpx.AsyncClient(
        timeout=httpx.Timeout(connect=2.0, read=30.0, write=10.0, pool=5.0),
        trust_env=False,  # never send the stage's assets through an environment proxy
        follow_redirects=False,
    )
    try:
        yield
    finally:
        await app.state.media_client.aclose()


router = APIRouter(tags=["media"], lifespan=_client)


# HEAD answers like GET; only GET is in the OpenAPI document (one route for both methods would
# give both the same operation id).
@router.head("/media/{name}", include_in_schema=False)
@router.get(
    "/media/{name}",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The asset", "content": {"image/jpeg": {}, "video/webm": {}}},
        206: {"description": "Part of the asset (Range)"},
        403: {"description": "Missing, tampered or expired signature"},
        404: {"description": "No such asset (or it was pruned)"},
        503: {"model": ErrorResponse, "description": "The stage producer is not reachable"},
    },
)
async def media(
    request: Request,
    services: ServicesDep,
    name: Annotated[str, Path(pattern=ASSET_NAME, description="<sha256>.<jpg|webp|png|webm>")],
    exp: Annotated[str | None, Query(max_length=12, description="Expiry, epoch s")] = None,
    sig: Annotated[str | None, Query(max_length=64, description="HMAC signature")] = None,
    range_: Annotated[str | None, Header(alias="range", max_length=100)] = None,
) -> StreamingResponse:
    """A stage asset, streamed from the stage producer (signed URLs only)."""
    client: httpx.AsyncClient = request.app.state.media_client
    params = {key: value for key, value in (("exp", exp), ("sig", sig)) if value is not None}
    headers = {"range": range_} if range_ else {}
    upstream_request = client.build_request(
        request.method,
        f"{services.edge.stage_media_url.rstrip('/')}/media/{name}",
        params=params,
        headers=headers,
    )
    try:
        upstream = await client.send(upstream_request, stream=True)
    except httpx.HTTPError as error:
        raise unavailable("the stage producer's asset server") from error
    passed = {k: v for k, v in upstream.headers.items() if k.lower() in _PASSED_HEADERS}
    return StreamingResponse(
        upstream.aiter_raw(),
        status_code=upstream.status_code,
        headers=passed,
        background=BackgroundTask(upstream.aclose),
    )
