"""`classifier`: the offline model of `alt-profanity-check`, run on the normalized text so
leetspeak does not slip past it (`livestage.safety.classifier` holds the model and its cache).

It is good at insults ("you idiot", "moron", "loser") and strict about mild words in short
messages ("this sucks" scores 1.0), so the default threshold is high (0.98); threats it scores
lower are covered by phrases in the blocklist.
"""

from __future__ import annotations

from typing import Self

from livestage.safety.classifier import Scorer, load_scorer
from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings


class Classifier(Check):
    name = "classifier"

    def __init__(self, score: Scorer, threshold: float) -> None:
        self.score = score
        self.threshold = threshold

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(load_scorer(settings.classifier_cache_dir), settings.classifier_threshold)

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        text = context.normalized.text
        if not text or self.score([text])[0] < self.threshold:
            return None
        return self.reject(
            "Your message looks insulting or abusive; please keep it friendly.", strike=True
        )
