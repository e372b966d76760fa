"""The `openai` check through the real `openai` client against a local double of
`POST /v1/moderations`: flagged, not flagged, a 500, a hang and a slow answer, fail-open and
fail-closed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Literal

import pytest
from pydantic import SecretStr

from livestage import subjects
from livestage.bus import Bus
from livestage.schemas import ChatMessage, ModerationVerdict
from livestage.settings import OpenAISettings
from moderation.app import openai_moderator
from moderation.checks.openai_moderation import OpenAIModeration
from moderation.pipeline import Pipeline
from moderation.settings import ModerationSettings
from services.moderation.tests.helpers import Harness
from tests.doubles.openai_moderation import OpenAIModerationDouble

TIMEOUT_S = 0.5


@pytest.fixture(scope="module")
async def double() -> AsyncIterator[tuple[OpenAIModerationDouble, str]]:
    fake = OpenAIModerationDouble()
    base_url = await fake.start()
    fake.when("threaten", flag=("harassment", "harassment/threatening"))
    fake.when("servererror", status=500)
    fake.when("slowpoke", hang=True)
    yield fake, base_url
    await fake.close()


async def _harness(
    start_harness, default_pipeline: Pipeline, base_url: str, mode: Literal["open", "closed"]
) -> Harness:  # type: ignore[no-untyped-def]
    pipeline = Pipeline(
        [
            OpenAIModeration(mode) if check.name == "openai" else check
            for check in default_pipeline.checks
        ]
    )
    settings = ModerationSettings(
        openai_enabled=True, openai_timeout_s=TIMEOUT_S, openai_fail_mode=mode
    )
    openai = openai_moderator(
        settings, OpenAISettings(api_key=SecretStr("sk-test-moderation"), base_url=base_url)
    )
    assert openai is not None
    harness: Harness = await start_harness(
        pipeline, openai, **settings.model_dump(exclude={"durable"})
    )
    return harness


@pytest.fixture(scope="module")
async def fail_open(start_harness, default_pipeline, double) -> Harness:  # type: ignore[no-untyped-def]
    return await _harness(start_harness, default_pipeline, double[1], "open")


@pytest.fixture(scope="module")
async def fail_closed(start_harness, default_pipeline, double) -> Harness:  # type: ignore[no-untyped-def]
    return await _harness(start_harness, default_pipeline, double[1], "closed")


async def test_a_flagged_message_is_rejected_with_a_reason_for_its_category(
    fail_open: Harness, double: tuple[OpenAIModerationDouble, str]
) -> None:
    verdict = await fail_open.judge("I am going to threaten everyone here")
    assert isinstance(verdict, ModerationVerdict)
    assert verdict.checks == ["openai"]
    assert verdict.reason == "Your message looks like harassment; please keep it friendly."
    fake, _ = double
    request = next(body for body in fake.requests if "threaten" in str(body["input"]))
    assert request == {
        "model": "omni-moderation-latest",
        "input": "I am going to threaten everyone here",
    }


async def test_a_message_openai_does_not_flag_is_approved(
    fail_open: Harness, double: tuple[OpenAIModerationDouble, str]
) -> None:
    body = "what a lovely sunset on stream today"
    verdict = await fail_open.judge(body)
    assert isinstance(verdict, ChatMessage)
    assert double[0].inputs().count(body) == 1


async def test_a_message_the_offline_checks_reject_never_reaches_openai(
    fail_open: Harness, double: tuple[OpenAIModerationDouble, str]
) -> None:
    verdict = await fail_open.judge("fuck this and threaten that")
    assert isinstance(verdict, ModerationVerdict) and "openai" not in verdict.checks
    assert not any("fuck this" in text for text in double[0].inputs())


@pytest.mark.parametrize("trouble", ["servererror", "slowpoke"])
async def test_fail_open_approves_when_openai_fails(fail_open: Harness, trouble: str) -> None:
    started = time.monotonic()
    verdict = await fail_open.judge(f"hello {trouble} friends")
    assert isinstance(verdict, ChatMessage)
    if trouble == "slowpoke":  # waited for the timeout, no longer
        assert time.monotonic() - started >= TIMEOUT_S


@pytest.mark.parametrize("trouble", ["servererror", "slowpoke"])
async def test_fail_closed_rejects_when_openai_fails(fail_closed: Harness, trouble: str) -> None:
    verdict = await fail_closed.judge(f"hello {trouble} friends")
    assert isinstance(verdict, ModerationVerdict)
    assert verdict.checks == ["openai"]
    assert (
        verdict.reason == "We couldn't check your message just now; please try again in a moment."
    )


async def test_fail_closed_still_approves_what_openai_passes(fail_closed: Harness) -> None:
    assert isinstance(await fail_closed.judge("nice to meet you all"), ChatMessage)


def test_openai_is_off_without_a_key_or_the_setting() -> None:
    on = ModerationSettings(openai_enabled=True)
    key = OpenAISettings(api_key=SecretStr("sk-x"))
    assert openai_moderator(on, OpenAISettings(api_key=None)) is None
    assert openai_moderator(ModerationSettings(), key) is None
    without_check = ModerationSettings(openai_enabled=True, checks=["blocklist"])
    assert openai_moderator(without_check, key) is None
    assert openai_moderator(on, key) is not None


async def test_a_call_slower_than_the_ack_wait_keeps_the_message_and_asks_once(
    start_harness,  # type: ignore[no-untyped-def]
    default_pipeline: Pipeline,
    replica_bus: Bus,
    double: tuple[OpenAIModerationDouble, str],
) -> None:
    """OpenAI answers after 2.5 s, the ack wait is 1 s, and an idle second replica waits for
    work: the delivery is kept alive meanwhile, so JetStream never hands the message to the
    replica (which would ask OpenAI again)."""
    fake, base_url = double
    fake.when("latecomer", delay_s=2.5)
    settings = ModerationSettings(
        openai_enabled=True, openai_timeout_s=10.0, redeliver_after_s=[1.0]
    )
    key = OpenAISettings(api_key=SecretStr("sk-test-moderation"), base_url=base_url)
    fields = settings.model_dump(exclude={"durable"})
    one: Harness = await start_harness(default_pipeline, openai_moderator(settings, key), **fields)
    await start_harness(
        default_pipeline,
        openai_moderator(settings, key),
        room=one.room,
        on=replica_bus,
        instance="replica",
        **fields,
    )
    body = "hello from a latecomer"
    assert isinstance(await one.judge(body), ChatMessage)
    durable = one.moderator.settings.durable
    async with asyncio.timeout(10):
        while True:  # until both replicas are idle: whatever was handed out is acknowledged
            info = await one.bus.js.consumer_info(subjects.CHAT.name, durable)
            if not info.num_ack_pending and not info.num_pending:
                break
            await asyncio.sleep(0.05)
    assert fake.inputs().count(body) == 1
