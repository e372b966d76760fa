"""Checks one by one: settings and lists, the classifier's fast path, links, strikes; and the
whole pipeline over arbitrary text (hypothesis)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livestage.bans import Ban
from livestage.safety.classifier import (
    LinearProfanityModel,
    Scorer,
    load_scorer,
    shipped_model_key,
)
from livestage.safety.matching import WordListError
from livestage.safety.normalize import normalize
from livestage.schemas import MAX_CHAT_CHARS, now_ms
from livestage.text import clean_text
from moderation.checks import CHECKS, RegistryError, UnknownBackend, build_checks
from moderation.checks.base import Context, OpenAIResult
from moderation.checks.links import Links, links_in
from moderation.checks.openai_moderation import OpenAIModeration
from moderation.pipeline import Decision, Pipeline, strike_outcome
from moderation.settings import DEFAULT_CHECKS, ModerationSettings
from services.moderation.tests.helpers import chat

FAST = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def test_the_default_order_names_every_check_once() -> None:
    assert sorted(DEFAULT_CHECKS) == CHECKS.names()


def test_an_unknown_check_name_says_which_and_what_exists() -> None:
    with pytest.raises(UnknownBackend, match=r"MODERATION_CHECKS='swearing'.*one of \['banned'"):
        build_checks(["blocklist", "swearing"], ModerationSettings())
    with pytest.raises(RegistryError, match=r"MODERATION_CHECKS lists \['caps'\] more than once"):
        build_checks(["caps", "caps"], ModerationSettings())


def test_lists_come_from_the_configured_files(tmp_path: Path) -> None:
    blocklist = tmp_path / "block.txt"
    blocklist.write_text("# ours\nbroccoli\nwicked*\n")
    allowlist = tmp_path / "allow.txt"
    allowlist.write_text("wickedly\n")
    config = ModerationSettings(blocklist_path=blocklist, allowlist_path=allowlist)
    pipeline = Pipeline(build_checks(["blocklist"], config))

    def checks(body: str) -> list[str]:
        message = chat("room", body)
        return pipeline.decide(message, pipeline.context_for(message)).checks

    assert checks("no br0cc0li for me") == ["blocklist"]
    assert checks("wickedness") == ["blocklist"]
    assert checks("wickedly good") == []
    assert checks("fuck") == []  # the shipped list is replaced, not extended


def test_a_missing_list_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(WordListError, match="nope.txt"):
        build_checks(["blocklist"], ModerationSettings(blocklist_path=missing))


@pytest.fixture(scope="module")
def scorers(default_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> list[Scorer]:
    """Extracted from the shipped model (writing the cache), then read back from the cache."""
    cache = tmp_path_factory.mktemp("classifier-cache")
    extracted = load_scorer(cache)
    assert len(list(cache.glob("profanity-*.npz"))) == 1
    return [extracted, load_scorer(cache)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.text(max_size=80), min_size=1, max_size=4))
def test_the_classifier_fast_path_equals_the_library(
    scorers: list[Scorer], texts: list[str]
) -> None:
    from profanity_check import predict_prob

    library = [float(value) for value in predict_prob(texts)]
    for scorer in scorers:
        assert scorer(texts) == pytest.approx(library, abs=1e-9)


def test_a_broken_classifier_cache_is_rebuilt(tmp_path: Path) -> None:
    (tmp_path / f"profanity-{shipped_model_key()}.npz").write_bytes(b"not a numpy file")
    score = load_scorer(tmp_path)
    assert score(["you idiot"])[0] > 0.99 > score(["hello there"])[0]
    assert LinearProfanityModel.load(tmp_path / f"profanity-{shipped_model_key()}.npz")


labels = st.from_regex(r"[a-z0-9][a-z0-9-]{0,10}[a-z0-9]", fullmatch=True)


@FAST
@given(st.lists(labels, min_size=1, max_size=3), st.sampled_from(["com", "net", "org", "io"]))
def test_links_are_found_with_their_host(parts: list[str], tld: str) -> None:
    host = ".".join([*parts, tld])
    for typed in (host, f"https://{host}/path?q=1", f"http://user@{host}:8080/"):
        assert list(links_in(f"look at {typed} now")) == [host], typed
    allow = Links(("org",) if tld == "org" else (host,))
    message = chat("room", f"look at https://{host}/x")
    assert allow.check(message, Context(normalize(message.body))) is None


@FAST
@given(st.text(max_size=200).map(clean_text))
def test_links_in_any_text_never_raises(text: str) -> None:
    for host in links_in(text):
        assert host is None or host == host.lower()


def test_a_userinfo_trick_is_judged_by_the_real_host() -> None:
    links = Links(("wikipedia.org",))
    message = chat("room", "https://wikipedia.org@evil.example/page")
    verdict = links.check(message, Context(normalize(message.body)))
    assert verdict is not None and verdict.reason == "Links are only allowed to wikipedia.org."


def _decision(*checks: str, strike: bool) -> Decision:
    from moderation.checks.base import Verdict

    return Decision(tuple(Verdict(name, "Reason.", strike) for name in checks), "x")


def test_strikes_turn_into_a_mute_at_the_limit() -> None:
    config = ModerationSettings(strikes_to_mute=3, mute_s=300)
    at = now_ms()
    context = Context(normalize("x"), strikes=1)
    assert strike_outcome(_decision("blocklist", strike=True), context, at, config).add_strike
    assert not strike_outcome(_decision("caps", strike=False), context, at, config).add_strike
    third = strike_outcome(
        _decision("blocklist", strike=True), Context(normalize("x"), strikes=2), at, config
    )
    assert third.add_strike and third.mute_until_ms == at + 300_000
    muted = Context(normalize("x"), strikes=2, muted_until_ms=at + 1000)
    assert not strike_outcome(
        _decision("muted", "blocklist", strike=True), muted, at, config
    ).add_strike
    banned = Context(normalize("x"), ban=Ban("abcdefgh12345678"))
    assert not strike_outcome(_decision("blocklist", strike=True), banned, at, config).add_strike


def test_openai_answers_become_verdicts() -> None:
    message = chat("room", "hello")
    flagged = Context(normalize("hello"), openai=OpenAIResult(True, ("harassment", "violence")))
    broken = Context(normalize("hello"), openai=OpenAIResult(error="HTTP 500"))
    verdict = OpenAIModeration("open").check(message, flagged)
    assert verdict is not None and verdict.strike and "harassment" in verdict.reason
    assert OpenAIModeration("open").check(message, broken) is None
    closed = OpenAIModeration("closed").check(message, broken)
    assert closed is not None and not closed.strike and "try again" in closed.reason
    assert OpenAIModeration("closed").check(message, Context(normalize("hello"))) is None


@FAST
@given(st.text(min_size=1, max_size=MAX_CHAT_CHARS).map(clean_text).filter(bool))
def test_every_check_handles_any_text(default_pipeline: Pipeline, body: str) -> None:
    message = chat("room", body)
    decision = default_pipeline.decide(message, default_pipeline.context_for(message))
    for rejection in decision.rejections:
        assert rejection.check in CHECKS
        assert rejection.reason.endswith(".") and len(rejection.reason) <= 300
