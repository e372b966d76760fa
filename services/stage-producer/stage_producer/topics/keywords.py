"""Offline topic picking by keywords: which known topic do recent messages mention most?

Each message counts with a weight that halves every `half_life_s`; the host's own words count
half. A known topic (from the sources file) wins by the words it lists; with none mentioned, a
word that several recent messages repeat becomes a free topic (a backdrop can still be drawn for
it). Pure: no I/O, no clock of its own.
"""

from __future__ import annotations

import re
from collections import Counter

from .base import CatalogTopic, TopicChoice, TopicContext, TopicPicker, Utterance

STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could did didn do does doesn doing don down during
    each few for from further get got had has have having he her here hers herself him himself his
    how i if in into is isn it its itself just know like lol lmao me more most much my myself no
    nor not now of off ok okay on once only or other our ours ourselves out over own really same
    say see she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was wasn we were what when where which
    while who whom why will with would yes yeah you your yours yourself yourselves hi hello hey
    thanks thank please think going want good great nice cool one two thing things stuff today
    right well still back even make made way look looks looking time gonna wanna
    """.split()
)
_WORD = re.compile(r"[a-z][a-z0-9'-]{1,30}")


def words_of(text: str) -> list[str]:
    return [word.strip("'-") for word in _WORD.findall(text.lower())]


def _weight(utterance: Utterance, now_ms: int, half_life_s: float) -> float:
    age_s = max(0.0, (now_ms - utterance.at_ms) / 1000)
    return float(0.5 ** (age_s / half_life_s))


def topic_scores(
    context: TopicContext, half_life_s: float = 90.0, talk_weight: float = 0.5
) -> dict[str, float]:
    """Score of each catalog topic: recency-weighted mentions of its name or keywords."""
    scores: dict[str, float] = {topic.name: 0.0 for topic in context.catalog}
    weighted = [(u, 1.0) for u in context.chat] + [(u, talk_weight) for u in context.talk]
    for utterance, scale in weighted:
        text = " " + " ".join(words_of(utterance.text)) + " "
        weight = scale * _weight(utterance, context.now_ms, half_life_s)
        for topic in context.catalog:
            terms = {topic.name.lower(), *(k.lower() for k in topic.keywords)}
            if any(f" {term} " in text for term in terms if term):
                scores[topic.name] += weight
    return scores


class KeywordPicker(TopicPicker):
    name = "keywords"

    def __init__(self, half_life_s: float = 90.0, free_topic_min_mentions: int = 3) -> None:
        self.half_life_s = half_life_s
        self.free_topic_min_mentions = free_topic_min_mentions

    async def pick(self, context: TopicContext) -> TopicChoice | None:
        return self.choose(context)

    def choose(self, context: TopicContext) -> TopicChoice | None:
        scores = topic_scores(context, self.half_life_s)
        ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
        if ranked and ranked[0][1] > 0:
            name, top = ranked[0]
            second = ranked[1][1] if len(ranked) > 1 else 0.0
            # Clear when several recent mentions agree and nothing else competes.
            confidence = (top / (top + second + 0.5)) * min(1.0, top / 2.0)
            topic = next(t for t in context.catalog if t.name == name)
            return TopicChoice(
                topic=name,
                query=name,
                confidence=round(confidence, 3),
                keywords=topic.keywords,
                catalog=True,
                reason=f"chat mentions {name} (score {top:.2f} vs {second:.2f})",
            )
        return self._free_topic(context)

    def _free_topic(self, context: TopicContext) -> TopicChoice | None:
        counts: Counter[str] = Counter()
        for utterance in context.chat:
            counts.update(
                {w for w in words_of(utterance.text) if len(w) > 3 and w not in STOPWORDS}
            )
        if not counts:
            return None
        word, mentions = counts.most_common(1)[0]
        if mentions < self.free_topic_min_mentions:
            return None
        confidence = min(1.0, mentions / (self.free_topic_min_mentions * 2)) * 0.8
        return TopicChoice(
            topic=word.capitalize(),
            query=word,
            confidence=round(confidence, 3),
            keywords=(word,),
            reason=f"{mentions} recent messages say {word!r}",
        )


def catalog_names(catalog: tuple[CatalogTopic, ...]) -> list[str]:
    return [topic.name for topic in catalog]
