"""Output moderation without a room: the table of host lines against the real offline checks,
sentence splitting, and the guard's three ways in (the model's stream, `say`, a realtime
transcript) with OpenAI's moderation endpoint played by its double.

The same lines go through every voice's path in real rooms in `test_output_moderation.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from livekit.agents import llm

from host_agent.config import JobConfig
from host_agent.output_check import (
    MOVE_ON,
    PARTIAL_WORD_WAIT_S,
    Blocked,
    SentenceSplitter,
    TextChecker,
    blocked_sentences,
    clean_text,
    ends_sentence,
    split_sentences,
    verdict,
    whole_words,
)
from host_agent.output_guard import OutputGuard, load_checkers
from livestage import metrics
from livestage.safety.openai import OpenAIModerator
from tests.doubles.openai_moderation import OpenAIModerationDouble
from tests.support.host_lines import BAD, CLEAN, OPENAI_FLAGS, OPENAI_ONLY
from tests.support.host_worker import METER, metric_total

KEY = "sk-test-output"


@pytest.fixture(scope="module")
def checker() -> TextChecker:
    return load_checkers(JobConfig())[0]


@pytest.fixture(scope="module")
def words() -> TextChecker:
    """The word checks alone (no classifier), which judge a transcript as it streams."""
    return load_checkers(JobConfig())[1]


@pytest.fixture
async def moderation() -> AsyncIterator[tuple[OpenAIModerationDouble, str]]:
    double = OpenAIModerationDouble(api_key=KEY)
    url = await double.start()
    for contains, categories in OPENAI_FLAGS.items():
        double.when(contains, flag=categories)
    yield double, url
    await double.close()


def guard(checker: TextChecker, moderator: OpenAIModerator | None = None) -> OutputGuard:
    words = load_checkers(JobConfig())[1]
    return OutputGuard(
        checker, moderator, room="unit", backend=lambda: "unit", words=words, meter=METER
    )


def blocked_count(check: str | None = None) -> float:
    labels = {"backend": "unit"} | ({"check": check} if check else {})
    return metric_total(metrics.HOST_OUTPUT_BLOCKED.name, **labels)


# ---- the table against the offline checks ---------------------------------------------------


def test_the_table_is_big_enough() -> None:
    assert len(CLEAN) + len(BAD) + len(OPENAI_ONLY) >= 40
    assert len(CLEAN) >= 20 and len(BAD) >= 20


@pytest.mark.parametrize("line", CLEAN)
def test_clean_lines_pass(checker: TextChecker, line: str) -> None:
    assert verdict(checker, line) is None


@pytest.mark.parametrize("line", BAD)
def test_bad_lines_are_blocked_with_a_reason_that_never_repeats_them(
    checker: TextChecker, line: str
) -> None:
    found = verdict(checker, line)
    assert found is not None
    assert found.check in {"zalgo", "blocklist", "wordlist", "classifier"}
    for word in line.split():  # the words that are blocked on their own
        if verdict(checker, word) is not None:
            assert word.strip(",.!?").lower() not in found.reason.lower()


@pytest.mark.parametrize("line", OPENAI_ONLY)
def test_openai_only_lines_pass_the_offline_checks(checker: TextChecker, line: str) -> None:
    assert verdict(checker, line) is None


def test_a_turn_keeps_exactly_its_clean_sentences(checker: TextChecker) -> None:
    lines = [line for pair in zip(CLEAN, BAD, strict=False) for line in pair]
    results = blocked_sentences(checker, " ".join(lines))
    assert [s.strip() for s, _ in results] == lines
    assert [found is not None for _, found in results] == [line in BAD for line in lines]
    assert clean_text(results) == " ".join(line for line in lines if line in CLEAN)


# ---- sentences --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you?", ["Hello there.", " How are you?"]),
        ("One! Two? Three.", ["One!", " Two?", " Three."]),
        ("No end mark", ["No end mark"]),
        ("Ends here.  ", ["Ends here.  "]),
        ("", []),
        ("   ", ["   "]),
    ],
)
def test_split_sentences(text: str, sentences: list[str]) -> None:
    assert split_sentences(text) == sentences


@given(st.text(alphabet=st.sampled_from("ab .!?\n,'é"), max_size=80))
def test_sentences_join_back_into_the_text(text: str) -> None:
    assert "".join(split_sentences(text)) == text


@given(
    st.lists(st.text(alphabet=st.sampled_from("ab .!?\n,"), max_size=8), max_size=12),
)
def test_streamed_sentences_join_back_into_the_text(deltas: list[str]) -> None:
    splitter = SentenceSplitter()
    out: list[str] = []
    for delta in deltas:
        out.extend(splitter.push(delta))
    out.append(splitter.flush())
    assert "".join(out) == "".join(deltas)


def test_a_sentence_is_finished_once_the_next_begins() -> None:
    splitter = SentenceSplitter()
    assert splitter.push("Hello") == []
    assert splitter.push(" there.") == []
    assert splitter.push(" How") == ["Hello there."]
    assert splitter.flush() == " How"


@pytest.mark.parametrize(
    ("text", "words"),
    [("you are ass", "you are "), ("you are ", "you are "), ("ass", ""), ("", "")],
)
def test_whole_words_leave_out_a_word_that_may_still_grow(text: str, words: str) -> None:
    assert whole_words(text) == words


@pytest.mark.parametrize(
    ("text", "ends"),
    [("Hello there.", True), (" Is it?", True), ("Wow!” ", True), ("Hello there", False)],
)
def test_ends_sentence(text: str, ends: bool) -> None:
    assert ends_sentence(text) is ends


# ---- the model's stream (local voice, pipeline) -------------------------------------------------


async def chunks(text: str) -> AsyncIterator[llm.ChatChunk]:
    """`text` as a chat model streams it: a chunk a word, then a usage chunk."""
    words = text.split(" ")
    for index, word in enumerate(words):
        piece = word if index == 0 else " " + word
        yield llm.ChatChunk(id="c", delta=llm.ChoiceDelta(role="assistant", content=piece))
        await asyncio.sleep(0)
    yield llm.ChatChunk(
        id="c",
        usage=llm.CompletionUsage(completion_tokens=len(words), prompt_tokens=5, total_tokens=9),
    )


async def passed(guarded: AsyncIterator[object]) -> tuple[str, list[object]]:
    text, others = "", []
    async for item in guarded:
        if isinstance(item, str):
            text += item
        else:
            others.append(item)
    return text, others


async def test_the_gate_passes_only_the_clean_sentences(
    checker: TextChecker, moderation: tuple[OpenAIModerationDouble, str]
) -> None:
    double, url = moderation
    moderator = OpenAIModerator(KEY, url, "omni-moderation-latest", 2.0)
    lines = [CLEAN[0], BAD[0], CLEAN[1], OPENAI_ONLY[0], CLEAN[2], BAD[14], CLEAN[3]]
    before = blocked_count()
    text, others = await passed(guard(checker, moderator).gate(chunks(" ".join(lines))))
    assert text.strip() == " ".join(line for line in lines if line in CLEAN)
    assert len(others) == 1 and others[0].usage is not None  # type: ignore[attr-defined]
    assert blocked_count() == before + 3
    # OpenAI was asked about the sentences the offline checks let through, and only those
    assert sorted(double.inputs()) == sorted(
        line for line in lines if line in CLEAN or line in OPENAI_ONLY
    )
    await moderator.close()


async def test_a_turn_with_nothing_left_moves_on(checker: TextChecker) -> None:
    text, _ = await passed(guard(checker).gate(chunks(" ".join(BAD[:3]))))
    assert text == MOVE_ON


async def test_the_gate_keeps_a_model_failure(checker: TextChecker) -> None:
    async def failing() -> AsyncIterator[str]:
        yield "Hello there. "
        raise RuntimeError("the model went away")

    with pytest.raises(RuntimeError, match="went away"):
        await passed(guard(checker).gate(failing()))


async def test_say_keeps_its_clean_sentences(checker: TextChecker, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="host_agent")
    text = f"{CLEAN[4]} {BAD[1]} {CLEAN[5]}"
    assert await guard(checker).filter_say(text) == f"{CLEAN[4]} {CLEAN[5]}"
    assert await guard(checker).filter_say(CLEAN[6]) == CLEAN[6]
    assert await guard(checker).filter_say(BAD[2]) == MOVE_ON
    logged = " ".join(r.getMessage() for r in caplog.records if r.name.startswith("host_agent"))
    assert "blocked a sentence" in logged and ("blocklist" in logged or "wordlist" in logged)
    for word in ("shit", "bullshit"):
        assert word not in logged.lower()  # the reason, never the words


async def test_openai_failing_lets_the_offline_verdict_stand(
    checker: TextChecker, moderation: tuple[OpenAIModerationDouble, str]
) -> None:
    double, url = moderation
    double.when("market town", status=500)
    moderator = OpenAIModerator(KEY, url, "omni-moderation-latest", 2.0)
    assert await guard(checker, moderator).check(CLEAN[7]) is None
    assert await guard(checker, moderator).check(OPENAI_ONLY[0]) == Blocked(
        "openai", "OpenAI's moderation flagged it (self-harm, self-harm/instructions)"
    )
    await moderator.close()


# ---- a realtime transcript ----------------------------------------------------------------------


def first_blocked_word(checker: TextChecker, deltas: list[str]) -> int | None:
    """Index of the delta at which the transcript so far is first blocked by `checker`."""
    for index in range(len(deltas)):
        if verdict(checker, "".join(deltas[: index + 1])) is not None:
            return index
    return None


JUDGED_S = 3 * PARTIAL_WORD_WAIT_S
"""Long enough for the watch to judge a word (at once, or after waiting for more of it)."""


def as_deltas(text: str, first: bool) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 and first else " " + w for i, w in enumerate(words)]


async def watch_line(
    checker: TextChecker, opener: str, line: str, tail: str
) -> tuple[str, int | None, list[str]]:
    """Streams `opener`, then `line` a word at a time (each judged before the next comes), then
    `tail` into `watch`: (the captions, the index of the delta after which it cut, the deltas)."""
    head, middle, end = as_deltas(opener, True), as_deltas(line, False), as_deltas(tail, False)
    cut = asyncio.Event()
    fed = 0
    cut_after: int | None = None

    async def source() -> AsyncIterator[str]:
        nonlocal fed
        for delta in [*head, *middle, *end]:
            yield delta
            fed += 1
            if head and fed <= len(head) or fed > len(head) + len(middle):
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cut.wait(), JUDGED_S)
            if cut.is_set():
                return

    def on_cut() -> None:
        nonlocal cut_after
        cut_after = fed - 1
        cut.set()

    captions = ""
    async for text in guard(checker).watch(source(), on_cut):
        captions += text
    return captions, cut_after, [*head, *middle, *end]


@pytest.mark.parametrize("line", BAD[:-1:3])
async def test_a_realtime_turn_is_cut_at_the_offending_word(
    checker: TextChecker, words: TextChecker, line: str
) -> None:
    opener, tail = "Let me tell you about tonight.", "Anyway, back to the stars."
    captions, cut_after, deltas = await watch_line(checker, opener, line, tail)
    offending = first_blocked_word(words, deltas)
    assert offending is not None and cut_after == offending
    assert captions in ("", opener)  # never the blocked sentence, at most what came before it
    assert verdict(checker, captions) is None


async def test_the_classifier_judges_a_finished_sentence(
    checker: TextChecker, words: TextChecker
) -> None:
    """An insult no word list has is cut once its sentence is finished (at its full stop)."""
    opener, line, tail = "Let me tell you about tonight.", BAD[-1], "Anyway, back to the stars."
    captions, cut_after, deltas = await watch_line(checker, opener, line, tail)
    assert first_blocked_word(words, deltas) is None
    assert cut_after == len(as_deltas(f"{opener} {line}", True)) - 1
    assert captions == opener


async def test_a_clean_realtime_turn_is_captioned_whole(checker: TextChecker) -> None:
    """Traps included, and "Hell" (which a classifier reads as abuse until "yeah, ..." follows)."""
    transcript = " ".join(CLEAN[:3])
    captions, cut_after, _ = await watch_line(checker, CLEAN[0], CLEAN[1], CLEAN[2])
    assert cut_after is None
    assert captions == transcript
    captions, cut_after, _ = await watch_line(checker, CLEAN[10], CLEAN[11], CLEAN[12])
    assert cut_after is None
    assert captions == " ".join(CLEAN[10:13])


async def test_a_word_that_grows_clean_is_not_cut(checker: TextChecker) -> None:
    """A word that begins like a blocked one ("ass") grows into a clean one ("assassin")."""

    async def source() -> AsyncIterator[str]:
        for delta in ("The", " ass", "assin", " was", " caught."):
            yield delta

    cuts: list[bool] = []
    captions = ""
    async for text in guard(checker).watch(source(), lambda: cuts.append(True)):
        captions += text
    assert not cuts and captions == "The assassin was caught."
