"""From a decision to a published-ready `StageVisual`: find a page, capture it or draw a backdrop,
store the asset, sign its URL, and say what the host should talk about.

A failed or refused capture falls back to a backdrop for the same topic, so the screen still
changes; a failed Gemini backdrop falls back to a drawn one. Every attempt is counted
(`CAPTURES` by kind and outcome, `CAPTURE_DURATION` by kind).

With a content checker (`safety`, see `content.py`), a page whose title, description or text
fails is dropped before its asset is stored (outcome `blocked`; the backdrop that replaces it
takes the topic's name, not the page's), and no visual whose title, summary or topic fails is
made at all (`ContentBlocked`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from livestage import metrics
from livestage.domains import DomainLists
from livestage.safety import TextChecker
from livestage.schemas import StageVisual, new_id
from livestage.text import clean_text

from .assets import MEDIA_PREFIX, AssetSigner, AssetStore
from .backdrops import Backdrop, BackdropError, BackdropMaker, BackdropRequest
from .backdrops.procedural import ProceduralBackdrops
from .capture.browser import CaptureBrowser, CaptureError, CaptureRefused, PageCapture
from .content import Blocked, first_blocked
from .planner import RoomPlan
from .search import SearchError, SearchProvider, Source
from .topics import TopicChoice

log = logging.getLogger(__name__)

Outcome = Literal["ok", "refused", "failed", "blocked"]


class ContentBlocked(CaptureError):
    """What a visual would show or the host would read failed the content checks; the message
    names the field and the check, never the words."""

    def __init__(self, what: str, blocked: Blocked) -> None:
        super().__init__(f"{what}: {blocked.describe()}")
        self.blocked = blocked


def _text(value: str, limit: int) -> str:
    cleaned = clean_text(value or "")
    return cleaned if len(cleaned) <= limit else cleaned[: limit - 1].rstrip() + "…"


def page_summary(source: Source | None, capture: PageCapture) -> str:
    """What the host should talk about: the source's own summary, else what the page says."""
    if source is not None and source.summary.strip():
        return _text(source.summary, 2000)
    parts = [capture.title, capture.description, capture.text]
    return _text(". ".join(part for part in parts if part), 2000)


@dataclass
class VisualFactory:
    browser: CaptureBrowser
    backdrops: BackdropMaker
    search: SearchProvider
    store: AssetStore
    signer: AssetSigner
    ttl_s: int
    backdrop_size: tuple[int, int] = (1280, 720)
    clock: Callable[[], float] = time.time
    domains: DomainLists = DomainLists()
    safety: TextChecker | None = None

    def __post_init__(self) -> None:
        self._drawn = ProceduralBackdrops()

    # --- the loop's path ---------------------------------------------------------------------

    async def for_topic(self, room: str, choice: TopicChoice, plan: RoomPlan) -> StageVisual:
        try:
            sources = await self.search.find(choice)
        except SearchError as error:
            log.warning("search for %r failed: %s; drawing a backdrop", choice.query, error)
            sources = []
        sources = [source for source in sources if self._may_show(source)]
        source = plan.pick_source(sources)
        kind = plan.kind_for(source)
        if source is not None and kind != "backdrop":
            try:
                return await self.capture(
                    room, source.url, kind, topic=choice.topic, source=source, operator=False
                )
            except ContentBlocked as error:
                log.warning("page %s dropped (%s); drawing a backdrop instead", source.url, error)
                source = None  # nothing of the page, its title included, reaches the screen
            except CaptureError as error:
                log.warning(
                    "capture of %s failed (%s); drawing a backdrop instead", source.url, error
                )
        title = source.title if source is not None and source.title else choice.topic
        if title != choice.topic and self._blocked(("search result title", title)) is not None:
            title = choice.topic
        return await self.backdrop(room, topic=choice.topic, title=title, keywords=choice.keywords)

    # --- the operator's paths ----------------------------------------------------------------

    async def capture(
        self,
        room: str,
        url: str,
        kind: Literal["screenshot", "clip"] = "screenshot",
        *,
        topic: str = "",
        source: Source | None = None,
        operator: bool = True,
    ) -> StageVisual:
        """A visual of `url`. `operator`: an operator asked for it (the domain allowlist does
        not apply; the blocklist and the egress policy do)."""
        started = time.monotonic()
        try:
            self._check_domains(url, operator)
            page = await (
                self.browser.clip(url) if kind == "clip" else self.browser.screenshot(url)
            )
            if page.final_url != url:  # redirected: where it ended must be allowed too
                self._check_domains(page.final_url, operator)
        except CaptureRefused:
            self._count(kind, "refused", started)
            raise
        except CaptureError:
            self._count(kind, "failed", started)
            raise
        title = (source.title if source and source.title else "") or page.title or topic or url
        summary = page_summary(source, page)
        blocked = self._blocked(
            ("page title", page.title),
            ("page description", page.description),
            ("page text", page.text),
            ("text on the page", page.visible_text),
            ("search result title", source.title if source else ""),
            ("search result summary", source.summary if source else ""),
            ("title", title),
            ("summary", summary),
            ("topic", topic),
        )
        if blocked is not None:
            self._count(kind, "blocked", started)
            raise ContentBlocked(f"page {url[:200]}", blocked)
        asset = self.store.put(page.data, page.extension)
        self._count(kind, "ok", started)
        return self._visual(
            room,
            kind,
            asset.name,
            source_url=url,
            title=title,
            summary=summary,
            topic=topic or title,
        )

    async def backdrop(
        self,
        room: str,
        *,
        topic: str,
        title: str,
        prompt: str = "",
        keywords: tuple[str, ...] = (),
    ) -> StageVisual:
        request = BackdropRequest(
            topic=topic,
            title=_text(title, 120),
            prompt=prompt,
            keywords=keywords,
            width=self.backdrop_size[0],
            height=self.backdrop_size[1],
        )
        started = time.monotonic()
        blocked = self._blocked(("title", title), ("topic", topic), ("prompt", prompt))
        if blocked is not None:
            self._count("backdrop", "blocked", started)
            raise ContentBlocked("backdrop", blocked)
        made: Backdrop
        try:
            made = await self.backdrops.make(request)
        except BackdropError as error:
            if self.backdrops is self._drawn:
                self._count("backdrop", "failed", started)
                raise
            log.warning("%s backdrop failed (%s); drawing one instead", self.backdrops.name, error)
            made = await self._drawn.make(request)
        asset = self.store.put(made.data, made.extension)
        self._count("backdrop", "ok", started)
        return self._visual(
            room,
            "backdrop",
            asset.name,
            source_url="",
            title=made.title,
            summary=made.summary,
            topic=topic,
        )

    def reissue(self, visual: StageVisual) -> StageVisual:
        """The same asset under a fresh id and a freshly signed, later-expiring URL."""
        name = visual.url.removeprefix(MEDIA_PREFIX).split("?", 1)[0]
        return self._visual(
            visual.room,
            visual.kind,
            name,
            source_url=visual.source_url,
            title=visual.title,
            summary=visual.summary,
            topic=visual.topic,
        )

    # --- helpers -------------------------------------------------------------------------------

    def _blocked(self, *fields: tuple[str, str]) -> Blocked | None:
        if self.safety is None:
            return None
        return first_blocked(self.safety, fields)

    def _check_domains(self, url: str, operator: bool) -> None:
        refusal = self.domains.refusal(url, operator=operator)
        if refusal is not None:
            raise CaptureRefused(f"{url[:200]}: {refusal.reason}")

    def _may_show(self, source: Source) -> bool:
        refusal = self.domains.refusal(source.url)
        if refusal is not None:
            log.info("skipping search result %s: %s", source.url[:200], refusal.reason)
        return refusal is None

    def _visual(
        self,
        room: str,
        kind: Literal["screenshot", "clip", "backdrop"],
        asset_name: str,
        *,
        source_url: str,
        title: str,
        summary: str,
        topic: str,
    ) -> StageVisual:
        now_s = self.clock()
        expires_s = int(now_s) + self.ttl_s
        return StageVisual(
            id=new_id(),
            room=room,
            kind=kind,
            url=self.signer.url(asset_name, expires_s),
            source_url=source_url[:2048],
            title=_text(title, 300),
            summary=summary,
            topic=_text(topic, 300),
            created_at=int(now_s * 1000),
            expires_at=expires_s * 1000,
        )

    @staticmethod
    def _count(kind: str, outcome: Outcome, started: float) -> None:
        metrics.counter(metrics.CAPTURES).add(1, {"kind": kind, "outcome": outcome})
        elapsed_ms = (time.monotonic() - started) * 1000
        metrics.histogram(metrics.CAPTURE_DURATION).record(elapsed_ms, {"kind": kind})
