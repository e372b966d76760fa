"""Backdrop makers, chosen by `STAGE_BACKDROP` (see `base.BackdropMaker`)."""

from __future__ import annotations

from google import genai

from .base import Backdrop, BackdropError, BackdropMaker, BackdropRequest
from .gemini import GeminiBackdrops
from .procedural import ProceduralBackdrops

__all__ = [
    "Backdrop",
    "BackdropError",
    "BackdropMaker",
    "BackdropRequest",
    "make_backdrop_maker",
]


def make_backdrop_maker(
    choice: str, client: genai.Client | None, image_model: str
) -> BackdropMaker:
    """`procedural`, `gemini` (needs a client) or `auto` (gemini with a key, else procedural)."""
    if choice == "gemini" and client is None:
        raise ValueError("STAGE_BACKDROP=gemini needs GEMINI_API_KEY")
    if choice == "gemini" or (choice == "auto" and client is not None):
        assert client is not None
        return GeminiBackdrops(client, image_model)
    return ProceduralBackdrops()
