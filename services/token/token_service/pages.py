"""The built viewer pages (`web/dist`), the API docs, and the security headers they are served with.

`/` is the viewer page of the default show (LIVEKIT_ROOM) and `/s/<show>` of another show,
`/stage` the OBS stage page (`?show=<show>` for another show), `/operator` the operator console.
A show that does not exist gets a plain 404 page that does not repeat the name asked for. Their
Content-Security-Policy allows scripts, styles, images and media from this origin only (plus
`data:`/`blob:` images and `blob:` media, which the pages make themselves; stage visuals come
through this origin at `/media/...`), and connections to this origin and to exactly the LiveKit
server's origin (its ws/wss URL and the matching http/https one, which livekit-client uses to
explain a failed join). No page may be framed by another site; `/stage` may be framed by this
origin (the console's live preview).

`/docs` is Swagger UI served from this origin: the assets come from the `fastapi-offline` wheel
(no CDN, works offline), and the page's one inline script is allowed by its SHA-256 in a
policy for that route only. ReDoc is off.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from urllib.parse import urlsplit

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from livestage.subjects import ROOM_NAME_PATTERN

DOCS_ASSETS = Path(fastapi_offline.__file__).resolve().parent / "static"
DOCS_ASSETS_URL = "/docs-assets"

NO_SUCH_SHOW_PAGE = """<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><title>No such show</title></head>
  <body>
    <h1>No such show</h1>
    <p>There is no show at this address: check the link, or the show may have been removed.</p>
    <p><a href="/">Go to the main show</a></p>
  </body>
</html>
"""

_PAIRED_SCHEME = {"ws": "http", "wss": "https", "http": "ws", "https": "wss"}


def livekit_origins(url: str) -> list[str]:
    """The origins a page may connect to for LiveKit: the URL's own and its ws/http twin."""
    parts = urlsplit(url)
    if parts.scheme not in _PAIRED_SCHEME or not parts.netloc:
        raise ValueError(f"LIVEKIT_URL must be ws://, wss://, http:// or https://, got {url!r}")
    twin = _PAIRED_SCHEME[parts.scheme]
    pair = [f"{parts.scheme}://{parts.netloc}", f"{twin}://{parts.netloc}"]
    return sorted(pair, key=lambda origin: origin.startswith("http"))  # ws first, then http


def page_policy(livekit_url: str, frame_ancestors: str = "'none'") -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' blob:",
            "connect-src 'self' " + " ".join(livekit_origins(livekit_url)),
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def docs_policy(inline_script_sha256: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self' 'sha256-{inline_script_sha256}'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


class SecurityHeaders:
    """nosniff and no-referrer everywhere; the page CSP on HTML unless a route set its own.

    A plain ASGI middleware (not BaseHTTPMiddleware, which runs `receive` in a task group and
    would wrap a body-limit 413 raised there in an ExceptionGroup)."""

    def __init__(self, app: ASGIApp, page_csp: str) -> None:
        self.app = app
        self.page_csp = page_csp.encode()
        self._always = (
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
        )
        self._on_pages = (*self._always, (b"content-security-policy", self.page_csp))

    def _added(self, html: bool) -> tuple[tuple[bytes, bytes], ...]:
        """The headers an answer gets unless it set its own: the CSP on HTML only."""
        return self._on_pages if html else self._always

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # the raw (lowercase) header list, not MutableHeaders: this runs for every answer
                raw: list[tuple[bytes, bytes]] = list(message.get("headers", ()))
                present = {name for name, _ in raw}
                html = any(
                    name == b"content-type" and value.startswith(b"text/html")
                    for name, value in raw
                )
                for name, value in self._added(html):
                    if name not in present:
                        raw.append((name, value))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


def mount_docs(app: FastAPI) -> None:
    """Swagger UI at /docs from self-hosted assets, with a CSP that admits its inline script."""
    html = get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - API docs",
        swagger_js_url=f"{DOCS_ASSETS_URL}/swagger-ui-bundle.js",
        swagger_css_url=f"{DOCS_ASSETS_URL}/swagger-ui.css",
        swagger_favicon_url=f"{DOCS_ASSETS_URL}/favicon.png",
        # Swagger UI would otherwise send the spec to validator.swagger.io for a badge.
        swagger_ui_parameters={"validatorUrl": None},
    ).body
    assert isinstance(html, bytes)
    inline = re.findall(rb"<script>(.*?)</script>", html, flags=re.DOTALL)
    if len(inline) != 1:
        raise RuntimeError(
            f"expected one inline script in the Swagger UI page, found {len(inline)}"
        )
    digest = base64.b64encode(hashlib.sha256(inline[0]).digest()).decode()
    policy = docs_policy(digest)

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": policy})

    app.mount(DOCS_ASSETS_URL, StaticFiles(directory=DOCS_ASSETS), name="docs-assets")


def mount_pages(app: FastAPI, dist: Path, livekit_url: str) -> None:
    # only /stage may sit in a frame, and only in a page of this origin (the console's preview)
    framable_by_self = {"Content-Security-Policy": page_policy(livekit_url, "'self'")}

    def page(name: str, headers: dict[str, str] | None = None) -> Response:
        path = dist / name
        if not path.is_file():
            return PlainTextResponse(
                f"The viewer pages are not built ({path} is missing): run `make bootstrap`.",
                status_code=503,
            )
        return FileResponse(path, headers={"Cache-Control": "no-cache", **(headers or {})})

    async def is_show(request: Request, name: str) -> bool:
        if not ROOM_NAME_PATTERN.fullmatch(name):
            return False
        return bool(await request.app.state.services.shows.exists(name))

    def no_such_show() -> Response:
        return HTMLResponse(
            NO_SUCH_SHOW_PAGE, status_code=404, headers={"Cache-Control": "no-cache"}
        )

    @app.get("/", include_in_schema=False)
    async def viewer_page() -> Response:
        return page("index.html")

    @app.get("/s/{show:path}", include_in_schema=False)
    async def show_page(request: Request, show: str) -> Response:
        known = await is_show(request, show.removesuffix("/"))
        return page("index.html") if known else no_such_show()

    @app.get("/stage", include_in_schema=False)
    async def stage_page(request: Request, show: str | None = None) -> Response:
        if show is not None and not await is_show(request, show):
            return no_such_show()
        return page("stage.html", framable_by_self)

    @app.get("/operator", include_in_schema=False)
    async def operator_page() -> Response:
        return page("operator.html")

    assets = dist / "assets"
    if assets.is_dir():
        app.mount("/assets", StaticFiles(directory=assets), name="assets")
