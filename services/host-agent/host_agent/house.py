"""The house brain: a deterministic stand-in for a language model. Pure.

It is NOT a language model. It writes a short spoken line from templates, using what it is
given: the names and words of the comments it answers, the screen's title, summary and topic,
and the persona's phrases. It varies its templates and phrases (never the same template twice
running, phrases rotate) so a stream does not sound like a loop, and it is deterministic for a
given sequence of plans, which makes it testable. A real model comes from a production voice
backend (OpenAI Realtime, or any OpenAI-compatible endpoint through the `pipeline` backend).
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

from host_agent.brain import Comment, Screen, TurnPlan
from host_agent.persona import Persona
from host_agent.recall import house_line
from livestage.schemas import PLATFORM_EVENT_NAMES

_URL = re.compile(r"(https?://|www\.)\S+", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")
_STOPWORDS = frozenset(
    """about above after again against also because been before being below between both
    could does doing down during each from further have having here hers herself himself
    into itself just more most myself once only other ours ourselves over same should some
    such than that their theirs them themselves then there these they this those through
    under until very were what when where which while whom with would your yours yourself
    yourselves really think thing things know like want going gonna today tonight hello
    thanks thank please anyone everyone someone something stream host nova sage""".split()
)

DEFAULT_OPENERS = ("Oh, nice one", "Okay, love this", "Good one", "Alright", "Ooh")
DEFAULT_SIGN_OFFS = ("Keep them coming.", "What does everyone else think?", "Tell me more.")

QUESTION_TAKES = (
    "great question, and my honest answer is: it depends, but I lean towards yes",
    "I'd say mostly yes, with a few surprises",
    "I'm not totally sure, but I love that you asked",
    "that's the big one, isn't it? I think the answer is simpler than it looks",
    "short answer: probably. Long answer: ask me again in five minutes",
)
OPEN_QUESTION_TAKES = (
    "good question about {word}; I don't have a neat answer yet, so chat, help me out",
    "I'd have to chew on {word} a bit longer, but I love where your head is at",
    "that's a {word} question I'd happily dig into with all of you",
    "ooh, {word}. Ask me again once I've looked into it, deal?",
)
SCREEN_QUESTION_TAKES = (
    "right now we're looking at {title}",
    "on screen right now: {title}",
)
NO_SCREEN_TAKES = (
    "right now it's just me on screen, but pictures show up behind me all by themselves",
)
STATEMENT_TAKES = (
    "I hear you",
    "that is totally fair",
    "same here, honestly",
    "that made me smile",
    "you might be onto something there",
)
REPLY_TEMPLATES = (
    "{opener}, {a}! You said {q}. {take}. {tie}",
    "{a}, thanks for that. {Take}. {tie} {sign_off}",
    "{a} in the chat: {q}. {Take}. {sign_off}",
    "Hey {a}! {Take}. All this talk about {word}, I love it. {tie}",
)
PAIR_TEMPLATES = (
    "{a} and {b}, I see you! {a}, you said {q}: {take}. And {b}, {r}: {take_b}.",
    "Two for the price of one. {a}: {q}. {Take}. {b}: {r}. {Take_b}.",
    "Okay, {a} first: {q}. {Take}. Then {b} with {r}, and {take_b}. {sign_off}",
)
VISUAL_TEMPLATES = (
    "While chat is quiet, look at this: {title}. {summary} What do you make of it?",
    "Let's talk about what's on screen. {title}. {summary} Tell me in the chat.",
    "So, {title}. {summary} Anyone here know more about {topic}?",
    "Quick look at the screen: {title}. {summary} I'm curious what you think.",
)
TIES_SCREEN = (
    "And {topic} is still up on screen, so keep an eye on it.",
    "Meanwhile, {topic} is on screen behind me.",
    "That fits nicely with {topic}, by the way.",
)
TIES_NONE = ("", "Chat's lively today.", "I'm glad you're here.")
THANKS_TEMPLATES = (
    "Thank you for the {what}, {a}!",
    "{a}, thank you so much for the {what}!",
    "Thank you for the {what}, {a}, that means a lot!",
)


def _event_what(comment: Comment) -> str:
    """What a platform event is called in a thank-you: "$5.00 Super Chat", "100 bits"."""
    name = PLATFORM_EVENT_NAMES.get(comment.event, comment.event)
    amount = _clean(comment.amount, 4) if comment.amount else ""
    if comment.event == "cheer" and amount:
        return amount  # "100 bits"
    return f"{amount} {name}" if amount else name


def _names_screen(comment: Comment, screen: Screen | None) -> bool:
    """Whether `_take` answers `comment` with the screen's title."""
    return bool(
        comment.is_question
        and _ABOUT_SCREEN.search(comment.body)
        and screen is not None
        and (screen.title or screen.topic)
    )


_OPEN_QUESTION = re.compile(r"\W*(what|who|where|when|why|how|which)\b", re.IGNORECASE)
_ABOUT_SCREEN = re.compile(
    r"\b(on (the )?screen|looking at|what('s| is) (this|that)|behind you|showing)\b", re.IGNORECASE
)


def _clean(text: str, max_words: int) -> str:
    text = _URL.sub("that link", text)
    words = text.split()
    short = " ".join(words[:max_words])
    if len(words) > max_words:
        short += "…"
    return short.strip(" .!?") or "that"


def _first_sentence(text: str, max_words: int = 24) -> str:
    sentence = re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0]
    cleaned = _clean(sentence, max_words)
    return cleaned + "." if cleaned and cleaned[-1] not in ".!?…" else cleaned


def salient_word(body: str) -> str:
    """The most telling word of a comment (longest non-stopword), for echoing it back."""
    words = [w.strip("'-").lower() for w in _WORD.findall(_URL.sub(" ", body))]
    candidates = [w for w in words if w not in _STOPWORDS]
    return max(candidates, key=len) if candidates else "this"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


@dataclass
class HouseWriter:
    """Writes one spoken line per plan. Keep one per job: it remembers what it used."""

    persona: Persona
    _last_template: dict[str, int] = field(default_factory=dict)
    _counters: dict[str, int] = field(default_factory=dict)

    def write(self, plan: TurnPlan) -> str:
        if plan.kind == "say":
            return plan.text
        if plan.kind == "reply" and plan.comments:
            return self._reply(plan.comments, plan.screen)
        if plan.topic == "callback" and plan.callback is not None:
            return house_line(plan.callback, int(plan.planned_at * 1000))
        if plan.topic == "greeting":
            return self.persona.greeting_text() or f"Hey, welcome in! I'm {self.persona.name}."
        return self._visual(plan.screen)

    # ---- choosing --------------------------------------------------------------------------

    def _pick(self, key: str, options: Sequence[str], salt: str = "") -> str:
        """Rotate through `options` from a salted start, never repeating the previous one."""
        if not options:
            return ""
        count = self._counters.get(key, 0)
        self._counters[key] = count + 1
        index = (zlib.crc32(salt.encode()) + count) % len(options)
        last = self._last_template.get(key)
        if last == index and len(options) > 1:
            index = (index + 1) % len(options)
        self._last_template[key] = index
        return options[index]

    def _take(self, comment: Comment, screen: Screen | None = None) -> str:
        """The answer part of a reply: what a question about the screen, an open question, a
        yes/no question or a statement gets."""
        if not comment.is_question:
            return self._pick("take_s", STATEMENT_TAKES, comment.id)
        if _ABOUT_SCREEN.search(comment.body):
            if screen is not None and (screen.title or screen.topic):
                title = _clean(screen.title or screen.topic, 12)
                return self._pick("take_screen", SCREEN_QUESTION_TAKES, comment.id).format(
                    title=title
                )
            return self._pick("take_no_screen", NO_SCREEN_TAKES, comment.id)
        if _OPEN_QUESTION.match(comment.body):
            # "what/why/how ..." cannot be answered with "yes": talk about its subject instead.
            return self._pick("take_open", OPEN_QUESTION_TAKES, comment.id).format(
                word=salient_word(comment.body)
            )
        return self._pick("take_q", QUESTION_TAKES, comment.id)

    def _tie(self, screen: Screen | None, salt: str) -> str:
        topic = screen and (screen.topic or screen.title)
        if topic:
            return self._pick("tie", TIES_SCREEN, salt).format(topic=_clean(topic, 8))
        return self._pick("tie_none", TIES_NONE, salt)

    # ---- lines -----------------------------------------------------------------------------

    def _reply(self, comments: Sequence[Comment], screen: Screen | None) -> str:
        """One line per platform event (a thank-you), and the answer to the other comments."""
        lines = [self._thanks(comment) for comment in comments if comment.is_event]
        others = [comment for comment in comments if not comment.is_event]
        if others:
            lines.append(self._answer(others, screen))
        return " ".join(lines)

    def _thanks(self, comment: Comment) -> str:
        template = self._pick("thanks", THANKS_TEMPLATES, comment.id)
        return template.format(what=_event_what(comment), a=comment.addressed_as)

    def _answer(self, comments: Sequence[Comment], screen: Screen | None) -> str:
        first = comments[0]
        opener = self._pick("opener", self.persona.openers or DEFAULT_OPENERS, first.id)
        sign_off = self._pick("sign_off", self.persona.sign_offs or DEFAULT_SIGN_OFFS, first.id)
        take = self._take(first, screen)
        values = {
            "opener": opener,
            "sign_off": sign_off,
            "a": first.addressed_as,
            "q": _clean(first.body, 14),
            "take": take,
            "Take": _cap(take),
            "word": salient_word(first.body),
            # A reply that already named what is on screen does not name it again.
            "tie": "" if _names_screen(first, screen) else self._tie(screen, first.id),
        }
        if len(comments) >= 2:
            second = comments[1]
            take_b = self._take(second, screen)
            values |= {
                "b": second.addressed_as,
                "r": _clean(second.body, 12),
                "take_b": take_b,
                "Take_b": _cap(take_b),
            }
            template = self._pick("pair", PAIR_TEMPLATES, first.id + second.id)
        else:
            template = self._pick("reply", REPLY_TEMPLATES, first.id)
        return " ".join(template.format(**values).split())

    def _visual(self, screen: Screen | None) -> str:
        if screen is None:
            return "It's quiet in here. Say hi in the chat and tell me what you'd like to see."
        title = _clean(screen.title or screen.topic or f"this {screen.kind}", 12)
        summary = _first_sentence(screen.summary) if screen.summary else ""
        topic = _clean(screen.topic or screen.title or "it", 6)
        template = self._pick("visual", VISUAL_TEMPLATES, screen.id)
        return " ".join(template.format(title=title, summary=summary, topic=topic).split())
