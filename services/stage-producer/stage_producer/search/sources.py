"""The offline provider: a YAML file of topics, the words that point at them, and their pages.

    topics:
      - name: Northern lights
        keywords: [aurora, northern lights, solar wind]
        description: Why the polar sky glows green and red.
        sources:
          - url: http://pages.livestage.invalid/aurora.html
            title: The northern lights
            summary: What the host can talk about while this is on screen.
            kind: any            # any | screenshot | clip

The shipped file (`stage_producer/sources.yaml`) names only pages this package ships and its
egress proxy serves itself (`http://pages.livestage.invalid/...`), so nothing leaves the machine
by default. `sources.example.yaml` lists public sites to opt into (`STAGE_SOURCES_FILE`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..topics.base import CatalogTopic, TopicChoice
from .base import SearchProvider, Source

if TYPE_CHECKING:
    from ..gemini import Gemini
    from ..settings import StageSettings


class SourceEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048)
    title: str = Field("", max_length=300)
    summary: str = Field("", max_length=2000)
    kind: Literal["any", "screenshot", "clip"] = "any"

    @field_validator("url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value


class TopicEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=80)
    keywords: list[str] = Field(default_factory=list, max_length=64)
    description: str = Field("", max_length=600)
    sources: list[SourceEntry] = Field(default_factory=list, max_length=64)


class SourcesDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")

    topics: list[TopicEntry] = Field(min_length=1, max_length=500)


class SourcesFileError(ValueError):
    """The sources file is missing or malformed; the message names the file and the field."""


def load_sources(path: Path) -> SourcesDocument:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise SourcesFileError(
            f"sources file {path} does not exist (STAGE_SOURCES_FILE)"
        ) from error
    except yaml.YAMLError as error:
        raise SourcesFileError(f"sources file {path} is not valid YAML: {error}") from error
    try:
        return SourcesDocument.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors()
        )
        raise SourcesFileError(f"sources file {path}: {problems}") from error


class SourcesFile:
    """The parsed file: the topic catalog (for pickers) and each topic's pages."""

    def __init__(self, document: SourcesDocument) -> None:
        self.document = document
        self.catalog: tuple[CatalogTopic, ...] = tuple(
            CatalogTopic(t.name, tuple(k.lower() for k in t.keywords), t.description)
            for t in document.topics
        )

    @classmethod
    def load(cls, path: Path) -> SourcesFile:
        return cls(load_sources(path))

    def topic(self, name: str) -> TopicEntry | None:
        lowered = name.strip().lower()
        return next((t for t in self.document.topics if t.name.lower() == lowered), None)

    def sources_for(self, choice: TopicChoice) -> list[Source]:
        entry = self.topic(choice.topic)
        if entry is None:  # a free topic: the known topic sharing most of its words, if any
            words = {w.lower() for w in (*choice.keywords, *choice.query.split())}
            best = max(
                self.document.topics,
                key=lambda t: len(words & {k.lower() for k in (*t.keywords, t.name)}),
            )
            if not words & {k.lower() for k in (*best.keywords, best.name)}:
                return []
            entry = best
        return [Source(s.url, s.title, s.summary, s.kind) for s in entry.sources]


class SourcesSearch(SearchProvider):
    name = "sources"

    def __init__(self, sources: SourcesFile) -> None:
        self.sources = sources

    @classmethod
    def from_settings(cls, settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> Self:
        return cls(sources)

    async def find(self, choice: TopicChoice, limit: int = 5) -> list[Source]:
        return self.sources.sources_for(choice)[:limit]
