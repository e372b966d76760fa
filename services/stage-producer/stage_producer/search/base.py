"""Search: from a topic to pages worth showing. Each provider is a file beside this one, with
its `name` and `from_settings`; `search.SEARCH_PROVIDERS` builds the one `STAGE_SEARCH` names."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Self

from ..topics.base import TopicChoice

if TYPE_CHECKING:
    from ..gemini import Gemini
    from ..settings import StageSettings
    from .sources import SourcesFile


@dataclass(frozen=True)
class Source:
    """A page to capture: its URL, a title, and what the host could say about it."""

    url: str
    title: str = ""
    summary: str = ""
    kind: Literal["any", "screenshot", "clip"] = "any"


class SearchError(Exception):
    """The search provider could not answer (down, refused, malformed reply)."""


class SearchProvider(ABC):
    """One place pages come from. Subclasses set `name` and implement `from_settings` and `find`."""

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def from_settings(cls, settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> Self:
        """Build the provider from the stage's settings, the shared Gemini client (raise
        `BackendUnavailable` when it needs one and there is none) and the sources file."""

    @abstractmethod
    async def find(self, choice: TopicChoice, limit: int = 5) -> list[Source]:
        """Pages about `choice`, best first (may be empty)."""
