"""Baseline for the host-overhead benchmark: the Realtime plugin + double, with no host at all.

The double answers every ``response.create`` after a fixed ``first_audio_delay`` (the model's
own time to first audio). This measures, for ``generate_reply`` on a room-less ``AgentSession``
with the real ``RealtimeModel``:

- ``plugin_added_ms``: from the ``generate_reply`` call to the first audio delta parsed by the
  plugin, minus the configured delay — what the plugin, the WebSocket hop and the double add;
- ``double_added_ms``: the double's own share (``response.create`` received → first audio sent,
  minus the delay: synthesis, event building).

A host benchmark (time from its trigger to audio in the room) subtracts the configured delay
and can compare its added time against ``plugin_added_ms`` to see what the host itself adds.
``BENCH_SMOKE=1``: 2 replies.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from livekit.agents import Agent, AgentSession
from livekit.plugins.openai.realtime import RealtimeModel

from bench import smoke_or
from tests.doubles.openai_realtime import OpenAIRealtimeDouble

DELAY_S = 0.3
REPLIES = smoke_or(20, 2)
FIGURES = tuple(
    f"{figure}.{stat}"
    for figure in ("plugin_added_ms", "double_added_ms")
    for stat in ("p50", "p95", "max")
)


def _summary(values_ms: list[float]) -> dict[str, float]:
    ordered = sorted(values_ms)
    return {
        "p50": round(statistics.median(ordered), 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


async def run() -> dict[str, Any]:
    plugin_added: list[float] = []
    double_added: list[float] = []
    async with OpenAIRealtimeDouble() as realtime:
        realtime.config.first_audio_delay = DELAY_S
        realtime.config.pace = 0
        realtime.config.reply = "Hello everyone, welcome back to the stream."
        model = RealtimeModel(
            model="gpt-realtime-2", voice="cedar", base_url=realtime.base_url, api_key="bench"
        )
        try:
            async with AgentSession(llm=model) as session:
                await session.start(Agent(instructions="You host a live stream."))
                (rt_session,) = list(model._sessions)  # noqa: SLF001 - the one session
                first_audio: list[float] = []

                def on_event(event: dict[str, Any]) -> None:
                    if event["type"] == "response.output_audio.delta" and not first_audio:
                        first_audio.append(time.monotonic())

                rt_session.on("openai_server_event_received", on_event)
                for _ in range(REPLIES + 1):  # the first one warms up
                    first_audio.clear()
                    asked = time.monotonic()
                    await session.generate_reply(instructions="Say hello.")
                    record = realtime.responses[-1]
                    assert record.first_audio_at is not None and first_audio
                    plugin_added.append((first_audio[0] - asked - DELAY_S) * 1000)
                    double_s = record.first_audio_at - record.created_at
                    double_added.append((double_s - DELAY_S) * 1000)
        finally:
            await model.aclose()
    return {
        "configured_first_audio_delay_ms": DELAY_S * 1000,
        "replies": REPLIES,
        "plugin_added_ms": _summary(plugin_added[1:]),
        "double_added_ms": _summary(double_added[1:]),
    }
