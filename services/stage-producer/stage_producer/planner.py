"""When a room gets a new visual, and what kind: pure decisions over a room's plan and a clock.

`RoomPlan.decide(now, choice)` says whether to make a visual now: the first one at once, then
every `interval_s`, or sooner when chat clearly moved to another topic (the picker is at least
`shift_confidence` sure, and `min_gap_s` has passed). A pinned visual holds the screen: no new
visuals, only a re-signed copy of the pinned one before its URL expires. With nothing to go on
the plan walks through the catalog's topics in turn.

`choose_kind` spreads the kinds out: every `backdrop_every`-th visual is a backdrop (and any
visual without a page), every `clip_every`-th page is a scrolling clip, the rest screenshots.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from livestage.schemas import StageVisual
from livestage.settings import default_of

from .search.base import Source
from .settings import StageSettings
from .topics.base import CatalogTopic, TopicChoice

Kind = Literal["screenshot", "clip", "backdrop"]


@dataclass(frozen=True)
class PlanSettings:
    """When a room's visuals change: part of `StageSettings` (`STAGE_*`), which owns the
    defaults; the service builds it with `livestage.settings.derive`."""

    interval_s: float = default_of(StageSettings, "interval_s")
    min_gap_s: float = default_of(StageSettings, "min_gap_s")
    shift_confidence: float = default_of(StageSettings, "shift_confidence")
    visual_ttl_s: int = default_of(StageSettings, "visual_ttl_s")
    clip_every: int = default_of(StageSettings, "clip_every")
    backdrop_every: int = default_of(StageSettings, "backdrop_every")


@dataclass(frozen=True)
class Decision:
    """Make a visual about `choice` now, because of `reason` (first, interval, shift)."""

    reason: Literal["first", "interval", "shift"]
    choice: TopicChoice


@dataclass
class RoomPlan:
    settings: PlanSettings
    last_visual_ms: int | None = None
    current_topic: str | None = None
    visuals_made: int = 0
    pages_made: int = 0
    pinned: StageVisual | None = None
    recent_urls: deque[str] = field(default_factory=lambda: deque(maxlen=6))
    rotation: int = 0

    def decide(
        self, now_ms: int, choice: TopicChoice | None, catalog: tuple[CatalogTopic, ...]
    ) -> Decision | None:
        if self.pinned is not None:
            return None
        if self.last_visual_ms is None:
            return Decision("first", choice or self._next_in_rotation(catalog))
        since_s = (now_ms - self.last_visual_ms) / 1000
        if (
            choice is not None
            and choice.topic != self.current_topic
            and choice.confidence >= self.settings.shift_confidence
            and since_s >= self.settings.min_gap_s
        ):
            return Decision("shift", choice)
        if since_s >= self.settings.interval_s:
            if choice is None or choice.confidence < self.settings.shift_confidence / 2:
                choice = self._next_in_rotation(catalog)
            return Decision("interval", choice)
        return None

    def _next_in_rotation(self, catalog: tuple[CatalogTopic, ...]) -> TopicChoice:
        if not catalog:
            return TopicChoice("Livestage", "livestage", 0.0, reason="nothing to go on")
        for _ in range(len(catalog)):
            topic = catalog[self.rotation % len(catalog)]
            self.rotation += 1
            if topic.name != self.current_topic or len(catalog) == 1:
                break
        return TopicChoice(topic.name, topic.name, 0.0, topic.keywords, True, "rotation")

    def pick_source(self, sources: list[Source]) -> Source | None:
        """The first source not shown lately; else the one shown longest ago."""
        if not sources:
            return None
        fresh = [source for source in sources if source.url not in self.recent_urls]
        if fresh:
            return fresh[0]
        return min(sources, key=lambda source: list(self.recent_urls).index(source.url))

    def kind_for(self, source: Source | None) -> Kind:
        return choose_kind(
            self.visuals_made + 1,
            self.pages_made + 1,
            source,
            self.settings.clip_every,
            self.settings.backdrop_every,
        )

    def made(self, visual: StageVisual, now_ms: int) -> None:
        """Record a published visual."""
        self.last_visual_ms = now_ms
        self.current_topic = visual.topic or self.current_topic
        self.visuals_made += 1
        if visual.kind != "backdrop":
            self.pages_made += 1
            if visual.source_url:
                self.recent_urls.append(visual.source_url)

    def failed(self, now_ms: int) -> None:
        """A visual could not be made: wait a full interval before the next try."""
        self.last_visual_ms = now_ms

    def pin(self, visual: StageVisual) -> None:
        self.pinned = visual

    def unpin(self) -> None:
        self.pinned = None

    def pinned_needs_refresh(self, now_ms: int) -> bool:
        """True when the pinned visual's URL runs out within a quarter of its lifetime."""
        if self.pinned is None:
            return False
        remaining_ms = self.pinned.expires_at - now_ms
        return remaining_ms < self.settings.visual_ttl_s * 1000 / 4


def choose_kind(
    visual_number: int,
    page_number: int,
    source: Source | None,
    clip_every: int,
    backdrop_every: int,
) -> Kind:
    if source is None:
        return "backdrop"
    if backdrop_every and visual_number % backdrop_every == 0:
        return "backdrop"
    if source.kind == "clip":
        return "clip"
    if source.kind == "screenshot":
        return "screenshot"
    if clip_every and page_number % clip_every == 0:
        return "clip"
    return "screenshot"
