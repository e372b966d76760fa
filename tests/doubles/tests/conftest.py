"""Fixtures: one fresh double per test (faults and logs never leak between tests)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.doubles.anam import AnamDouble, AvatarConfig
from tests.doubles.openai_chat import OpenAIChatDouble
from tests.doubles.openai_realtime import OpenAIRealtimeDouble


@pytest.fixture
async def realtime() -> AsyncIterator[OpenAIRealtimeDouble]:
    async with OpenAIRealtimeDouble() as double:
        yield double
    assert not double.protocol_errors, double.protocol_errors


@pytest.fixture
async def chat() -> AsyncIterator[OpenAIChatDouble]:
    async with OpenAIChatDouble() as double:
        yield double


@pytest.fixture
async def anam() -> AsyncIterator[AnamDouble]:
    # small and slow-ish video: two cores are shared by the whole suite
    async with AnamDouble(avatar_config=AvatarConfig(width=320, height=240, fps=15)) as double:
        yield double
