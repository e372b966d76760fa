"""Search providers, chosen by `STAGE_SEARCH` (see `base.SearchProvider`)."""

from __future__ import annotations

from google import genai

from .base import SearchError, SearchProvider, Source
from .gemini import GeminiSearch
from .searxng import SearxngSearch
from .sources import SourcesFile, SourcesFileError, SourcesSearch

__all__ = [
    "SearchError",
    "SearchProvider",
    "Source",
    "SourcesFile",
    "SourcesFileError",
    "make_search_provider",
]


def make_search_provider(
    choice: str,
    sources: SourcesFile,
    *,
    searxng_url: str,
    client: genai.Client | None,
    text_model: str,
) -> SearchProvider:
    if choice == "searxng":
        return SearxngSearch(searxng_url)
    if choice == "gemini":
        if client is None:
            raise ValueError("STAGE_SEARCH=gemini needs GEMINI_API_KEY")
        return GeminiSearch(client, text_model)
    return SourcesSearch(sources)
