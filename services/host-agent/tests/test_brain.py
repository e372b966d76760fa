"""HostBrain, one test (or a few) per rule, with a fake clock. No I/O anywhere."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from host_agent.brain import (
    BrainConfig,
    Comment,
    HostBrain,
    Interrupt,
    Said,
    Screen,
    Speak,
    TurnPlan,
)
from host_agent.recall import Callback
from tests.support.identities import named_viewer

T0 = 1_800_000_000.0


@dataclass
class FakeClock:
    now: float = T0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make_brain(clock: FakeClock, **config: object) -> HostBrain:
    settings = {"greet": False, **config}
    brain = HostBrain("Nova", BrainConfig(**settings), clock)  # type: ignore[arg-type]
    brain.went_live()
    return brain


_ids = iter(range(10_000))


def comment(
    clock: FakeClock, body: str, author: str = "ada", *, age_s: float = 0.0, id: str = ""
) -> Comment:
    return Comment(
        id=id or f"m{next(_ids)}",
        author_name=author.capitalize(),
        author_identity=named_viewer(author),
        body=body,
        created_at=clock.now - age_s,
        approved_at=clock.now - age_s,
    )


def speak(decision: object) -> TurnPlan:
    assert isinstance(decision, Speak), decision
    return decision.plan


def finish(brain: HostBrain, plan: TurnPlan, text: str = "words", interrupted: bool = False):
    return brain.speech_finished(plan, text, interrupted=interrupted)


# ---- buffers ----------------------------------------------------------------------------------


def test_buffers_are_separate() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    brain.observe_visual(Screen(id="v1", kind="screenshot", title="Cats"))
    first = comment(clock, "hello there")
    brain.observe_chat(first)
    assert brain.fresh() == [first] and brain.recent_chat() == [first]
    plan = speak(brain.decide())
    assert plan.comments == (first,) and plan.screen == Screen("v1", "screenshot", "Cats")
    assert brain.fresh() == [] and brain.recent_chat() == [first]  # answered: context only
    said = finish(brain, plan, "Hi Ada")
    assert brain.recent_talk() == [said]
    second = comment(clock, "and again", author="bob")
    brain.observe_chat(second)
    plan2 = speak(brain.decide())
    assert plan2.recent_chat == (first,)  # context excludes what is being answered
    assert plan2.recent_talk == (said,)


# ---- handled ids -------------------------------------------------------------------------------


def test_a_message_is_never_answered_twice() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    message = comment(clock, "what is this?")
    assert brain.observe_chat(message)
    plan = speak(brain.decide())
    assert plan.reply_to == (message.id,)
    finish(brain, plan)
    assert not brain.observe_chat(message)  # redelivered by JetStream: ignored
    clock.advance(1)
    assert brain.decide() is None
    assert brain.answered(message.id)


def test_a_reply_by_an_earlier_job_counts_as_answered() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    message = comment(clock, "still there?", age_s=5)
    brain.observe_spoken(Said("Yes, Ada!", "reply", clock.now - 2, reply_to=(message.id,)))
    assert not brain.observe_chat(message)
    assert brain.decide() is None
    assert brain.recent_talk()[0].text == "Yes, Ada!"


# ---- picking -----------------------------------------------------------------------------------


def test_picks_questions_and_mentions_first_then_newest() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, max_comments=2)
    old_plain = comment(clock, "nice stream", "ann", age_s=3)
    question = comment(clock, "where is this place?", "bob", age_s=2)
    newest_plain = comment(clock, "cool", "cid", age_s=0)
    mention = comment(clock, "nova you rock", "dan", age_s=4)
    for c in (old_plain, question, newest_plain, mention):
        brain.observe_chat(c)
    plan = speak(brain.decide())
    assert plan.comments == (mention, question)
    finish(brain, plan)
    plan = speak(brain.decide())
    assert plan.comments == (newest_plain, old_plain)  # newest first among the rest


def test_one_comment_per_author_per_turn() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, max_comments=2)
    a1 = comment(clock, "first?", "ann")
    a2 = comment(clock, "second?", "ann")
    brain.observe_chat(a1)
    brain.observe_chat(a2)
    plan = speak(brain.decide())
    assert len(plan.comments) == 1


def test_not_the_same_author_twice_running() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, max_comments=1)
    brain.observe_chat(comment(clock, "hi?", "ann"))
    finish(brain, speak(brain.decide()))
    again = comment(clock, "me again?", "ann")
    other = comment(clock, "hello", "bob", age_s=1)
    brain.observe_chat(again)
    brain.observe_chat(other)
    plan = speak(brain.decide())
    assert plan.comments == (other,)  # ann waits although her comment ranks higher
    finish(brain, plan)
    assert speak(brain.decide()).comments == (again,)  # and is answered when nobody else waits


def test_the_same_author_is_answered_when_nobody_else_waits() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    brain.observe_chat(comment(clock, "hi", "ann"))
    finish(brain, speak(brain.decide()))
    follow_up = comment(clock, "one more", "ann")
    brain.observe_chat(follow_up)
    assert speak(brain.decide()).comments == (follow_up,)


def test_stale_comments_are_dropped() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, stale_after_s=30)
    late = comment(clock, "anyone?")
    brain.observe_chat(late)
    brain.pause()
    clock.advance(31)
    brain.resume()
    assert brain.decide() is None
    assert brain.fresh() == [] and brain.answered(late.id)
    history = comment(clock, "from before the job", age_s=60)
    brain.observe_chat(history)  # arrives already stale: context, never answered
    assert brain.fresh() == [] and history in brain.recent_chat()


# ---- batching ----------------------------------------------------------------------------------


def test_waits_a_short_batching_window_then_answers_together() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0.5)
    first = comment(clock, "hey", "ann")
    brain.observe_chat(first)
    assert brain.decide() is None
    assert brain.next_wakeup() == pytest.approx(clock.now + 0.5)
    clock.advance(0.3)
    second = comment(clock, "yo", "bob")
    brain.observe_chat(second)
    assert brain.decide() is None  # the window runs from the first comment, not the last
    clock.advance(0.2)
    plan = speak(brain.decide())
    assert {c.id for c in plan.comments} == {first.id, second.id}


def test_chat_during_a_reply_is_answered_right_after_it() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0.5)
    brain.observe_chat(comment(clock, "one", "ann"))
    clock.advance(0.5)
    plan = speak(brain.decide())
    clock.advance(1)
    waiting = comment(clock, "two", "bob")
    brain.observe_chat(waiting)
    assert brain.decide() is None  # never interrupts a reply
    clock.advance(3)
    finish(brain, plan)
    assert speak(brain.decide()).comments == (waiting,)  # its window passed long ago


# ---- idle monologue ----------------------------------------------------------------------------


def test_idle_monologue_after_a_quiet_spell_once_per_visual() -> None:
    clock = FakeClock()
    brain = make_brain(clock, idle_after_s=20)
    brain.observe_visual(Screen(id="v1", kind="screenshot", title="Rockets"))
    clock.advance(19)
    assert brain.decide() is None
    assert brain.next_wakeup() == pytest.approx(T0 + 20)
    clock.advance(1)
    plan = speak(brain.decide())
    assert plan.kind == "monologue" and plan.topic == "visual"
    finish(brain, plan)
    clock.advance(60)
    assert brain.decide() is None  # at most one per visual
    assert brain.next_wakeup() is None
    brain.observe_visual(Screen(id="v2", kind="clip", title="Boats"))
    clock.advance(20)
    assert speak(brain.decide()).screen == Screen(id="v2", kind="clip", title="Boats")


def test_no_monologue_without_a_visual_or_while_chat_is_lively() -> None:
    clock = FakeClock()
    brain = make_brain(clock, idle_after_s=20, batch_window_s=0)
    clock.advance(100)
    assert brain.decide() is None  # nothing on screen
    brain.observe_visual(Screen(id="v1", kind="screenshot"))
    clock.advance(15)
    brain.observe_chat(comment(clock, "hi", "ann"))
    finish(brain, speak(brain.decide()))
    clock.advance(15)
    assert brain.decide() is None  # quiet for 15 s only: the spell restarts after speech
    clock.advance(5)
    assert speak(brain.decide()).kind == "monologue"


# ---- interrupting ------------------------------------------------------------------------------


def test_fresh_chat_interrupts_an_idle_monologue_once() -> None:
    clock = FakeClock()
    brain = make_brain(clock, idle_after_s=1, batch_window_s=0.3)
    brain.observe_visual(Screen(id="v1", kind="screenshot"))
    clock.advance(1)
    monologue = speak(brain.decide())
    message = comment(clock, "hello?", "ann")
    brain.observe_chat(message)
    assert brain.decide() == Interrupt("chat")
    assert brain.decide() is None  # asked once
    finish(brain, monologue, "half a sent", interrupted=True)
    clock.advance(0.3)
    assert speak(brain.decide()).comments == (message,)


def test_fresh_chat_interrupts_the_greeting() -> None:
    clock = FakeClock()
    brain = HostBrain("Nova", BrainConfig(greet=True), clock)
    brain.went_live()
    greeting = speak(brain.decide())
    assert greeting.topic == "greeting"
    brain.observe_chat(comment(clock, "hi", "ann"))
    assert brain.decide() == Interrupt("chat")


def test_fresh_chat_never_interrupts_a_reply() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    brain.observe_chat(comment(clock, "first", "ann"))
    speak(brain.decide())
    brain.observe_chat(comment(clock, "second", "bob"))
    assert brain.decide() is None


# ---- memory ------------------------------------------------------------------------------------


def test_memory_expires_after_a_few_minutes() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, memory_s=300)
    old = comment(clock, "remember me", "ann")
    brain.observe_chat(old)
    plan = speak(brain.decide())
    finish(brain, plan, "I will")
    clock.advance(299)
    assert brain.recent_chat() == [old] and len(brain.recent_talk()) == 1
    clock.advance(2)
    assert brain.recent_chat() == [] and brain.recent_talk() == []
    brain.observe_chat(comment(clock, "new", "bob"))
    assert speak(brain.decide()).recent_talk == ()


def test_answered_ids_outlive_staleness() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, memory_s=60, stale_after_s=45)
    message = comment(clock, "q?", "ann")
    brain.observe_chat(message)
    finish(brain, speak(brain.decide()))
    clock.advance(70)  # recent chat forgotten, id still remembered (2 x stale = 90 s)
    assert brain.recent_chat() == []
    assert not brain.observe_chat(message)


# ---- control -----------------------------------------------------------------------------------


def test_pause_keeps_the_host_quiet_and_resume_answers_again() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, idle_after_s=1)
    brain.observe_visual(Screen(id="v1", kind="screenshot"))
    brain.pause()
    brain.observe_chat(comment(clock, "hello?", "ann"))
    clock.advance(5)
    assert brain.decide() is None and brain.next_wakeup() is None
    brain.resume()
    assert speak(brain.decide()).kind == "reply"


def test_say_is_verbatim_next_and_works_while_paused() -> None:
    clock = FakeClock()
    brain = make_brain(clock)
    brain.pause()
    brain.say("  Back in five minutes, folks.  ")
    plan = speak(brain.decide())
    assert plan.kind == "say" and plan.text == "Back in five minutes, folks."


def test_say_cuts_in_on_current_speech() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0)
    brain.observe_chat(comment(clock, "hi", "ann"))
    reply = speak(brain.decide())
    brain.say("Operator here.")
    assert brain.decide() == Interrupt("say")
    assert brain.decide() is None
    finish(brain, reply, "Hi A", interrupted=True)
    assert speak(brain.decide()).text == "Operator here."


def test_handing_over_says_nothing_new_and_lets_the_turn_under_way_end() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, idle_after_s=1)
    brain.observe_visual(Screen(id="v1", kind="screenshot"))
    brain.observe_chat(comment(clock, "first", "ann"))
    reply = speak(brain.decide())
    brain.hand_over()
    assert brain.handing_over and not brain.handed_over  # the reply is still being spoken
    waiting = comment(clock, "second?", "bob")
    brain.observe_chat(waiting)
    brain.say("Operator here.")
    clock.advance(5)
    assert brain.decide() is None  # no interrupt: the sentence under way is not cut
    assert brain.next_wakeup() is None
    finish(brain, reply, "Hi Ann")
    assert brain.handed_over
    assert brain.decide() is None  # neither the waiting comment nor the say nor a monologue
    assert not brain.answered(waiting.id)  # left for the next job (it is not on host.spoken)


def test_handing_over_with_nothing_under_way_is_done_at_once() -> None:
    clock = FakeClock()
    brain = HostBrain("Nova", BrainConfig(greet=True), clock)
    brain.went_live()
    brain.hand_over()
    assert brain.handed_over and brain.decide() is None  # not even the greeting


def test_greeting_when_the_first_viewer_arrives_only() -> None:
    clock = FakeClock()
    brain = HostBrain("Nova", BrainConfig(greet=True), clock)
    assert brain.decide() is None  # not live yet: nobody to talk to
    brain.went_live()
    greeting = speak(brain.decide())
    assert greeting.kind == "monologue" and greeting.topic == "greeting"
    finish(brain, greeting)
    brain.went_live()
    assert brain.decide() is None


def test_a_persona_switch_changes_whose_name_is_a_mention() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, max_comments=1)
    brain.set_host_name("Sage")
    plain = comment(clock, "lovely evening", "ann")
    mention = comment(clock, "sage, hello", "bob", age_s=2)
    brain.observe_chat(plain)
    brain.observe_chat(mention)
    assert speak(brain.decide()).comments == (mention,)


def test_the_brain_config_is_the_host_settings_of_the_same_names() -> None:
    from host_agent.config import JobConfig
    from host_agent.settings import HostSettings

    assert BrainConfig() == JobConfig(host=HostSettings.model_construct()).brain_config()
    host = HostSettings.model_construct(max_comments=3, memory_s=60.0, greet=False)
    config = JobConfig(host=host).brain_config()
    assert (config.max_comments, config.memory_s, config.greet) == (3, 60.0, False)


# ---- platform chat and removals ------------------------------------------------------------------


def platform_event(clock: FakeClock, author: str, event: str, amount: str = "") -> Comment:
    return Comment(
        id=f"m{next(_ids)}",
        author_name=author.capitalize(),
        author_identity=f"youtube:{author}",
        body=f"{author} sent a {event}",
        created_at=clock.now,
        approved_at=clock.now,
        platform="YouTube",
        event=event,
        amount=amount,
    )


def test_platform_events_are_thanked_first_and_by_the_same_rules() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=1.0, max_comments=1)
    question = comment(clock, "Nova, what is that?", "ada")
    brain.observe_chat(question)
    clock.advance(0.5)
    super_chat = platform_event(clock, "marta", "super_chat", "$5.00")
    brain.observe_chat(super_chat)
    assert brain.decide() is None  # the batching window holds for events too
    clock.advance(0.5)
    plan = speak(brain.decide())
    assert plan.comments == (super_chat,)  # before a question that names the host
    finish(brain, plan)
    clock.advance(1.0)
    assert speak(brain.decide()).comments == (question,)
    # an event is never thanked twice, and a stale one is dropped like any comment
    assert not brain.observe_chat(super_chat)
    old = platform_event(clock, "lu", "membership")
    clock.advance(brain.config.stale_after_s + 1)
    brain.observe_chat(old)
    assert old not in brain.fresh()


def test_a_removed_message_is_never_answered_whether_removed_before_or_after_it_arrives() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=1.0)
    spam = comment(clock, "buy followers at my site?", "spammer")
    brain.observe_chat(spam)
    clock.advance(0.5)
    brain.removed(spam.id)  # within the batching window: gone before it is picked
    assert brain.fresh() == [] and spam not in brain.recent_chat()
    assert brain.next_wakeup() is None
    clock.advance(5)
    assert brain.decide() is None

    early = comment(clock, "removed before it got here?", "troll")
    brain.removed(early.id)  # the removal overtook its message
    assert not brain.observe_chat(early)
    kept = comment(clock, "hello there?", "ada")
    brain.observe_chat(kept)
    clock.advance(1.0)
    plan = speak(brain.decide())
    assert plan.comments == (kept,)
    assert spam.id not in {c.id for c in plan.recent_chat}
    assert brain.answered(spam.id) and brain.answered(early.id)


# ---- welcoming a regular back (#21) -----------------------------------------------------------


def regular(name: str = "Marta", key: str = "a1b2c3d4e5f60718") -> Callback:
    return Callback(key=key, name=name, kind="fact", about="is from Lisbon", at_ms=int(T0 * 1000))


def test_a_callback_due_before_the_greeting_is_the_greeting() -> None:
    clock = FakeClock()
    brain = HostBrain("Nova", BrainConfig(greet=True), clock)
    assert brain.welcome_back(regular())
    assert not brain.welcome_back(regular())  # one waits per viewer
    assert brain.decide() is None  # not live yet
    brain.went_live()
    plan = speak(brain.decide())
    assert plan.topic == "callback" and plan.callback == regular()
    finish(brain, plan)
    assert brain.decide() is None  # no second greeting


def test_a_callback_waits_for_fresh_chat_and_goes_before_a_monologue() -> None:
    clock = FakeClock()
    brain = make_brain(clock, batch_window_s=0, idle_after_s=0)
    brain.observe_visual(Screen(id="v1", kind="screenshot", title="Cats"))
    brain.observe_chat(comment(clock, "hello?"))
    brain.welcome_back(regular())
    assert speak(brain.decide()).kind == "reply"  # a viewer waiting is answered first
    finish(brain, brain.speaking)  # type: ignore[arg-type]
    assert speak(brain.decide()).topic == "callback"
    finish(brain, brain.speaking)  # type: ignore[arg-type]
    assert speak(brain.decide()).topic == "visual"


def test_a_callback_never_said_while_paused_and_dropped_when_stale() -> None:
    clock = FakeClock()
    brain = make_brain(clock, stale_after_s=30)
    brain.pause()
    brain.welcome_back(regular())
    assert brain.decide() is None
    clock.advance(31)
    brain.resume()
    assert brain.decide() is None and brain.callbacks_due == 0  # the moment passed


def test_a_callback_lost_to_a_failing_voice_is_tried_once_more() -> None:
    clock = FakeClock()
    brain = make_brain(clock)
    brain.welcome_back(regular())
    plan = speak(brain.decide())
    assert brain.speech_failed(plan)
    assert speak(brain.decide()).callback == regular()
