"""Page capture: a warm Chromium (Debian's, driven by Playwright) that only sees the web through
the egress proxy. A fresh browser context per capture, 1280x720, bounded in time and bytes;
a screenshot (JPEG or WebP) or a short scrolling clip (VP8 WebM, at most 8 s).

Chromium never resolves or connects by itself: every context uses the egress proxy (with its
own credentials), `--proxy-bypass-list=<-loopback>` keeps loopback on the proxy too, and
`--host-resolver-rules=MAP * ~NOTFOUND` leaves it no names of its own. WebRTC may not use
non-proxied UDP (and `RTCPeerConnection` is removed from every frame), service workers are
blocked, downloads refused, pop-ups closed, dialogs dismissed.

Clips: one tall screenshot of the page, then an isolated encoder page (no network at all) pans
across it and encodes VP8 with WebCodecs; `webm.write_webm` wraps the frames. No ffmpeg needed.

Chromium holds no secret: it starts with an explicit, minimal environment
(`browser_environment`: PATH, locale, time zone, fontconfig, and a HOME of its own in a temporary
folder), never the service's (LIVEKIT_*, *_KEY, *_SECRET, NATS_URL...). Its sandbox is on
whenever it can be (`sandbox_plan`): the process is not root and the kernel lets it create user
namespaces (Debian's Chromium has no setuid helper). When it cannot be, the log says why, once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import io
import logging
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from PIL import Image
from playwright.async_api import (
    Browser,
    BrowserContext,
    CDPSession,
    Page,
    Playwright,
    async_playwright,
)
from playwright.async_api import Error as PlaywrightError

from livestage.egress import EgressPolicy, Refusal

from ..egress.proxy import REFUSED_HEADER, EgressProxy, EgressSession
from .launch import (
    SandboxMode,
    SandboxPlan,
    SandboxUnavailable,
    browser_environment,
    sandbox_plan,
    user_namespaces_allowed,
)
from .webm import EncodedFrame, write_webm

log = logging.getLogger(__name__)
T = TypeVar("T")

VIEWPORT = {"width": 1280, "height": 720}
ENCODER_ORIGIN = "https://encoder.livestage.invalid"
_ENCODER_JS = (Path(__file__).with_name("clip_encoder.js")).read_text()

# Runs in every frame before the page's own scripts.
_INIT_SCRIPT = """
(() => {
  for (const name of ["RTCPeerConnection", "webkitRTCPeerConnection", "RTCDataChannel",
                      "WebTransport"]) {
    try { Object.defineProperty(window, name, { value: undefined, configurable: false }); }
    catch (e) {}
  }
})();
"""

# Read in an isolated world (`_IsolatedWorld`): the page's own scripts share the DOM with it but
# not their JavaScript objects, so a page that redefines `document.title`, `querySelector` or
# `innerText` changes nothing here; what is read is what the DOM holds.
_METADATA_JS = """
(() => {
  const VISIBLE_LIMIT = 12000;
  const meta = (sel) => document.querySelector(sel)?.getAttribute("content")?.trim() || "";
  const title = meta('meta[property="og:title"]') || document.title || "";
  const description = meta('meta[name="description"]') || meta('meta[property="og:description"]');
  const parts = [];
  for (const el of document.querySelectorAll("h1, h2, p, li")) {
    const text = (el.innerText || "").replace(/\\s+/g, " ").trim();
    if (text.length > 30) parts.push(text);
    if (parts.join(" ").length > 900) break;
  }
  const visible = (document.body?.innerText || "").replace(/\\s+/g, " ").trim();
  return { title, description, text: parts.join(" ").slice(0, 900),
           visible: visible.slice(0, VISIBLE_LIMIT),
           height: document.documentElement.scrollHeight };
})()
"""
_SETTLED_JS = """
(async () => {
  await Promise.race([document.fonts.ready, new Promise(r => setTimeout(r, 2000))]);
  await new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)));
  return true;
})()
"""


class CaptureError(Exception):
    """A capture failed (timeout, HTTP error, browser trouble); the message says why."""


class CaptureRefused(CaptureError):
    """The target, or something it needed, was refused by the egress policy."""


@dataclass(frozen=True)
class PageCapture:
    """A captured page: the asset bytes and what the page says about itself."""

    kind: Literal["screenshot", "clip"]
    data: bytes
    extension: str
    mime: str
    url: str
    final_url: str
    title: str
    description: str
    text: str  # what the host may read: headings, paragraphs and list items (900 characters)
    width: int
    height: int
    duration_s: float
    elapsed_s: float
    refusals: tuple[str, ...] = ()
    visible_text: str = ""  # everything the page renders as text (the start of it), for checks


@dataclass(frozen=True)
class CaptureOptions:
    chromium_path: Path
    timeout_s: float = 15.0
    max_bytes: int = 32 * 1024 * 1024
    max_concurrent: int = 1
    screenshot_format: Literal["jpeg", "webp"] = "jpeg"
    quality: int = 82
    clip_seconds: float = 8.0
    clip_fps: int = 20
    clip_bitrate: int = 2_000_000
    clip_max_scroll_px: int = 2880
    encode_timeout_s: float = 60.0
    sandbox: SandboxMode = "auto"


def chromium_args(proxy_host: str) -> list[str]:
    """The flags that keep Chromium on the proxy and off the local network."""
    return [
        "--proxy-bypass-list=<-loopback>",
        f"--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE {proxy_host}",
        "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--webrtc-ip-handling-policy=disable_non_proxied_udp",
        "--disable-quic",
        "--disable-features=DnsOverHttps,AsyncDns,MediaRouter,OptimizationHints,Translate",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-domain-reliability",
        "--disable-sync",
        "--no-pings",
        "--mute-audio",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ]


class CaptureBrowser:
    """One warm Chromium; captures run one at a time (or `max_concurrent`)."""

    def __init__(
        self, options: CaptureOptions, proxy: EgressProxy, sandbox: SandboxPlan | None = None
    ) -> None:
        """`sandbox`: a decision made elsewhere (tests); by default `sandbox()` makes it."""
        self.options = options
        self.proxy = proxy
        self._playwright: Playwright | None = None
        self._browser: Browser | None = None
        self._encoder: Page | None = None
        self._slots = asyncio.Semaphore(options.max_concurrent)
        self._start_lock = asyncio.Lock()
        self._sandbox: SandboxPlan | None = sandbox
        self._home: str | None = None

    @property
    def policy(self) -> EgressPolicy:
        return self.proxy.policy

    async def start(self) -> CaptureBrowser:
        await self._ensure_browser()
        return self

    async def sandbox(self) -> SandboxPlan:
        """Whether Chromium runs sandboxed here (decided, and logged, once per process).

        Raises `CaptureError` when STAGE_CHROMIUM_SANDBOX=required and it cannot be on."""
        if self._sandbox is None:
            try:
                plan = sandbox_plan(
                    self.options.sandbox, os.geteuid(), await user_namespaces_allowed()
                )
            except SandboxUnavailable as error:
                raise CaptureError(str(error)) from None
            (log.info if plan.enabled else log.warning)("capture browser: %s", plan.reason)
            self._sandbox = plan
        return self._sandbox

    @property
    def running(self) -> bool:
        return self._browser is not None and self._browser.is_connected()

    async def close_when_idle(self) -> None:
        """Close the browser once no capture is running (it starts again on the next one)."""
        held = 0
        try:
            for _ in range(self.options.max_concurrent):
                await self._slots.acquire()
                held += 1
            await self.close()
        finally:
            # Only the slots it took: a cancel while waiting for the last one must not leave
            # the others taken (every later capture would wait forever).
            for _ in range(held):
                self._slots.release()

    async def close(self) -> None:
        # Under the start lock: a start asked for while closing (a room became active again
        # just as the last one went) waits for the close, or it would launch on a stopping
        # Playwright and fail.
        async with self._start_lock:
            if self._browser is not None:
                with contextlib.suppress(PlaywrightError):
                    await self._browser.close()
                self._browser = None
                self._encoder = None
            if self._playwright is not None:
                await self._playwright.stop()
                self._playwright = None
            if self._home is not None:
                shutil.rmtree(self._home, ignore_errors=True)
                self._home = None

    async def _ensure_browser(self) -> Browser:
        async with self._start_lock:
            if self._browser is not None and self._browser.is_connected():
                return self._browser
            path = self.options.chromium_path
            if not path.is_file():
                raise CaptureError(
                    f"Chromium not found at {path}: install Debian's chromium "
                    "(`apt-get install chromium`) or set STAGE_CHROMIUM_PATH"
                )
            sandbox = await self.sandbox()
            if self._playwright is None:
                self._playwright = await async_playwright().start()
            if self._home is None:
                self._home = tempfile.mkdtemp(prefix="livestage-chromium-")
            self._encoder = None
            self._browser = await self._playwright.chromium.launch(
                executable_path=str(path),
                headless=True,
                proxy={"server": self.proxy.url},  # contexts override it with credentials
                args=chromium_args(self.proxy.host),
                chromium_sandbox=sandbox.enabled,
                # Only this, never the service's environment (the driver's is the service's).
                env=browser_environment(os.environ, self._home),  # type: ignore[arg-type]
            )
            log.info("capture browser started (%s, sandbox %s)", path, sandbox.enabled)
            return self._browser

    async def screenshot(
        self, url: str, image_format: Literal["jpeg", "webp"] | None = None
    ) -> PageCapture:
        return await self._capture(url, "screenshot", image_format)

    async def clip(self, url: str) -> PageCapture:
        return await self._capture(url, "clip")

    async def _capture(
        self,
        url: str,
        kind: Literal["screenshot", "clip"],
        image_format: Literal["jpeg", "webp"] | None = None,
    ) -> PageCapture:
        """Every way a capture can fail is a `CaptureError` (a crashed or unstartable browser, a
        throwing evaluate, a page's odd values), so every caller falls back and backs off."""
        try:
            return await self._capture_or_raise(url, kind, image_format)
        except CaptureError:
            raise
        except Exception as error:  # not CancelledError: a cancel stays a cancel
            log.warning("capture of %s failed unexpectedly", url[:200], exc_info=True)
            raise CaptureError(
                f"capture of {url[:200]} failed: {type(error).__name__}: {_short(error)}"
            ) from error

    async def _capture_or_raise(
        self,
        url: str,
        kind: Literal["screenshot", "clip"],
        image_format: Literal["jpeg", "webp"] | None,
    ) -> PageCapture:
        checked = self.policy.check_url(url)
        if isinstance(checked, Refusal):
            raise CaptureRefused(f"{url[:200]}: {checked.reason}")
        async with self._slots:
            started = time.monotonic()
            browser = await self._ensure_browser()
            with self.proxy.session(self.options.max_bytes) as session:
                context = await browser.new_context(
                    viewport=VIEWPORT,  # type: ignore[arg-type]
                    device_scale_factor=1,
                    proxy={
                        "server": self.proxy.url,
                        "username": session.id,
                        "password": session.password,
                    },
                    service_workers="block",
                    accept_downloads=False,
                    locale="en-US",
                )
                try:
                    async with asyncio.timeout(self.options.timeout_s):
                        captured = await self._capture_in(
                            context, session, url, kind, image_format, started
                        )
                except TimeoutError as error:
                    raise CaptureError(
                        f"capture of {url[:200]} took longer than {self.options.timeout_s} s "
                        "(STAGE_CAPTURE_TIMEOUT_S)"
                    ) from error
                finally:
                    with contextlib.suppress(PlaywrightError):
                        await context.close()
            if kind == "screenshot":
                return captured
            # Encoding is our own work, not the page's: its own time limit, after the page's
            # context is gone.
            try:
                async with asyncio.timeout(self.options.encode_timeout_s):
                    webm = await self._encode_clip(captured.data)
            except TimeoutError as error:
                raise CaptureError(
                    f"encoding the clip of {url[:200]} took longer than "
                    f"{self.options.encode_timeout_s} s (STAGE_CLIP_ENCODE_TIMEOUT_S)"
                ) from error
            return dataclasses.replace(
                captured,
                data=webm,
                extension="webm",
                mime="video/webm",
                duration_s=self._clip_length(),
                elapsed_s=time.monotonic() - started,
            )

    async def _capture_in(
        self,
        context: BrowserContext,
        session: EgressSession,
        url: str,
        kind: Literal["screenshot", "clip"],
        image_format: Literal["jpeg", "webp"] | None,
        started: float,
    ) -> PageCapture:
        await context.add_init_script(_INIT_SCRIPT)
        context.on("page", lambda opened: asyncio.ensure_future(_close_popup(opened)))
        page = await context.new_page()
        page.on("dialog", lambda dialog: asyncio.ensure_future(dialog.dismiss()))
        try:
            response = await _unless(page.goto(url, wait_until="load"), session.limit_hit)
        except _LimitHit as error:
            raise CaptureRefused(f"{url[:200]}: {session.limit_reason}") from error
        except PlaywrightError as error:
            reason = session.refusal_for(url)
            if reason:
                raise CaptureRefused(f"{url[:200]}: {reason}") from error
            raise CaptureError(f"{url[:200]} did not load: {_short(error)}") from error
        if response is None:
            raise CaptureError(f"{url[:200]} gave no response")
        refused = response.headers.get(REFUSED_HEADER.lower())
        if refused:
            raise CaptureRefused(f"{response.url[:200]}: {refused}")
        if response.status >= 400:
            raise CaptureError(f"{url[:200]} answered HTTP {response.status}")
        world = await _IsolatedWorld.open(page)
        await world.evaluate(_SETTLED_JS)  # fonts in, two frames drawn (the page cannot fake it)
        over = [e.refused for e in session.refusals if e.refused.startswith("capture size limit")]
        if over:
            raise CaptureRefused(f"{url[:200]}: {over[0]}")
        meta = await world.evaluate(_METADATA_JS)
        if not isinstance(meta, dict):
            raise CaptureError(f"{url[:200]}: could not read the page's title and text")
        if kind == "screenshot":
            data, extension, mime = await self._still(
                page, image_format or self.options.screenshot_format
            )
            width, height, duration = VIEWPORT["width"], VIEWPORT["height"], 0.0
        else:  # the tall page image; `_capture` encodes it into the clip
            data = await self._tall_screenshot(page, page_height(meta.get("height")))
            extension, mime = "jpg", "image/jpeg"
            width, height, duration = VIEWPORT["width"], VIEWPORT["height"], 0.0
        return PageCapture(
            kind=kind,
            data=data,
            extension=extension,
            mime=mime,
            url=url,
            final_url=page.url,
            title=str(meta.get("title") or "")[:300],
            description=str(meta.get("description") or "")[:600],
            text=str(meta.get("text") or ""),
            visible_text=str(meta.get("visible") or ""),
            width=width,
            height=height,
            duration_s=duration,
            elapsed_s=time.monotonic() - started,
            refusals=tuple(event.refused for event in session.refusals),
        )

    async def _still(self, page: Page, image_format: str) -> tuple[bytes, str, str]:
        if image_format == "jpeg":
            data = await page.screenshot(type="jpeg", quality=self.options.quality)
            return data, "jpg", "image/jpeg"
        png = await page.screenshot(type="png")
        webp = await asyncio.to_thread(_to_webp, png, self.options.quality)
        return webp, "webp", "image/webp"

    def _clip_length(self) -> float:
        frames = max(1, round(self.options.clip_fps * self.options.clip_seconds))
        return frames / self.options.clip_fps

    async def _tall_screenshot(self, page: Page, page_height: int) -> bytes:
        limit = VIEWPORT["height"] + self.options.clip_max_scroll_px
        height = min(max(page_height, VIEWPORT["height"]), limit)
        return await page.screenshot(
            type="jpeg",
            quality=90,
            full_page=True,
            clip={"x": 0, "y": 0, "width": VIEWPORT["width"], "height": height},
        )

    async def _encode_clip(self, tall: bytes) -> bytes:
        encoder = await self.offline_page(ENCODER_ORIGIN)
        result: dict[str, Any] = await encoder.evaluate(
            _ENCODER_JS,
            {
                "image": base64.b64encode(tall).decode(),
                "mime": "image/jpeg",
                "width": VIEWPORT["width"],
                "height": VIEWPORT["height"],
                "fps": self.options.clip_fps,
                "seconds": self.options.clip_seconds,
                "bitrate": self.options.clip_bitrate,
            },
        )
        blob = base64.b64decode(result["data"])
        frames: list[EncodedFrame] = []
        offset = 0
        for timestamp, key, length in result["index"]:
            frames.append(EncodedFrame(int(timestamp), bool(key), blob[offset : offset + length]))
            offset += length
        return write_webm(
            frames, width=VIEWPORT["width"], height=VIEWPORT["height"], fps=self.options.clip_fps
        )

    async def offline_page(
        self, origin: str, files: dict[str, tuple[bytes, str]] | None = None
    ) -> Page:
        """A page on `origin` (https: a secure context, which WebCodecs needs) whose requests are
        all answered in-process: `files` maps paths to (body, content type); everything else is
        aborted, so it touches no network. The clip encoder lives on one, kept warm."""
        if origin == ENCODER_ORIGIN and self._encoder is not None and not self._encoder.is_closed():
            return self._encoder
        browser = await self._ensure_browser()
        context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        served = {"/": (b"<!doctype html><title>offline</title>", "text/html"), **(files or {})}

        async def route(route: Any) -> None:
            url = route.request.url
            path = "/" + url.removeprefix(origin + "/") if url.startswith(origin + "/") else None
            if path is None or path not in served:
                await route.abort()
                return
            body, content_type = served[path]
            wanted = re.fullmatch(r"bytes=(\d*)-(\d*)", route.request.headers.get("range", ""))
            if wanted and (wanted.group(1) or wanted.group(2)):  # as a file server would
                first = int(wanted.group(1) or 0)
                last = min(int(wanted.group(2) or len(body) - 1), len(body) - 1)
                await route.fulfill(
                    status=206,
                    body=body[first : last + 1],
                    content_type=content_type,
                    headers={
                        "Accept-Ranges": "bytes",
                        "Content-Range": f"bytes {first}-{last}/{len(body)}",
                    },
                )
                return
            await route.fulfill(
                body=body, content_type=content_type, headers={"Accept-Ranges": "bytes"}
            )

        await context.route("**/*", route)
        page = await context.new_page()
        await page.goto(origin + "/")
        if origin == ENCODER_ORIGIN:
            self._encoder = page
        return page


class _IsolatedWorld:
    """A JavaScript world of its own in the page's main frame (CDP `Page.createIsolatedWorld`):
    the same DOM, none of the page's JavaScript objects, prototypes or getters."""

    def __init__(self, session: CDPSession, context_id: int) -> None:
        self.session = session
        self.context_id = context_id

    @classmethod
    async def open(cls, page: Page) -> _IsolatedWorld:
        session = await page.context.new_cdp_session(page)
        tree = await session.send("Page.getFrameTree")
        world = await session.send(
            "Page.createIsolatedWorld",
            {
                "frameId": tree["frameTree"]["frame"]["id"],
                "worldName": "livestage-capture",
                "grantUniveralAccess": False,  # (sic: the protocol's spelling)
            },
        )
        return cls(session, int(world["executionContextId"]))

    async def evaluate(self, expression: str) -> Any:
        answer = await self.session.send(
            "Runtime.evaluate",
            {
                "expression": expression,
                "contextId": self.context_id,
                "returnByValue": True,
                "awaitPromise": True,
            },
        )
        if "exceptionDetails" in answer:
            details = answer["exceptionDetails"]
            raise CaptureError(f"reading the page failed: {details.get('text', 'an exception')}")
        return answer.get("result", {}).get("value")


class _LimitHit(Exception):
    pass


async def _unless(work: Awaitable[T], event: asyncio.Event) -> T:
    """`work`'s result, unless `event` is set first (then _LimitHit, and `work` is cancelled)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, PlaywrightError):
        await task
    raise _LimitHit()


async def _close_popup(page: Page) -> None:
    with contextlib.suppress(PlaywrightError):
        if await page.opener() is not None:  # a window.open from the captured page
            await page.close()


def page_height(value: object) -> int:
    """A page's reported scroll height as whole pixels: anything not a finite, non-negative
    number (Infinity, NaN, a string, null) reads as 0; `_tall_screenshot` clamps the rest."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    if not math.isfinite(value) or value < 0:
        return 0
    return int(min(value, 1 << 31))


def _short(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:300]


def _to_webp(png: bytes, quality: int) -> bytes:
    out = io.BytesIO()
    with Image.open(io.BytesIO(png)) as image:
        image.convert("RGB").save(out, "WEBP", quality=quality, method=4)
    return out.getvalue()
