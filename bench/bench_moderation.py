"""Moderation throughput on one core: the pure check pipeline, and end to end through NATS.

    python -m bench moderation          (or `make bench B=moderation`)

- `pipeline`: every offline check in the default order (normalization, blocklist, wordlist,
  classifier, links, spam checks; OpenAI off), called directly on a mix of clean and abusive
  messages: messages per second and the per-message time.
- `end_to_end`: one in-process moderator (a single event loop, so one core) on a real
  nats-server and redis-server started here: N messages published on `chat.submitted.<room>`
  as fast as JetStream takes them, then timed until every verdict is stored in JetStream
  (approved or rejected). Each message does its Redis reads, the checks, a JetStream publish
  and a Redis MULTI, so this is what one instance sustains.

The benchmark process is pinned to one CPU where the OS allows it (the servers are not).
Results say how loaded the machine was. `BENCH_SMOKE=1`: 200 and 50 messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator
from typing import Any

from bench import smoke_or
from livestage import subjects
from livestage.bus import Bus
from livestage.identity import viewer_identity
from livestage.schemas import ChatMessage, new_id, now_ms
from livestage.settings import NatsSettings
from livestage.text import clean_text
from moderation.app import Moderator, build_pipeline
from moderation.settings import ModerationSettings

BODIES = [
    "hello everyone, greetings from Lisbon!",
    "what is that building on the screen?",
    "I love this stream so much",
    "can you talk about the history of jazz next?",
    "gg",
    "lol that was unexpected 😂",
    "the assassin in that movie was great",
    "Scunthorpe United won today",
    "check https://en.wikipedia.org/wiki/Jazz for more",
    "where can I find the playlist?",
    "this is the best part of my day",
    "can you say hi to my friend Ana?",
    "fuck this",
    "you are an idiot",
    "f u c k",
    "sh1t happens",
    "OMG THIS IS THE BEST STREAM EVER",
    "buy cheap pills at pills.xyz",
    "soooooooooooooooooo good",
    "ｆｕｃｋ",
]
"""A mix: 60% clean, 40% rejected (a rowdy public chat, not a raid)."""

MESSAGES = smoke_or(2000, 200)
END_TO_END_MESSAGES = smoke_or(1000, 50)
FIGURES = (
    "pipeline.messages_per_s",
    "pipeline.per_message_ms.p50",
    "pipeline.per_message_ms.p99",
    "pipeline.rejected_share",
    "end_to_end.messages_per_s",
    "end_to_end.seconds",
)


@contextlib.contextmanager
def _one_cpu() -> Iterator[str]:
    """This process on one CPU while inside, and on all it had again after: the benchmarks
    that `python -m bench` runs after this one must not be confined to one core."""
    try:
        cpus = os.sched_getaffinity(0)
        cpu = min(cpus)
        os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError) as error:
        yield f"not pinned ({error})"
        return
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, cpus)


def _message(room: str, index: int) -> ChatMessage:
    # Each message from its own visitor, so flood and duplicate windows do not kick in.
    return ChatMessage(
        id=new_id(),
        room=room,
        author_identity=viewer_identity(secrets.token_hex(8), secrets.token_hex(4)),
        author_name="Bench",
        avatar="fox",
        body=clean_text(f"{BODIES[index % len(BODIES)]} {index}"),
        kind="viewer",
        created_at=now_ms(),
    )


def bench_pipeline(settings: ModerationSettings) -> dict[str, Any]:
    started = time.perf_counter()
    pipeline = build_pipeline(settings)
    build_s = time.perf_counter() - started
    messages = [_message("bench", index) for index in range(MESSAGES)]
    for message in messages[:100]:  # warm up (the confusables table is built on first use)
        pipeline.decide(message, pipeline.context_for(message))
    durations = []
    rejected = 0
    started = time.perf_counter()
    for message in messages:
        one = time.perf_counter()
        decision = pipeline.decide(message, pipeline.context_for(message))
        durations.append(time.perf_counter() - one)
        rejected += not decision.approved
    elapsed = time.perf_counter() - started
    durations.sort()
    return {
        "checks": pipeline.names,
        "build_s": round(build_s, 3),
        "messages": len(messages),
        "rejected_share": round(rejected / len(messages), 2),
        "messages_per_s": round(len(messages) / elapsed),
        "per_message_ms": {
            "mean": round(1000 * statistics.fmean(durations), 3),
            "p50": round(1000 * durations[len(durations) // 2], 3),
            "p99": round(1000 * durations[int(len(durations) * 0.99)], 3),
        },
    }


async def bench_end_to_end(
    settings: ModerationSettings, nats_server: Any, redis_server: Any
) -> dict[str, Any]:
    from redis.asyncio import Redis

    # The servers were started by run(), before this process pinned itself to one CPU.
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "bench-moderation")
    await bus.ensure_streams()
    redis = Redis.from_url(redis_server.url)
    room = "bench-" + uuid.uuid4().hex[:8]
    moderator = Moderator(bus, redis, build_pipeline(settings), settings, instance="bench")
    messages = [_message(room, index) for index in range(END_TO_END_MESSAGES)]
    for message in messages:  # queued before the moderator starts: a backlog to chew
        await bus.publish(subjects.chat_submitted(room), message)

    done = 0
    finished = asyncio.Event()
    verdicts = await bus.nc.subscribe(f"chat.*.{room}")

    async def count() -> None:
        nonlocal done
        async for msg in verdicts.messages:
            if not msg.subject.startswith("chat.submitted."):
                done += 1
                if done == len(messages):
                    finished.set()

    counter = asyncio.create_task(count())
    stop = asyncio.Event()
    consumer = await moderator.consumer(subjects.chat_submitted(room))
    started = time.perf_counter()
    worker = asyncio.create_task(moderator.run(consumer, stop))
    async with asyncio.timeout(300):
        await finished.wait()
    elapsed = time.perf_counter() - started
    stop.set()
    await worker
    counter.cancel()
    await consumer.unsubscribe()
    await redis.aclose()
    await bus.close()
    return {
        "messages": len(messages),
        "messages_per_s": round(len(messages) / elapsed),
        "seconds": round(elapsed, 2),
    }


async def run() -> dict[str, Any]:
    from tests.support.infra import NatsServer, RedisServer

    load_before = os.getloadavg()
    settings = ModerationSettings(durable="bench-" + uuid.uuid4().hex[:8])
    # The servers start first, so they are not confined to the moderator's CPU.
    with NatsServer() as nats_server, RedisServer() as redis_server, _one_cpu() as pinned:
        pipeline = bench_pipeline(settings)
        end_to_end = await bench_end_to_end(settings, nats_server, redis_server)
    return {
        "cpu": pinned,
        "cpus_on_machine": os.cpu_count(),
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "pipeline": pipeline,
        "end_to_end": end_to_end,
    }
