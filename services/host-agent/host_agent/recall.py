"""Recall: when the host calls back to what a returning regular told it, and what of a viewer's
memory a model may read. Pure: no I/O, an injectable clock.

The job reads a viewer's card (`livestage.memory.MemoryStore.card`) and asks `Recall` whether
to greet them with a callback ("welcome back, Marta — did the aurora you asked about last week
ever show up?"). The rules, each with its own test in `tests/test_recall.py`:

- Only regulars: a viewer with an earlier show in their card (`MemoryShows.last` holds a show
  id other than this one). A newcomer (no card, or only this show) gets the usual greeting.
- Only with something to call back to from before this show: a question they asked (the
  newest first), else a fact they stated, else a topic they talked about, within
  `RecallRules.max_age_days`. An empty card gives no callback.
- At most one callback per viewer per show (`called_back` records it), and none at all when
  memory is off for the show.
- Spacing: at least `spacing_s` between two callbacks in one show, so regulars do not crowd
  the room; and no callback while a newcomer is waiting for the host's attention (the job says
  how many: `newcomers_waiting`): the regular can be called back to later in the show.

`memory_snippet(card, now_ms)` is what of a card goes into a model's context when the viewer
asks something: a small dict (name, shows attended, when first seen, a few facts, questions
with the host's answers and topics, newest first) with every text flattened and cut like the
prompt's quotes, bounded to `RecallRules.max_snippet_chars` once encoded. It is *data*: it goes
into the prompt's data block (`livestage.prompt_data`) under `MEMORY_KEY`, never into
instructions (#14's rule: a fact such as "you must always say X" stays a quoted string).
`memory_block` is that block on its own; `MEMORY_DATA_RULE` is the sentence that tells the model
what the key holds.

`house_line(callback, now_ms)` is the local voice's spoken callback (the house brain does not
read prompts).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from host_agent.prompt import MEMORY_DATA_RULE, MEMORY_KEY, ago, flat
from livestage.memory import DAY_MS, MemoryCard, normalized
from livestage.prompt_data import data_block, encode_data

Clock = Callable[[], float]
"""Seconds since the epoch; tests pass a fake."""

CallbackKind = Literal["question", "fact", "topic"]

__all__ = [  # MEMORY_KEY, MEMORY_DATA_RULE and ago live in prompt.py (which recall reads)
    "MEMORY_DATA_RULE",
    "MEMORY_KEY",
    "Callback",
    "CallbackKind",
    "Recall",
    "RecallRules",
    "ago",
    "callback_subject",
    "house_line",
    "is_regular",
    "memory_block",
    "memory_snippet",
]


@dataclass(frozen=True)
class RecallRules:
    spacing_s: float = 120.0
    """Least time between two callbacks in one show."""
    max_age_days: float = 90.0
    """Older questions, facts and topics are not called back to (they stay in the card)."""
    snippet_facts: int = 5
    snippet_questions: int = 3
    snippet_topics: int = 5
    max_snippet_chars: int = 1500
    """Bound on the encoded snippet (JSON as it goes into the data block)."""


@dataclass(frozen=True)
class Callback:
    """Greet `name` (memory key `key`) with a callback to `about` (a question they asked, a
    fact they stated or a topic they talked about, at `at_ms`)."""

    key: str
    name: str
    kind: CallbackKind
    about: str
    at_ms: int


def is_regular(card: MemoryCard | None, show_id: str) -> bool:
    """Came to a show before this one."""
    return card is not None and any(show != show_id for show in card.shows.last)


_SENTENCE_END: Final = re.compile(r"(?<=[.!?])\s+")


def question_part(text: str) -> str:
    """The question in a message ("Hi! I'm from Lisbon. Did the aurora show up?" -> "Did the
    aurora show up?"): its last sentence that ends with "?", else the whole text."""
    asked = [s for s in _SENTENCE_END.split(text.strip()) if s.endswith("?")]
    return asked[-1] if asked else text


def callback_subject(
    card: MemoryCard, before_ms: int, not_before_ms: int
) -> tuple[CallbackKind, str, int] | None:
    """What to call back to, from between `not_before_ms` and `before_ms` (this show's start):
    the newest question, else the newest fact, else the newest topic; None when none."""

    def within(at: int) -> bool:
        return not_before_ms <= at < before_ms

    questions = [q for q in card.questions if within(q.asked_at)]
    if questions:
        newest = max(questions, key=lambda q: q.asked_at)
        return "question", question_part(newest.text), newest.asked_at
    facts = [f for f in card.facts if within(f.at) and not f.text.startswith("is called ")]
    if facts:
        fact = max(facts, key=lambda f: f.at)
        return "fact", fact.text, fact.at
    topics = [t for t in card.topics if within(t.at)]
    if topics:
        topic = max(topics, key=lambda t: t.at)
        return "topic", topic.name, topic.at
    return None


@dataclass
class Recall:
    """One show's callbacks: which viewers were called back to, and when the last one was."""

    show_id: str
    started_at_ms: int
    """When this show went live: callbacks are to what was said before it."""
    memory_on: bool = True
    rules: RecallRules = field(default_factory=RecallRules)
    clock: Clock = time.time
    _called_back: set[str] = field(default_factory=set, init=False)
    _last_callback_at: float | None = field(default=None, init=False)

    def callback(self, card: MemoryCard | None, *, newcomers_waiting: int = 0) -> Callback | None:
        """A callback to greet the card's viewer with now, or None (see the module's rules)."""
        if not self.memory_on or card is None or card.key in self._called_back:
            return None
        if not card.name or not is_regular(card, self.show_id):
            return None
        if newcomers_waiting > 0 or not self.spaced():
            return None
        now_ms = int(self.clock() * 1000)
        oldest = now_ms - int(self.rules.max_age_days * DAY_MS)
        subject = callback_subject(card, before_ms=self.started_at_ms, not_before_ms=oldest)
        if subject is None:
            return None
        kind, about, at_ms = subject
        return Callback(key=card.key, name=card.name, kind=kind, about=about, at_ms=at_ms)

    def spaced(self) -> bool:
        """True when the spacing since the last callback has passed."""
        last = self._last_callback_at
        return last is None or self.clock() - last >= self.rules.spacing_s

    def called_back(self, key: str) -> None:
        """The job said a callback to `key`: none again this show, and the spacing starts."""
        self._called_back.add(key)
        self._last_callback_at = self.clock()

    def next_callback_at(self) -> float | None:
        """When a callback held back by the spacing may go (None: no wait)."""
        last = self._last_callback_at
        return None if last is None else last + self.rules.spacing_s


_SECOND_PERSON = (
    ("is from ", "you're from "),
    ("lives in ", "you live in "),
    ("plays ", "you play "),
    ("works as ", "you work as "),
    ("works at ", "you work at "),
    ("is ", "you're "),
)


def house_line(callback: Callback, now_ms: int) -> str:
    """The local voice's callback greeting, naming the viewer and what they said."""
    when = ago(callback.at_ms, now_ms).capitalize()
    about = flat(callback.about, 120)
    welcome = f"Welcome back, {callback.name}!"
    if callback.kind == "question":
        return f'{welcome} {when} you asked: "{about}" Any news on that?'
    if callback.kind == "topic":
        return f"{welcome} {when} we talked about {about}."
    for third, second in _SECOND_PERSON:
        if about.startswith(third):
            return f"{welcome} If I remember right, {second}{about.removeprefix(third)}."
    return f"{welcome} Good to see you again."


def _snippet(card: MemoryCard, now_ms: int, rules: RecallRules) -> dict[str, Any]:
    facts = [f for f in reversed(card.facts)][: rules.snippet_facts]
    questions = [q for q in reversed(card.questions)][: rules.snippet_questions]
    seen: set[str] = set()
    topics: list[str] = []
    for topic in reversed(card.topics):
        if normalized(topic.name) not in seen and len(topics) < rules.snippet_topics:
            seen.add(normalized(topic.name))
            topics.append(flat(topic.name, 48))
    snippet: dict[str, Any] = {
        "name": flat(card.name, 80),
        "shows_attended": card.shows.count,
        "first_seen": ago(card.first_seen, now_ms),
        "facts": [flat(f.text, 120) for f in facts],
        "recent_questions": [
            {
                "asked": ago(q.asked_at, now_ms),
                "text": flat(q.text, 200),
                "host_answered": flat(q.answer, 200),
            }
            for q in questions
        ],
        "topics": topics,
    }
    return snippet


def memory_snippet(
    card: MemoryCard, now_ms: int, rules: RecallRules | None = None
) -> dict[str, Any]:
    """The bounded, quoted-data view of `card` for a model's context (newest first); the
    oldest entries go until it encodes within `rules.max_snippet_chars`."""
    rules = rules or RecallRules()
    snippet = _snippet(card, now_ms, rules)
    lists = ("recent_questions", "facts", "topics")
    while len(encode_data({MEMORY_KEY: snippet})) > rules.max_snippet_chars:
        longest = max(lists, key=lambda key: len(snippet[key]))
        if not snippet[longest]:
            break  # name, count and "first seen" alone are always small
        snippet[longest] = snippet[longest][:-1]
    return snippet


def memory_block(card: MemoryCard, now_ms: int, rules: RecallRules | None = None) -> str:
    """The snippet as a data block of its own (`livestage.prompt_data.data_block`)."""
    return data_block({MEMORY_KEY: memory_snippet(card, now_ms, rules)})
