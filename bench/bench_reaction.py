"""Host reaction latency: a chat message approved → the first non-silent host audio frame at a
viewer, with the local backends (house brain + espeak-ng, the local drawn avatar;
BENCH_HOST_AVATAR=none for audio only).

Real nats-server and livekit-server on 127.0.0.1 (the test fixtures' classes), the host worker
in this process (thread executor), one viewer that is a real rtc client. Each round publishes one
message on `chat.approved.<room>` and times from JetStream's store time of that message (the
approval) to the first 10 ms frame above the silence threshold at the viewer, then waits for the
host to finish before the next round. `HOST_BATCH_WINDOW_S` (default 0.3 s) is part of what is
measured: it is the brain's wait for companions of the first comment.

    python -m bench reaction          # BENCH_ROUNDS=20 by default (BENCH_SMOKE=1: 2)

Memory of regulars (#21): `BENCH_REACTION_MEMORY=both` (default) runs the rounds twice in one
run, on one Redis, with memory on and then off; each round's author is a regular with a card
(seeded: a past show, a question, a fact), so with memory on the job reads their card, records
the message and extracts facts as in a show. `on` / `off` run one of them. The goal: p50 and p90
with memory on within 10% of off.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from livekit import api, rtc
from pydantic import SecretStr

from bench import smoke_or
from host_agent.job import STATE_ATTRIBUTE, JobConfig
from host_agent.settings import HostSettings
from host_agent.worker import build_server
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.kv import connect_redis
from livestage.memory import MemoryStore, memory_key_of
from livestage.schemas import ChatMessage, HostCommand, SpokenTurn, new_id, now_ms
from livestage.settings import (
    LiveKitSettings,
    MemorySettings,
    NatsSettings,
    OpenAISettings,
    RedisSettings,
)
from tests.support.chat import chat_message
from tests.support.identities import viewer_identity
from tests.support.infra import LiveKitServer, NatsServer, RedisServer
from tests.support.livekit_helpers import mint_token, server_api

SILENCE_RMS = 200.0
QUESTIONS = [
    "What is on the screen right now?",
    "Nova, where are you streaming from?",
    "Have you tried the new rocket launch videos?",
    "Any tips for a first telescope?",
    "Is this live or recorded?",
]
FIGURES = ("rounds", *(f"reaction_ms.{stat}" for stat in ("p50", "p90", "min", "max", "mean")))


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


async def run() -> dict[str, Any]:
    rounds = int(os.environ.get("BENCH_ROUNDS", smoke_or("20", "2")))
    avatar = os.environ.get("BENCH_HOST_AVATAR", "local")
    memory = os.environ.get("BENCH_REACTION_MEMORY", "both")
    if memory not in ("both", "on", "off"):
        raise SystemExit(f"BENCH_REACTION_MEMORY must be both, on or off, not {memory!r}")
    with NatsServer() as nats, LiveKitServer() as livekit, RedisServer() as redis:
        runs: dict[str, dict[str, Any]] = {}
        for on in (True, False):
            if memory == "both" or memory == ("on" if on else "off"):
                runs["memory_on" if on else "memory_off"] = await _measure(
                    nats, livekit, rounds, avatar, memory=(redis.url, on)
                )
    if len(runs) == 1:
        return next(iter(runs.values())) | {"memory": memory}
    on_ms, off_ms = runs["memory_on"]["reaction_ms"], runs["memory_off"]["reaction_ms"]
    ratios = {q: round(on_ms[q] / off_ms[q], 3) for q in ("p50", "p90")}
    return runs["memory_on"] | {
        "memory": "on (the top level and memory_on) vs off (memory_off), same run",
        "memory_off": runs["memory_off"],
        "memory_on_vs_off": ratios,
        "memory_goal": {"on_vs_off_max": 1.10, "met": max(ratios.values()) <= 1.10},
    }


async def _remembered(redis_url: str, identities: list[str]) -> int:
    """How many of the rounds' regulars have this run's question on their card (the job wrote
    it: 0 with memory off)."""
    client = connect_redis(RedisSettings(url=redis_url))
    store = MemoryStore(client, retention_days=180)
    try:
        cards = [await store.card(memory_key_of(identity) or "") for identity in identities]
    finally:
        await client.aclose()
    return sum(1 for card in cards if card and any(q.text in QUESTIONS for q in card.questions))


async def _regulars(redis_url: str, rounds: int) -> list[str]:
    """One viewer identity per round, each a regular with a card (a past show, a question
    answered, a fact): what the job reads, extends and quotes for a returning viewer."""
    client = connect_redis(RedisSettings(url=redis_url))
    store = MemoryStore(client, retention_days=180)
    identities = []
    try:
        for index in range(rounds):
            identity = viewer_identity()
            key = memory_key_of(identity)
            assert key is not None
            past = chat_message(
                "bench-past",
                "Did the aurora ever show up over Lisbon?",
                author_identity=identity,
                author_name=f"Viewer{index}",
                created_at=now_ms() - 7 * 86_400_000,
            )
            await store.record_message(past, question=True)
            await store.record_answer(key, past.id, "Not yet, but March is the best month.")
            await store.record_show(key, "bench-past:1")
            await store.add_facts(key, ["is from Lisbon"], message_id=past.id, at=past.created_at)
            identities.append(identity)
    finally:
        await client.aclose()
    return identities


async def _measure(
    nats: NatsServer,
    livekit: LiveKitServer,
    rounds: int,
    avatar: str,
    *,
    voice: str = "local",
    openai: OpenAISettings | None = None,
    host_overrides: dict[str, Any] | None = None,
    on_round: Callable[[], None] | None = None,
    memory: tuple[str, bool] | None = None,
) -> dict[str, Any]:
    """The reaction rounds; `voice`/`openai` pick the voice backend (bench_host_overhead uses
    the OpenAI Realtime double), `on_round` runs after each measured round, `memory` (a Redis
    URL, on or off) makes each round's author a regular with a card and turns memory on or off
    (None: the job's defaults, no Redis: memory's reads time out in the background)."""
    authors = await _regulars(memory[0], rounds) if memory is not None else []
    agent_name = "bench-host-" + uuid.uuid4().hex[:6]
    room = "bench-" + uuid.uuid4().hex[:8]
    host = HostSettings(
        executor="thread",
        health_port=0,
        greet=False,
        avatar=avatar,
        voice=voice,
        **(host_overrides or {}),
    )
    config = JobConfig(
        host=host,
        **({"openai": openai} if openai is not None else {}),
        livekit=LiveKitSettings(
            url=livekit.url,
            api_key=livekit.api_key,
            api_secret=SecretStr(livekit.api_secret),
            agent_name=agent_name,
        ),
        nats=NatsSettings(url=nats.url),
        **(
            {
                "redis": RedisSettings(url=memory[0]),
                "memory": MemorySettings(enabled=memory[1]),
            }
            if memory is not None
            else {}
        ),
    )
    server = build_server(config, devmode=True)
    registered = asyncio.Event()
    server.on("worker_registered", lambda *_: registered.set())
    worker = asyncio.create_task(server.run(devmode=True))
    bus = await Bus.connect(NatsSettings(url=nats.url), "bench-reaction")
    await bus.ensure_streams()
    viewer = rtc.Room()
    loud: list[float] = []
    tasks: list[asyncio.Task[None]] = []

    async def listen(track: rtc.Track) -> None:
        async for event in rtc.AudioStream(track, sample_rate=24000, num_channels=1):
            samples = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            if samples.size and float(np.sqrt(np.mean(samples**2))) > SILENCE_RMS:
                loud.append(time.time())

    def on_track(track: rtc.Track, *_: Any) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            tasks.append(asyncio.create_task(listen(track)))

    spoken: list[SpokenTurn] = []
    stored_at: dict[str, float] = {}

    async def on_spoken(observed: Observed[SpokenTurn]) -> None:
        spoken.append(observed.model)

    async def on_approved(observed: Observed[ChatMessage]) -> None:
        stored_at[observed.model.id] = observed.stored_at

    latencies: list[float] = []
    speaking_state: list[float] = []
    try:
        async with asyncio.timeout(30):
            await registered.wait()
        await bus.watch(subjects.host_spoken(room), SpokenTurn, on_spoken)
        await bus.watch(subjects.chat_approved(room), ChatMessage, on_approved)
        async with server_api(livekit) as lk:
            await lk.room.create_room(api.CreateRoomRequest(name=room))
            await lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=agent_name, room=room)
            )
        viewer.on("track_subscribed", on_track)
        token = mint_token(
            livekit,
            viewer_identity(),
            room,
            can_publish=False,
            can_publish_data=False,
        )
        await viewer.connect(livekit.url, token)

        def host_state() -> str:
            for p in viewer.remote_participants.values():  # the avatar is an AGENT too
                if STATE_ATTRIBUTE in p.attributes:
                    return p.attributes[STATE_ATTRIBUTE]
            return ""

        async with asyncio.timeout(60):
            while host_state() != "idle":  # noqa: ASYNC110 - polled state
                await asyncio.sleep(0.05)
        # one unmeasured turn first: an avatar publishes its audio track only once it speaks
        await bus.publish(
            subjects.host_control(room),
            HostCommand(
                id=new_id(), room=room, action="say", text="Warming up.", created_at=now_ms()
            ),
        )
        async with asyncio.timeout(60):
            while not spoken or host_state() != "idle" or not loud:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)

        for index in range(rounds):
            author = {"author_identity": authors[index]} if authors else {}
            message = chat_message(
                room, QUESTIONS[index % len(QUESTIONS)], author_name=f"Viewer{index}", **author
            )
            before = len(spoken)
            loud.clear()
            await bus.publish(subjects.chat_approved(room), message)
            async with asyncio.timeout(30):
                while message.id not in stored_at:  # noqa: ASYNC110 - filled by a watch
                    await asyncio.sleep(0.005)
            approved = stored_at[message.id]
            async with asyncio.timeout(30):
                while not any(t >= approved for t in loud):
                    await asyncio.sleep(0.005)
                    if host_state() == "speaking" and len(speaking_state) <= index:
                        speaking_state.append(time.time() - approved)
            first = next(t for t in loud if t >= approved)
            latencies.append(first - approved)
            if on_round is not None:
                on_round()
            try:
                async with asyncio.timeout(60):
                    while len(spoken) <= before or host_state() != "idle":  # noqa: ASYNC110
                        await asyncio.sleep(0.02)
            except TimeoutError:
                raise RuntimeError(
                    f"round {index}: the host did not finish (state {host_state()!r}, "
                    f"{len(spoken) - before} new turns)"
                ) from None
            await asyncio.sleep(0.5)
    finally:
        for task in tasks:
            task.cancel()
        await viewer.disconnect()
        await bus.close()
        await server.aclose()
        worker.cancel()
        await asyncio.gather(worker, *tasks, return_exceptions=True)

    ms = [round(v * 1000, 1) for v in latencies]
    remembered = await _remembered(memory[0], authors) if memory is not None else None
    return {
        "what": "chat approved (JetStream store time) -> first non-silent host audio frame "
        f"at a viewer (rtc client), voice {voice}",
        "memory": "default" if memory is None else ("on" if memory[1] else "off"),
        "regulars_whose_card_holds_this_runs_question": remembered,
        "avatar": avatar,
        "batch_window_s": host.batch_window_s,
        "rounds": len(ms),
        "reaction_ms": {
            "p50": round(percentile(ms, 50), 1),
            "p90": round(percentile(ms, 90), 1),
            "min": min(ms) if ms else None,
            "max": max(ms) if ms else None,
            "mean": round(statistics.fmean(ms), 1) if ms else None,
        },
        "speaking_attribute_seen_ms_p50": round(
            percentile([v * 1000 for v in speaking_state], 50), 1
        ),
        "goal": {"p50_ms": 1000, "p90_ms": 1500},
        "samples_ms": ms,
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }
