"""Search providers: from a topic to pages worth showing, one file each behind
`base.SearchProvider`, chosen by `STAGE_SEARCH` in `SEARCH_PROVIDERS` (a
`livestage.registry.Registry`: an unknown name is refused with the valid ones).

| name | pages from | needs |
|---|---|---|
| sources | the sources file (`STAGE_SOURCES_FILE`); the default, offline | nothing |
| searxng | a self-hosted SearXNG's JSON API (`STAGE_SEARXNG_URL`) | a SearXNG with `json` on |
| gemini | Google Search grounding through Gemini (`GEMINI_TEXT_MODEL`) | `GEMINI_API_KEY` |

Built with `SEARCH_PROVIDERS.build(settings.search, settings, gemini, sources)` (see `..backend`).
"""

from __future__ import annotations

from livestage.registry import Registry

from .base import SearchError, SearchProvider, Source
from .gemini import GeminiSearch
from .searxng import SearxngSearch
from .sources import SourcesFile, SourcesFileError, SourcesSearch

SEARCH_PROVIDERS: Registry[SearchProvider] = Registry(
    "search provider",
    setting="STAGE_SEARCH",
    members=(SourcesSearch, SearxngSearch, GeminiSearch),
)

__all__ = [
    "SEARCH_PROVIDERS",
    "SearchError",
    "SearchProvider",
    "Source",
    "SourcesFile",
    "SourcesFileError",
]
