"""HostBrain: what the host should do next. Pure: no I/O, no asyncio, an injectable clock.

The job feeds it what happens (approved chat, stage visuals, what was said, operator commands)
and asks `decide()` what to do; it answers `Speak(plan)`, `Interrupt(cause)` or `None`, and
`next_wakeup()` tells the job when asking again could give a different answer with no new
input. The job carries the decisions out (`generate_reply`, `say`, `interrupt`) and reports back
with `speech_finished()`.

The rules, each with its own unit test in `tests/test_brain.py`:

- Separate buffers: fresh chat (not yet answered), recent chat (context), what the host said,
  and the screen context (the current visual).
- Handled-id memory: a message id answered or dropped is never answered again, including when
  it is delivered twice or was answered by an earlier job (`observe_spoken`).
- Picking: one or two comments per turn; platform events the host may thank (a Super Chat, a
  new member or subscriber, a cheer) first, then questions and mentions of the host's name,
  then the newest; two picks are from different authors, and the author(s) answered last time are
  passed over while anyone else is waiting; comments older than `stale_after_s` are dropped.
- Batching: after the first fresh comment arrives while the host is free, wait
  `batch_window_s` for others, then answer (no fixed tick).
- Idle monologue: after `idle_after_s` without speech or chat, talk about the current visual,
  at most once per visual.
- Fresh chat interrupts an idle monologue (or the greeting) at once, never a reply.
- Memory: recent chat and talk older than `memory_s` are forgotten.
- Removal: a message removed (an operator, or the platform's own moderators) is never answered,
  whether the removal comes before or after it, and is dropped from the context.
- Control: pause (nothing is said on the host's own initiative), resume, `say` (verbatim,
  cutting in on whatever is being said), a greeting when the first viewer arrives.
- Welcoming a regular back (`welcome_back`, a `recall.Callback` the job got from `Recall`): a
  greeting turn of its own (topic "callback"), planned like the greeting: after fresh chat
  (viewers waiting are answered first), before an idle monologue, never while paused. The first
  greeting still due when a callback comes becomes that callback (one greeting, not two). One
  callback waits per viewer; one not said within `stale_after_s` is dropped (the moment passed).
- Handing over (the worker is draining: `hand_over`): nothing new is said (no turn, no queued
  `say`, no interrupt of the turn under way, so its sentence ends as planned); `handed_over`
  tells the job when the room can go to another worker. Comments not answered stay unanswered
  on `host.spoken`, so the next job answers them.
- A turn lost to a failing voice backend (`speech_failed`: not a word reached the room) is
  tried once more: its comments are fresh again (unless stale), its `say` is next again, its
  greeting or monologue is due again. A second failure of the same thing drops it.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from host_agent.settings import HostSettings
from livestage.settings import default_of

if TYPE_CHECKING:
    from host_agent.recall import Callback

Clock = Callable[[], float]
"""Seconds since the epoch (message timestamps are epoch based); tests pass a fake."""

TurnKind = Literal["reply", "monologue", "say"]
MonologueTopic = Literal["greeting", "callback", "visual"]

_QUESTION_START = re.compile(
    r"^\s*(who|what|when|where|why|how|which|is|are|do|does|did|can|could|would|will|should|"
    r"have|has)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Comment:
    """One approved chat message, as the brain sees it."""

    id: str
    author_name: str
    author_identity: str
    body: str
    created_at: float
    """When the edge took it (seconds since the epoch)."""
    approved_at: float
    """When moderation approved it (seconds since the epoch); reaction latency starts here."""
    platform: str = ""
    """The platform's name ("Twitch", "YouTube") for a line from its chat; "" for page chat."""
    event: str = "message"
    """A platform event the host may thank ("super_chat", "membership", "subscription",
    "cheer"; `livestage.schemas.PLATFORM_EVENT_NAMES`), else "message"."""
    amount: str = ""
    """The event's amount as the platform shows it ("$5.00", "100 bits"), or ""."""

    @property
    def addressed_as(self) -> str:
        """How the host names the author: "Marta on Twitch" for a platform viewer."""
        return f"{self.author_name} on {self.platform}" if self.platform else self.author_name

    @property
    def is_event(self) -> bool:
        return self.event != "message"

    @property
    def is_question(self) -> bool:
        return "?" in self.body or bool(_QUESTION_START.match(self.body))

    def mentions(self, name: str) -> bool:
        return bool(name) and re.search(rf"\b{re.escape(name)}\b", self.body, re.I) is not None


@dataclass(frozen=True)
class Screen:
    """The current stage visual."""

    id: str
    kind: str
    title: str = ""
    summary: str = ""
    topic: str = ""


@dataclass(frozen=True)
class Said:
    """Something the host said (this job or an earlier one)."""

    text: str
    kind: TurnKind
    at: float
    reply_to: tuple[str, ...] = ()
    interrupted: bool = False


@dataclass(frozen=True)
class TurnPlan:
    """Everything a voice backend needs to say one turn."""

    number: int
    kind: TurnKind
    comments: tuple[Comment, ...] = ()
    screen: Screen | None = None
    recent_chat: tuple[Comment, ...] = ()
    recent_talk: tuple[Said, ...] = ()
    text: str = ""
    """For `say`: the words to speak verbatim."""
    topic: MonologueTopic | None = None
    """For a monologue: the greeting, a regular's callback greeting, or the visual on screen."""
    planned_at: float = 0.0
    callback: Callback | None = None
    """For a callback greeting: whom to welcome back, and what to call back to."""

    @property
    def reply_to(self) -> tuple[str, ...]:
        return tuple(comment.id for comment in self.comments)


@dataclass(frozen=True)
class Speak:
    plan: TurnPlan


@dataclass(frozen=True)
class Interrupt:
    cause: Literal["chat", "say"]


Decision = Speak | Interrupt


@dataclass(frozen=True)
class BrainConfig:
    """The brain's rules: part of `HostSettings` (`HOST_*`), which owns their defaults.

    The job builds it with `livestage.settings.derive(BrainConfig, settings)`.
    """

    batch_window_s: float = default_of(HostSettings, "batch_window_s")
    max_comments: int = default_of(HostSettings, "max_comments")
    stale_after_s: float = default_of(HostSettings, "stale_after_s")
    idle_after_s: float = default_of(HostSettings, "idle_after_s")
    memory_s: float = default_of(HostSettings, "memory_s")
    recent_chat_limit: int = default_of(HostSettings, "recent_chat_limit")
    recent_talk_limit: int = default_of(HostSettings, "recent_talk_limit")
    greet: bool = default_of(HostSettings, "greet")


@dataclass
class _Speaking:
    plan: TurnPlan
    interrupt_asked: bool = False


@dataclass
class HostBrain:
    """The host's decisions. Create one per job; feed it; ask it."""

    host_name: str
    config: BrainConfig = field(default_factory=BrainConfig)
    clock: Clock = field(default=lambda: 0.0)

    def __post_init__(self) -> None:
        self._fresh: dict[str, Comment] = {}
        self._recent_chat: deque[Comment] = deque(maxlen=200)
        self._said: deque[Said] = deque(maxlen=100)
        self._handled: dict[str, float] = {}
        self._screen: Screen | None = None
        self._monologued_visuals: set[str] = set()
        self._speaking: _Speaking | None = None
        self._say_queue: deque[str] = deque()
        self._paused = False
        self._handing_over = False
        self._live_since: float | None = None
        self._greeting_due = False
        self._quiet_since = self.clock()
        self._first_fresh_at: float | None = None
        self._last_reply_authors: frozenset[str] = frozenset()
        self._turns = 0
        self._retried: set[str] = set()
        self._callbacks: dict[str, tuple[Callback, float]] = {}
        """Callback greetings due, by memory key, with when each came."""

    # ---- what happens ---------------------------------------------------------------------

    def went_live(self) -> None:
        """The first viewer arrived: the show starts (and the greeting is due)."""
        if self._live_since is None:
            self._live_since = self.clock()
            self._quiet_since = self._live_since
            self._greeting_due = self.config.greet

    def observe_chat(self, comment: Comment) -> bool:
        """An approved message. False when it was seen before (a redelivery): ignored."""
        now = self.clock()
        if comment.id in self._handled or comment.id in self._fresh:
            return False
        if any(seen.id == comment.id for seen in self._recent_chat):
            return False
        self._recent_chat.append(comment)
        if now - comment.created_at > self.config.stale_after_s:
            self._handled[comment.id] = now  # history from before this job: context only
            return True
        if not self._fresh:
            self._first_fresh_at = now
        self._fresh[comment.id] = comment
        self._quiet_since = max(self._quiet_since, now)
        return True

    def removed(self, message_id: str) -> None:
        """A message was removed: never answer it (also when it arrives later), forget it."""
        self._handled[message_id] = self.clock()
        self._fresh.pop(message_id, None)
        if not self._fresh:
            self._first_fresh_at = None
        kept = [comment for comment in self._recent_chat if comment.id != message_id]
        if len(kept) != len(self._recent_chat):
            self._recent_chat = deque(kept, maxlen=self._recent_chat.maxlen)

    def observe_visual(self, screen: Screen) -> None:
        if self._screen is None or self._screen.id != screen.id:
            self._screen = screen

    def observe_spoken(self, said: Said) -> None:
        """A turn said by an earlier job (from `host.spoken`): remember it, never re-answer."""
        for message_id in said.reply_to:
            self._handled[message_id] = self.clock()
            self._fresh.pop(message_id, None)
        if not any(s.at == said.at and s.text == said.text for s in self._said):
            self._said.append(said)

    def speech_finished(self, plan: TurnPlan, text: str, *, interrupted: bool) -> Said | None:
        """The job reports the end of `plan`'s speech (what was actually said)."""
        now = self.clock()
        if self._speaking is not None and self._speaking.plan.number == plan.number:
            self._speaking = None
        self._quiet_since = now
        if plan.kind == "reply":
            self._last_reply_authors = frozenset(c.author_identity for c in plan.comments)
        if not text:
            return None
        said = Said(
            text=text, kind=plan.kind, at=now, reply_to=plan.reply_to, interrupted=interrupted
        )
        self._said.append(said)
        return said

    def speech_failed(self, plan: TurnPlan) -> bool:
        """The voice failed before saying a word of `plan` (the job is switching backends):
        try it once more. False when it was already retried (then it is dropped)."""
        now = self.clock()
        if self._speaking is not None and self._speaking.plan.number == plan.number:
            self._speaking = None
        if plan.kind == "reply":
            keys = [f"comment:{c.id}" for c in plan.comments]
        elif plan.kind == "say":
            keys = [f"say:{plan.text}"]
        else:
            screen = plan.screen.id if plan.screen else ""
            keys = [f"monologue:{plan.topic}:{screen}"]
        if any(key in self._retried for key in keys):
            return False
        self._retried.update(keys)
        if plan.kind == "reply":
            for comment in plan.comments:
                if now - comment.created_at <= self.config.stale_after_s:
                    self._handled.pop(comment.id, None)
                    self._fresh[comment.id] = comment
            if self._fresh and self._first_fresh_at is None:
                self._first_fresh_at = now
        elif plan.kind == "say":
            self._say_queue.appendleft(plan.text)
        elif plan.topic == "greeting":
            self._greeting_due = True
        elif plan.topic == "callback" and plan.callback is not None:
            self._callbacks.setdefault(plan.callback.key, (plan.callback, now))
        elif plan.screen is not None:
            self._monologued_visuals.discard(plan.screen.id)
            self._quiet_since = now - self.config.idle_after_s
        return True

    def welcome_back(self, callback: Callback) -> bool:
        """Greet a returning regular with `callback` (see the module's rules). False when one
        for them is waiting already."""
        if callback.key in self._callbacks:
            return False
        self._callbacks[callback.key] = (callback, self.clock())
        return True

    @property
    def callbacks_due(self) -> int:
        """Callback greetings waiting to be said."""
        return len(self._callbacks)

    def pause(self) -> None:
        self._paused = True

    def resume(self) -> None:
        self._paused = False
        self._quiet_since = self.clock()

    def say(self, text: str) -> None:
        """Queue words to be spoken verbatim, next, even while paused."""
        if text.strip():
            self._say_queue.append(text.strip())

    def set_host_name(self, name: str) -> None:
        self.host_name = name

    def hand_over(self) -> None:
        """The worker is draining: say nothing new, let the turn under way end (not cut)."""
        self._handing_over = True

    # ---- what to do -------------------------------------------------------------------------

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def handing_over(self) -> bool:
        return self._handing_over

    @property
    def handed_over(self) -> bool:
        """Handing over and nothing under way: the job may end."""
        return self._handing_over and self._speaking is None

    @property
    def speaking(self) -> TurnPlan | None:
        return self._speaking.plan if self._speaking else None

    @property
    def screen(self) -> Screen | None:
        return self._screen

    def fresh(self) -> list[Comment]:
        return list(self._fresh.values())

    def recent_chat(self) -> list[Comment]:
        self._forget()
        return list(self._recent_chat)

    def recent_talk(self) -> list[Said]:
        self._forget()
        return list(self._said)

    def answered(self, message_id: str) -> bool:
        return message_id in self._handled

    def decide(self) -> Decision | None:
        now = self.clock()
        self._forget()
        self._drop_stale(now)

        if self._handing_over:
            return None

        if self._say_queue:
            if self._speaking is None:
                return self._start(
                    self._plan("say", now, text=self._say_queue.popleft()), chat=False
                )
            if not self._speaking.interrupt_asked and self._speaking.plan.kind != "say":
                self._speaking.interrupt_asked = True
                return Interrupt("say")
            return None

        if self._paused or self._live_since is None:
            return None

        if self._speaking is not None:
            if (
                self._fresh
                and self._speaking.plan.kind == "monologue"
                and not self._speaking.interrupt_asked
            ):
                self._speaking.interrupt_asked = True
                return Interrupt("chat")
            return None

        if self._fresh:
            if self._first_fresh_at is None:
                self._first_fresh_at = now
            if now >= self._first_fresh_at + self.config.batch_window_s:
                return self._start(self._plan("reply", now, comments=self._pick()), chat=True)
            return None

        if self._callbacks:
            key = next(iter(self._callbacks))
            callback, _ = self._callbacks.pop(key)
            self._greeting_due = False  # the callback is this viewer's greeting
            plan = self._plan("monologue", now, topic="callback", callback=callback)
            return self._start(plan, chat=False)

        if self._greeting_due:
            self._greeting_due = False
            return self._start(self._plan("monologue", now, topic="greeting"), chat=False)

        screen = self._screen
        if (
            screen is not None
            and screen.id not in self._monologued_visuals
            and now - self._quiet_since >= self.config.idle_after_s
        ):
            self._monologued_visuals.add(screen.id)
            return self._start(self._plan("monologue", now, topic="visual"), chat=False)
        return None

    def next_wakeup(self) -> float | None:
        """When `decide()` could answer differently without new input (epoch seconds)."""
        if (
            self._paused
            or self._handing_over
            or self._live_since is None
            or self._speaking is not None
        ):
            return None
        times: list[float] = []
        if self._fresh and self._first_fresh_at is not None:
            times.append(self._first_fresh_at + self.config.batch_window_s)
        if self._greeting_due or self._callbacks:
            times.append(self.clock())
        screen = self._screen
        if screen is not None and screen.id not in self._monologued_visuals:
            times.append(self._quiet_since + self.config.idle_after_s)
        return min(times) if times else None

    # ---- internals --------------------------------------------------------------------------

    def _start(self, plan: TurnPlan, *, chat: bool) -> Speak:
        self._speaking = _Speaking(plan)
        if chat:
            for comment in plan.comments:
                self._handled[comment.id] = plan.planned_at
                self._fresh.pop(comment.id, None)
            self._first_fresh_at = self.clock() if self._fresh else None
        return Speak(plan)

    def _plan(
        self,
        kind: TurnKind,
        now: float,
        *,
        comments: Iterable[Comment] = (),
        text: str = "",
        topic: MonologueTopic | None = None,
        callback: Callback | None = None,
    ) -> TurnPlan:
        self._turns += 1
        chosen = tuple(comments)
        chosen_ids = {c.id for c in chosen}
        context = [c for c in self._recent_chat if c.id not in chosen_ids]
        limit_chat, limit_talk = self.config.recent_chat_limit, self.config.recent_talk_limit
        return TurnPlan(
            number=self._turns,
            kind=kind,
            comments=chosen,
            screen=self._screen,
            recent_chat=tuple(context[-limit_chat:]) if limit_chat else (),
            recent_talk=tuple(list(self._said)[-limit_talk:]) if limit_talk else (),
            text=text,
            topic=topic,
            planned_at=now,
            callback=callback,
        )

    def _rank(self, comment: Comment) -> tuple[bool, bool, bool, float]:
        return (
            comment.is_event,
            comment.mentions(self.host_name),
            comment.is_question,
            comment.created_at,
        )

    def _pick(self) -> list[Comment]:
        candidates = sorted(self._fresh.values(), key=self._rank, reverse=True)
        others = [c for c in candidates if c.author_identity not in self._last_reply_authors]
        pool = others or candidates
        picked: list[Comment] = []
        for comment in pool:
            if len(picked) >= self.config.max_comments:
                break
            if any(p.author_identity == comment.author_identity for p in picked):
                continue
            picked.append(comment)
        return picked

    def _drop_stale(self, now: float) -> None:
        for comment in list(self._fresh.values()):
            if now - comment.created_at > self.config.stale_after_s:
                del self._fresh[comment.id]
                self._handled[comment.id] = now
        if not self._fresh:
            self._first_fresh_at = None
        for key, (_, since) in list(self._callbacks.items()):
            if now - since > self.config.stale_after_s:
                del self._callbacks[key]

    def _forget(self) -> None:
        now = self.clock()
        horizon = now - self.config.memory_s
        while self._recent_chat and self._recent_chat[0].approved_at < horizon:
            self._recent_chat.popleft()
        while self._said and self._said[0].at < horizon:
            self._said.popleft()
        # ids must outlive staleness, or a late redelivery could look fresh again
        id_horizon = now - max(self.config.memory_s, 2 * self.config.stale_after_s)
        for message_id, at in list(self._handled.items()):
            if at < id_horizon:
                del self._handled[message_id]
