"""Host overhead over the model's own time to first audio, with the OpenAI Realtime double.

The real host worker (thread executor, voice ``openai-realtime`` through the real
``livekit-plugins-openai`` ``RealtimeModel``, no avatar) answers chat in a real room on a real
``livekit-server``; the double (``tests/doubles/openai_realtime.py``) answers each
``response.create`` after a fixed ``first_audio_delay`` (300 ms), in real time. Per round, as in
``bench_reaction``: chat approved (JetStream store time) -> the first non-silent audio frame at a
viewer (a real rtc client). The model's own share of that round is what the double spent from
receiving ``response.create`` to sending the first audio (the configured delay plus its own
work); everything else is the host's overhead: NATS, the brain, the prompt, the plugin and its
WebSocket, the agent's audio output, LiveKit and the viewer's decoder.

Two passes: ``batch_window_s=0`` (what the machinery adds; the goal, <= 150 ms p50) and the
default ``HOST_BATCH_WINDOW_S`` (what a viewer gets: the brain waits that long for companions of
the first comment, by design).

    python -m bench host_overhead        # BENCH_ROUNDS=15 per pass by default (BENCH_SMOKE=1: 1)
"""

from __future__ import annotations

import os
from typing import Any

from pydantic import SecretStr

from bench import smoke_or
from bench.bench_reaction import _measure, percentile
from host_agent.settings import HostSettings
from livestage.settings import OpenAISettings
from tests.doubles.openai_realtime import OpenAIRealtimeDouble
from tests.support.infra import LiveKitServer, NatsServer

DELAY_S = 0.3
GOAL_P50_MS = 150.0
FIGURES = tuple(
    f"{run}.{figure}.p50"
    for run in ("no_batch_window", "default_batch_window")
    for figure in ("reaction_ms", "model_first_audio_ms", "host_overhead_ms")
)


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "p50": round(percentile(values, 50), 1),
        "p90": round(percentile(values, 90), 1),
        "min": round(min(values), 1),
        "max": round(max(values), 1),
    }


async def _pass(
    nats: NatsServer,
    livekit: LiveKitServer,
    realtime: OpenAIRealtimeDouble,
    rounds: int,
    batch_window_s: float,
) -> dict[str, Any]:
    model_ms: list[float] = []

    def on_round() -> None:
        record = realtime.responses[-1]
        assert record.first_audio_at is not None
        model_ms.append((record.first_audio_at - record.created_at) * 1000)

    openai = OpenAISettings(api_key=SecretStr("bench-key"), base_url=realtime.base_url)
    result = await _measure(
        nats,
        livekit,
        rounds,
        "none",
        voice="openai-realtime",
        openai=openai,
        host_overrides={"batch_window_s": batch_window_s},
        on_round=on_round,
    )
    reaction = result["samples_ms"]
    overhead = [r - m for r, m in zip(reaction, model_ms, strict=True)]
    return {
        "batch_window_s": batch_window_s,
        "rounds": len(reaction),
        "reaction_ms": _summary(reaction),
        "model_first_audio_ms": _summary(model_ms),
        "host_overhead_ms": _summary(overhead),
        "overhead_samples_ms": [round(v, 1) for v in overhead],
    }


async def run() -> dict[str, Any]:
    rounds = int(os.environ.get("BENCH_ROUNDS", smoke_or("15", "1")))
    default_window = HostSettings().batch_window_s
    with NatsServer() as nats, LiveKitServer() as livekit:
        async with OpenAIRealtimeDouble(api_key="bench-key") as realtime:
            realtime.config.first_audio_delay = DELAY_S
            realtime.config.pace = 1.0
            realtime.config.reply = "Good question, and thanks for asking it here."
            machinery = await _pass(nats, livekit, realtime, rounds, 0.0)
            as_viewed = await _pass(nats, livekit, realtime, rounds, default_window)
    p50 = machinery["host_overhead_ms"]["p50"]
    return {
        "what": "chat approved -> first non-silent host audio at a viewer, minus the Realtime "
        "double's own response.create -> first audio (configured delay 300 ms + its work); "
        "voice openai-realtime (real plugin), no avatar, real NATS and livekit-server",
        "configured_first_audio_delay_ms": DELAY_S * 1000,
        "no_batch_window": machinery,
        "default_batch_window": as_viewed,
        "goal": {"host_overhead_p50_ms": GOAL_P50_MS, "met": p50 <= GOAL_P50_MS},
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
