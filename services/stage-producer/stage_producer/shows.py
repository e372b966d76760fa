"""Each show's stage (`ShowConfig.stage`): which topics, which search provider, which backdrops.

The service follows `room.config.*` (from the last event of each room, then live: it has no
Redis, like `room.show.*`) and keeps per room:

- `stage.topics`: the names of sources-file topics the show uses. The topic picker and the
  plan's rotation see only those (`catalog`), and a topic picked outside them (a free topic from
  chat, another show's topic) is dropped (`allows`): a show only ever gets visuals of its own
  topics. A name the sources file does not know is ignored with a WARNING; empty (or none known,
  with a WARNING): every topic.
- `stage.search` / `stage.backdrops`: a member of `SEARCH_PROVIDERS` / `BACKDROPS` by name (built
  once per name and shared by the shows that name it). One that cannot be built here (gemini
  without GEMINI_API_KEY) is the service's own (STAGE_SEARCH / STAGE_BACKDROP), with a WARNING.

A room without a configuration event, a deleted show, or null fields: the service's settings.
Operator captures and backdrops go through the show's factory too (its backdrop maker).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TypeVar

from livestage.registry import BackendUnavailable, Registry
from livestage.schemas import ShowConfigEvent, ShowStageConfig

from .backdrops import BACKDROPS, BackdropMaker
from .gemini import Gemini
from .producer import VisualFactory
from .search import SEARCH_PROVIDERS, SearchProvider, SourcesFile
from .settings import StageSettings
from .topics import CatalogTopic, TopicChoice

log = logging.getLogger(__name__)

M = TypeVar("M", SearchProvider, BackdropMaker)


class ShowStages:
    """The stage configuration of every show this service has heard of, and what it builds."""

    def __init__(
        self, settings: StageSettings, gemini: Gemini, sources: SourcesFile, default: VisualFactory
    ) -> None:
        self.settings = settings
        self.gemini = gemini
        self.sources = sources
        self.default = default
        self._catalogs: dict[str, tuple[CatalogTopic, ...]] = {}
        self._factories: dict[str, VisualFactory] = {}
        self._built: dict[tuple[str, str], SearchProvider | BackdropMaker] = {}

    def apply(self, event: ShowConfigEvent) -> None:
        """A show was created, changed or deleted (`config` null)."""
        room = event.room
        stage = event.config.stage if event.config is not None else ShowStageConfig()
        self._catalogs.pop(room, None)
        self._factories.pop(room, None)
        if stage.topics:
            self._catalogs[room] = self._restricted(room, stage.topics)
        if stage.search is not None or stage.backdrops is not None:
            search = self._member(room, SEARCH_PROVIDERS, stage.search, self.default.search)
            backdrops = self._member(room, BACKDROPS, stage.backdrops, self.default.backdrops)
            self._factories[room] = dataclasses.replace(
                self.default, search=search, backdrops=backdrops
            )
        log.info(
            "room %s: stage topics %s, search %s, backdrops %s",
            room,
            [t.name for t in self._catalogs[room]] if room in self._catalogs else "all",
            self.factory(room).search.name,
            self.factory(room).backdrops.name,
        )

    def catalog(self, room: str) -> tuple[CatalogTopic, ...]:
        """The topics the room's picker and rotation see."""
        return self._catalogs.get(room, self.sources.catalog)

    def allows(self, room: str, choice: TopicChoice) -> bool:
        """Whether a picked topic is one of the room's (always, for a show without a list)."""
        catalog = self._catalogs.get(room)
        if catalog is None:
            return True
        topic = choice.topic.strip().lower()
        return any(known.name.lower() == topic for known in catalog)

    def factory(self, room: str) -> VisualFactory:
        """What makes the room's visuals: the service's factory with the show's backends."""
        return self._factories.get(room, self.default)

    def _restricted(self, room: str, names: list[str]) -> tuple[CatalogTopic, ...]:
        by_name = {topic.name.lower(): topic for topic in self.sources.catalog}
        unknown = [name for name in names if name.strip().lower() not in by_name]
        if unknown:
            log.warning(
                "room %s: the show names topics the sources file does not have, ignored: %s "
                "(known: %s)",
                room,
                unknown,
                [topic.name for topic in self.sources.catalog],
            )
        chosen = {name.strip().lower() for name in names}
        kept = tuple(topic for topic in self.sources.catalog if topic.name.lower() in chosen)
        if not kept:
            log.warning("room %s: none of the show's topics is known; every topic", room)
            return self.sources.catalog
        return kept

    def _member(self, room: str, registry: Registry[M], name: str | None, default: M) -> M:
        """The member `name` of `registry`, built once per name; None or unbuildable: `default`."""
        if name is None:
            return default
        key = (registry.setting, name)
        if key not in self._built:
            try:
                self._built[key] = registry.create(name, self.settings, self.gemini, self.sources)
            except BackendUnavailable as error:
                log.warning(
                    "room %s: the show's %s %r cannot be used here (%s); using %s",
                    room,
                    registry.family,
                    name,
                    error,
                    default.name,
                )
                return default
        return self._built[key]  # type: ignore[return-value]
