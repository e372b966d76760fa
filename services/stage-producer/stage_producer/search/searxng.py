"""A self-hosted SearXNG instance's JSON API (`GET /search?q=...&format=json`; JSON must be
enabled in its `settings.yml` under `search.formats`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Self

import httpx

from livestage.settings import mask_url

from ..topics.base import TopicChoice
from .base import SearchError, SearchProvider, Source

if TYPE_CHECKING:
    from ..gemini import Gemini
    from ..settings import StageSettings
    from .sources import SourcesFile


class SearxngSearch(SearchProvider):
    name = "searxng"

    def __init__(self, base_url: str, timeout_s: float = 8.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s

    @classmethod
    def from_settings(cls, settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> Self:
        return cls(settings.searxng_url)

    async def find(self, choice: TopicChoice, limit: int = 5) -> list[Source]:
        params = {"q": choice.query, "format": "json", "safesearch": "1", "language": "en"}
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s, trust_env=False) as client:
                response = await client.get(f"{self.base_url}/search", params=params)
        except httpx.HTTPError as error:
            raise SearchError(
                f"SearXNG at {mask_url(self.base_url)}: {mask_url(repr(error))}"
            ) from error
        if response.status_code == 403:
            raise SearchError(
                f"SearXNG at {mask_url(self.base_url)} refused format=json: enable json in its "
                "settings.yml (search.formats)"
            )
        if response.status_code != 200:
            raise SearchError(
                f"SearXNG at {mask_url(self.base_url)} answered HTTP {response.status_code}"
            )
        try:
            results = response.json().get("results", [])
        except ValueError as error:
            raise SearchError(
                f"SearXNG at {mask_url(self.base_url)} sent a body that is not JSON"
            ) from error
        found: list[Source] = []
        for result in results:
            url = str(result.get("url", ""))
            if not url.startswith(("http://", "https://")) or len(url) > 2048:
                continue
            found.append(
                Source(
                    url=url,
                    title=str(result.get("title", ""))[:300],
                    summary=str(result.get("content", ""))[:1000],
                )
            )
            if len(found) >= limit:
                break
        return found
