"""One place that builds the google-genai client (pinned: google-genai 3.6.1) from settings.

Topic picking, search grounding and backdrops all use it, through `Gemini` (the one client and
the models), which every member of those families takes in `from_settings`. `GEMINI_BASE_URL`
points the real library at another server (tests use a local double of the Gemini API there).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Literal, Self

from google import genai
from google.genai import types

from livestage.registry import BackendUnavailable
from livestage.settings import GeminiSettings

if TYPE_CHECKING:
    from .search.sources import SourcesFile
    from .settings import StageSettings


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


@dataclass(frozen=True)
class Gemini:
    """What the stage's Gemini members share: one client (None without GEMINI_API_KEY) and the
    models (`GEMINI_TEXT_MODEL`, `GEMINI_IMAGE_MODEL`)."""

    client: genai.Client | None
    text_model: str
    image_model: str

    @classmethod
    def from_settings(cls, settings: GeminiSettings) -> Gemini:
        return cls(gemini_client(settings), settings.text_model, settings.image_model)

    def require(self) -> genai.Client:
        """The client, for a member that cannot work without one."""
        if self.client is None:
            raise BackendUnavailable("GEMINI_API_KEY")
        return self.client


class GeminiMember:
    """A backend that works through Gemini (mixed in before the family's base): built from the
    shared client and the model of its `model_kind`, refused without GEMINI_API_KEY."""

    model_kind: ClassVar[Literal["text", "image"]] = "text"

    def __init__(self, client: genai.Client, model: str) -> None:
        self.client = client
        self.model = model

    @classmethod
    def from_settings(cls, settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> Self:
        model = gemini.image_model if cls.model_kind == "image" else gemini.text_model
        return cls(gemini.require(), model)


def gemini_or(offline: str) -> Callable[..., str]:
    """The `auto` rule of a family with a `gemini` member: `gemini` when GEMINI_API_KEY is set,
    else `offline`. Given what `from_settings` takes: the settings, Gemini, the sources."""

    def auto(settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> str:
        return "gemini" if gemini.client is not None else offline

    return auto
