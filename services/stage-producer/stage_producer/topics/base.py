"""Topic picking: from what chat and the host said lately to one topic for the next visual.

A picker is pure with respect to the loop: it takes a `TopicContext` (recent chat, recent talk,
the current topic, the catalog of known topics) and returns a `TopicChoice` or None ("nothing
to go on"). Each picker is a file beside this one, with its `name` (and `from_settings` when it
needs more than defaults); `topics.TOPIC_PICKERS` builds the one `STAGE_TOPIC_PICKER` names.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, field

from ..backend import StageBackend


@dataclass(frozen=True)
class CatalogTopic:
    """A topic the sources file knows: its name, words that point at it, a line about it."""

    name: str
    keywords: tuple[str, ...] = ()
    description: str = ""

    @property
    def text(self) -> str:
        return f"{self.name}. {', '.join(self.keywords)}. {self.description}".strip()


@dataclass(frozen=True)
class Utterance:
    text: str
    at_ms: int
    author: str = ""


@dataclass(frozen=True)
class TopicContext:
    chat: tuple[Utterance, ...] = ()
    talk: tuple[Utterance, ...] = ()
    current: str | None = None
    catalog: tuple[CatalogTopic, ...] = ()
    now_ms: int = 0


@dataclass(frozen=True)
class TopicChoice:
    """`topic` names it (shown, and used to find a source); `query` is what to search for;
    `confidence` (0..1) says how clearly chat points at it; `catalog` when it is a known topic."""

    topic: str
    query: str
    confidence: float
    keywords: tuple[str, ...] = field(default_factory=tuple)
    catalog: bool = False
    reason: str = ""


class TopicPicker(StageBackend):
    """One way to pick a topic. Subclasses set `name` and implement `pick`."""

    @abstractmethod
    async def pick(self, context: TopicContext) -> TopicChoice | None:
        """The topic chat is on, or None when there is nothing to go on."""
