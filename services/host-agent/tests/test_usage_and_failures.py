"""Pure parts of the production backends: prices and the ledger, the daily cap, failure reasons as
the plugins raise them, the brain's retry of a turn lost to a failing backend, usage deltas; the
spend store on a real Redis; the backends' parts built from settings (no network)."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import pytest
from livekit.agents import APIConnectionError, APIStatusError, APITimeoutError, llm
from livekit.agents.metrics.usage import LLMModelUsage
from pydantic import SecretStr

from host_agent.brain import BrainConfig, Comment, HostBrain, Screen, Speak
from host_agent.config import JobConfig
from host_agent.errors import BackendUnavailable
from host_agent.failures import REASONS, failure_reason
from host_agent.metering import llm_tokens
from host_agent.persona import load_persona
from host_agent.settings import DEFAULT_PERSONA, HostSettings, PipelineSettings
from host_agent.spend import SpendStore, spend_key
from host_agent.tts.base import EngineTTS
from host_agent.usage import (
    ANAM,
    PIPELINE,
    REALTIME,
    SPEECH,
    Prices,
    Tokens,
    UsageLedger,
    over_cap,
)
from host_agent.voices.openai_realtime import OpenAIRealtimeVoice
from host_agent.voices.pipeline import BoundedSpeechTTS, PipelineVoice
from livestage.kv import connect_redis
from livestage.settings import OpenAISettings, RedisSettings
from livestage.shows import spend_day
from tests.support.identities import named_viewer

PRICES = Prices(
    realtime_text_input_per_mtok=4.0,
    realtime_audio_input_per_mtok=32.0,
    realtime_cached_input_per_mtok=0.4,
    realtime_text_output_per_mtok=16.0,
    realtime_audio_output_per_mtok=64.0,
    pipeline_input_per_mtok=1.0,
    pipeline_output_per_mtok=2.0,
    speech_per_minute=0.015,
    anam_per_minute=0.15,
)


# ---- prices, the ledger, the cap -------------------------------------------------------------


def test_realtime_tokens_are_priced_by_kind_with_cached_input_apart() -> None:
    ledger = UsageLedger(PRICES)
    delta = ledger.tokens(
        REALTIME,
        Tokens(
            input_text=1000, input_audio=2000, cached_text=400, output_text=100, output_audio=500
        ),
    )
    expected = (600 * 4 + 2000 * 32 + 400 * 0.4 + 100 * 16 + 500 * 64) / 1e6
    assert delta.spend_usd == pytest.approx(expected)
    assert delta.tokens.by_kind() == {
        ("input", "text"): 1000,
        ("input", "audio"): 2000,
        ("output", "text"): 100,
        ("output", "audio"): 500,
    }


def test_time_based_backends_and_the_summary() -> None:
    ledger = UsageLedger(PRICES)
    ledger.tokens(PIPELINE, Tokens(input_text=3000, output_text=1000))
    ledger.audio(SPEECH, 120.0)
    ledger.avatar(ANAM, 30.0)
    ledger.avatar(ANAM, 30.0)
    ledger.audio(REALTIME, 10.0)  # realtime audio is priced by its tokens, not its seconds
    assert ledger.audio(SPEECH, -1.0).empty  # a clock that went backwards adds nothing
    summary = ledger.summary()
    assert summary["spend_usd.pipeline"] == pytest.approx((3000 * 1 + 1000 * 2) / 1e6)
    assert summary["spend_usd.pipeline-speech"] == pytest.approx(0.03)
    assert summary["avatar_s.anam"] == 60.0 and summary["spend_usd.anam"] == pytest.approx(0.15)
    assert summary["audio_s.openai-realtime"] == 10.0
    assert "spend_usd.openai-realtime" not in summary  # zeros are left out
    assert summary["spend_usd"] == pytest.approx(0.005 + 0.03 + 0.15)
    assert all(len(key) <= 64 for key in summary)  # HostJobEvent.usage keys


def test_the_daily_cap() -> None:
    assert not over_cap(5.0, 0.0)  # no cap
    assert not over_cap(19.99, 20.0)
    assert over_cap(20.0, 20.0) and over_cap(25.0, 20.0)
    assert spend_day(0) == "1970-01-01" and spend_day(86_399.9) == "1970-01-01"
    assert spend_day(86_400) == "1970-01-02"  # UTC days


async def test_the_room_spend_survives_in_redis(redis_server) -> None:  # type: ignore[no-untyped-def]
    room = "spend-" + uuid.uuid4().hex[:8]
    clock = [86_400.0 * 20_000 + 10]
    store = SpendStore(connect_redis(RedisSettings(url=redis_server.url)), lambda: clock[0])
    try:
        assert await store.today(room) == 0.0
        assert await store.add(room, 0.25) == pytest.approx(0.25)
        other = SpendStore(connect_redis(RedisSettings(url=redis_server.url)), lambda: clock[0])
        assert await other.add(room, 0.5) == pytest.approx(0.75)  # another job, same room
        await other.aclose()
        assert await store.today(room) == pytest.approx(0.75)
        ttl = await store.redis.ttl(spend_key(room, spend_day(clock[0])))
        assert 0 < ttl <= 2 * 86_400
        clock[0] += 86_400  # the next UTC day starts at zero
        assert await store.today(room) == 0.0
    finally:
        await store.aclose()


# ---- why a backend failed ----------------------------------------------------------------------


def _caused(error: BaseException, cause: BaseException) -> BaseException:
    error.__cause__ = cause
    return error


def _handshake(status: int) -> aiohttp.WSServerHandshakeError:
    info = aiohttp.RequestInfo(url=aiohttp.client.URL("ws://x"), method="GET", headers={})  # type: ignore[arg-type]
    return aiohttp.WSServerHandshakeError(info, (), status=status, message="Invalid status")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        # OpenAI Realtime: every handshake failure is a retryable APIConnectionError
        (_caused(APIConnectionError("client connection error"), _handshake(500)), "http_5xx"),
        (_caused(APIConnectionError("client connection error"), _handshake(401)), "http_401"),
        (APIConnectionError("OpenAI Realtime API connection timed out"), "timeout"),
        (APIConnectionError("OpenAI Realtime API connection closed unexpectedly"), "disconnected"),
        (
            llm.RealtimeModelError(
                timestamp=0,
                label="rt",
                recoverable=False,
                error=APIConnectionError("connection failed after 2 attempts"),
            ),
            "connection",
        ),
        (
            APIStatusError("returned an error", body={"code": "insufficient_quota"}),
            "quota",
        ),
        (APIStatusError("returned an error", body={"code": "invalid_api_key"}), "auth"),
        # chat completions and speech
        (
            _caused(
                APIConnectionError("failed after 2 attempts"),
                APIStatusError("500", status_code=500),
            ),
            "http_5xx",
        ),
        (APIStatusError("401", status_code=401, body={"code": "invalid_api_key"}), "http_401"),
        (APIStatusError("429", status_code=429), "http_429"),
        (APIStatusError("404", status_code=404), "http_4xx"),
        (APITimeoutError(), "timeout"),
        # Anam, bounded by the host
        (TimeoutError(), "timeout"),
        (BackendUnavailable("no video", reason="no_video"), "no_video"),
        (BackendUnavailable("OPENAI_API_KEY is not set"), "unavailable"),
        (ValueError("something else"), "error"),
    ],
)
def test_failure_reasons(error: BaseException, reason: str) -> None:
    assert failure_reason(error) == reason
    assert reason in REASONS


# ---- the brain retries a turn lost to a failing backend ----------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _brain(clock: Clock) -> HostBrain:
    brain = HostBrain("Nova", BrainConfig(batch_window_s=0.0, greet=False), clock)
    brain.went_live()
    return brain


def _comment(clock: Clock, author: str, body: str) -> Comment:
    return Comment(
        id=uuid.uuid4().hex,
        author_name=author,
        author_identity=named_viewer(author),
        body=body,
        created_at=clock.now,
        approved_at=clock.now,
    )


def test_a_reply_lost_to_a_failing_backend_is_tried_once_more() -> None:
    clock = Clock()
    brain = _brain(clock)
    ada = _comment(clock, "Ada", "What is this?")
    brain.observe_chat(ada)
    first = brain.decide()
    assert isinstance(first, Speak) and first.plan.comments == (ada,)
    assert brain.answered(ada.id) and brain.decide() is None
    assert brain.speech_failed(first.plan)  # not a word was said: fresh again
    assert not brain.answered(ada.id)
    again = brain.decide()
    assert isinstance(again, Speak) and again.plan.comments == (ada,)
    assert not brain.speech_failed(again.plan)  # the second loss drops it
    assert brain.decide() is None and brain.answered(ada.id)


def test_a_stale_comment_is_not_retried_but_say_and_monologue_are() -> None:
    clock = Clock()
    brain = _brain(clock)
    old = _comment(clock, "Old", "hello?")
    brain.observe_chat(old)
    reply = brain.decide()
    assert isinstance(reply, Speak)
    clock.now += 60  # past stale_after_s
    brain.speech_failed(reply.plan)
    assert brain.decide() is None and brain.answered(old.id)

    brain.say("Back in a minute.")
    said = brain.decide()
    assert isinstance(said, Speak) and said.plan.kind == "say"
    brain.speech_failed(said.plan)
    again = brain.decide()
    assert isinstance(again, Speak) and again.plan.text == "Back in a minute."
    brain.speech_finished(again.plan, "Back in a minute.", interrupted=False)

    brain.observe_visual(Screen(id="v1", kind="backdrop", title="Stars"))
    clock.now += 30  # past idle_after_s
    monologue = brain.decide()
    assert isinstance(monologue, Speak) and monologue.plan.topic == "visual"
    brain.speech_failed(monologue.plan)
    retried = brain.decide()
    assert isinstance(retried, Speak) and retried.plan.screen == monologue.plan.screen


# ---- usage deltas from the session's cumulative usage ----------------------------------------


def test_llm_usage_deltas_split_text_and_audio_or_count_totals_as_text() -> None:
    first = LLMModelUsage(
        provider="p",
        model="m",
        input_tokens=120,
        input_text_tokens=100,
        input_audio_tokens=20,
        output_tokens=60,
        output_text_tokens=10,
        output_audio_tokens=50,
    )
    assert llm_tokens(first, None) == Tokens(100, 20, 0, 0, 10, 50)
    later = first.model_copy(update={"output_tokens": 90, "output_audio_tokens": 80})
    assert llm_tokens(later, first) == Tokens(output_audio=30)
    chat = LLMModelUsage(provider="p", model="m", input_tokens=40, output_tokens=7)
    assert llm_tokens(chat, None) == Tokens(input_text=40, output_text=7)


# ---- backends built from settings --------------------------------------------------------------


def _config(**kwargs: object) -> JobConfig:
    return JobConfig(host=HostSettings(connect_timeout_s=1.5, connect_retries=2), **kwargs)  # type: ignore[arg-type]


async def test_the_pipeline_uses_the_speech_endpoint_only_when_configured() -> None:
    persona = load_persona(DEFAULT_PERSONA)
    local = PipelineVoice(_config(pipeline=PipelineSettings(model="llama3.2")), persona)
    parts = local.session_parts()
    assert isinstance(parts.tts, EngineTTS) and parts.options["use_tts_aligned_transcript"]
    options = parts.options["conn_options"]
    assert options.llm_conn_options.timeout == 1.5 and options.llm_conn_options.max_retry == 2
    assert parts.llm.model == "llama3.2"
    await local.aclose()

    speech = PipelineVoice(
        _config(pipeline=PipelineSettings(speech_base_url="http://127.0.0.1:9/v1")), persona
    )
    parts = speech.session_parts()
    assert isinstance(parts.tts, BoundedSpeechTTS)
    await speech.aclose()


async def test_the_realtime_voice_needs_a_key_and_refuses_azure_mode(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    persona = load_persona(DEFAULT_PERSONA)
    with pytest.raises(BackendUnavailable, match="OPENAI_API_KEY"):
        OpenAIRealtimeVoice(_config(openai=OpenAISettings(api_key=None)), persona).session_parts()
    keyed = _config(openai=OpenAISettings(api_key=SecretStr("k"), base_url="http://127.0.0.1:9/v1"))
    monkeypatch.setenv("OPENAI_API_VERSION", "2025-01-01")
    with pytest.raises(BackendUnavailable, match="Azure"):
        OpenAIRealtimeVoice(keyed, persona).session_parts()
    monkeypatch.delenv("OPENAI_API_VERSION")
    voice = OpenAIRealtimeVoice(keyed, persona)
    model = voice.session_parts().llm
    assert (model.model, model._opts.voice) == ("gpt-realtime-2", "cedar")  # noqa: SLF001
    assert model._opts.conn_options.timeout == 1.5  # noqa: SLF001
    await voice.aclose()
    await asyncio.sleep(0)


def test_prices_are_the_cost_settings_of_the_same_names() -> None:
    from host_agent.metering import prices_from
    from host_agent.settings import CostSettings

    assert prices_from(JobConfig(cost=CostSettings.model_construct())) == Prices()
    cost = CostSettings.model_construct(anam_per_minute=0.5, pipeline_input_per_mtok=1.0)
    prices = prices_from(JobConfig(cost=cost))
    assert (prices.anam_per_minute, prices.pipeline_input_per_mtok) == (0.5, 1.0)
    assert prices.realtime_audio_output_per_mtok == Prices().realtime_audio_output_per_mtok
