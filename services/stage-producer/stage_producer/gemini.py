"""One place that builds the google-genai client (pinned: google-genai 3.6.1) from settings.

Topic picking, search grounding and backdrops all use it. `GEMINI_BASE_URL` points the real
library at another server (tests use a local double of the Gemini API there).
"""

from __future__ import annotations

from google import genai
from google.genai import types

from livestage.settings import GeminiSettings


def gemini_client(settings: GeminiSettings, timeout_s: float = 60.0) -> genai.Client | None:
    """A client when GEMINI_API_KEY is set, else None (callers then use their offline choice)."""
    if settings.api_key is None or not settings.api_key.get_secret_value():
        return None
    options = types.HttpOptions(timeout=int(timeout_s * 1000))
    if settings.base_url:
        options.base_url = settings.base_url
    return genai.Client(api_key=settings.api_key.get_secret_value(), http_options=options)


def response_text(response: types.GenerateContentResponse) -> str:
    """All text parts of the first candidate, joined (empty when there are none)."""
    for candidate in response.candidates or []:
        parts = candidate.content.parts if candidate.content else None
        return "".join(part.text or "" for part in parts or [] if not part.thought)
    return ""
