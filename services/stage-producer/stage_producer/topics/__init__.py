"""Topic pickers, chosen by `STAGE_TOPIC_PICKER` (see `base.TopicPicker`)."""

from __future__ import annotations

from google import genai

from .base import CatalogTopic, TopicChoice, TopicContext, TopicPicker, Utterance
from .embeddings import EmbeddingPicker
from .gemini import GeminiPicker
from .keywords import KeywordPicker

__all__ = [
    "CatalogTopic",
    "TopicChoice",
    "TopicContext",
    "TopicPicker",
    "Utterance",
    "make_topic_picker",
]


def make_topic_picker(choice: str, client: genai.Client | None, text_model: str) -> TopicPicker:
    """`keywords`, `embeddings`, `gemini` (needs a client) or `auto` (gemini with a key)."""
    if choice == "gemini" and client is None:
        raise ValueError("STAGE_TOPIC_PICKER=gemini needs GEMINI_API_KEY")
    if choice == "gemini" or (choice == "auto" and client is not None):
        assert client is not None
        return GeminiPicker(client, text_model)
    if choice == "embeddings":
        return EmbeddingPicker()
    return KeywordPicker()
