"""Search: from a topic to pages worth showing. Each provider is a file beside this one, with
its `name` and `from_settings`; `search.SEARCH_PROVIDERS` builds the one `STAGE_SEARCH` names."""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Literal

from ..backend import StageBackend
from ..topics.base import TopicChoice


@dataclass(frozen=True)
class Source:
    """A page to capture: its URL, a title, and what the host could say about it."""

    url: str
    title: str = ""
    summary: str = ""
    kind: Literal["any", "screenshot", "clip"] = "any"


class SearchError(Exception):
    """The search provider could not answer (down, refused, malformed reply)."""


class SearchProvider(StageBackend):
    """One place pages come from. Subclasses set `name`, build in `from_settings`, find pages."""

    @abstractmethod
    async def find(self, choice: TopicChoice, limit: int = 5) -> list[Source]:
        """Pages about `choice`, best first (may be empty)."""
