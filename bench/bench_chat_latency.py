"""Chat submit-to-delivered latency through the whole path, against the direct LiveKit path.

    python -m bench chat_latency          (or `make bench B=chat_latency`)

Starts its own nats-server, redis-server and livekit-server on 127.0.0.1, then the real edge,
moderation and chat-history processes, and joins `VIEWERS` rtc clients (subscribe-only, like
browsers) to one room. At each rate in `RATES` (messages per second, open loop: a message is
sent on schedule whether or not earlier ones were answered) for `SECONDS_PER_RATE` seconds:

- `path`: POST /api/chat -> edge -> JetStream -> moderation -> JetStream -> chat-history ->
  Redis -> LiveKit server API SendData -> every viewer. Latency is POST start to arrival at a
  viewer, per (message, viewer) pair.
- `direct`: a participant whose token may publish data sends the same packet with
  `publish_data(reliable=True)` straight through LiveKit: publish call to arrival.
- `server_send`: the bench itself calls the server API's SendData (what chat-history does last):
  call to arrival. This isolates LiveKit's server-API hop inside `path`.

Stages of `path` (per message, p50/p99 in ms): `post_to_202` (the edge: token check, rate
limit in Redis, JetStream store, HTTP answer), `post_to_approved` (until the approved message is
on NATS, seen by a core subscription of the bench: the edge's ingest plus moderation; it can be
shorter than `post_to_202`, whose HTTP answer travels back in parallel), `approved_to_first_viewer`
(chat-history's fetch, Redis write, SendData, LiveKit's fan-out to the first viewer), and
`first_to_last_viewer` (the spread of the fan-out). Loss counts (message, viewer) pairs that
never arrived.

Every poster gets its own visitor, as each browser would: a token request without a cookie is
a new visitor (the edge issues them; the bench keeps no cookies). All posters share 127.0.0.1,
so the bench's edge runs with the per-network limits raised (`TOKEN_RATE_CHAT_PER_NETWORK`,
`TOKEN_RATE_TOKEN_PER_IP`), and moderation's room cap (`MODERATION_ROOM_RATE`, 15/s by default)
too, since the bench measures the path at rates above it; the per-visitor chat limit and
moderation's flood check stay as they are, which is why a high rate needs `POSTERS` people.

`BENCH_SMOKE=1`: one rate (20 msg/s) for 1 s, 2 viewers in 1 worker, 10 posters.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import aiohttp
import nats
from livekit import api

from bench import smoke_or, where_and_when
from bench.chat_path import (
    CHAT_TOPIC,
    ChatStack,
    CpuMeter,
    PageChat,
    Phase,
    StoredTimes,
    ViewerPool,
    chat_stack,
    edge_client,
    paced,
    page_chat,
    poster_tokens,
    publisher_and_viewers,
    summary,
)
from livestage.schemas import ChatMessageEvent
from tests.support.chat import chat_message
from tests.support.livekit_helpers import server_api

RATES = smoke_or((50, 200), (20,))
SECONDS_PER_RATE = float(os.environ.get("BENCH_CHAT_SECONDS", smoke_or("4", "1")))
VIEWERS = int(os.environ.get("BENCH_CHAT_VIEWERS", smoke_or("20", "2")))
WORKERS = int(os.environ.get("BENCH_CHAT_WORKERS", smoke_or("4", "1")))  # viewers' processes
POSTERS = int(os.environ.get("BENCH_CHAT_POSTERS", smoke_or("500", "10")))
"""Visitors that post, in turn. Moderation's flood check allows one visitor 5 messages in 10 s
and the edge 6 per identity, as for real viewers: a high rate needs many people."""
DRAIN_S = 5.0  # after the last send, how long stragglers may take before they count as lost
PHASES = ("direct", "server_send", "path")
STAGES = ("post_to_202", "post_to_approved", "approved_to_first_viewer", "first_to_last_viewer")
FIGURES = (
    *(f"rates.*.{phase}.{stat}" for phase in PHASES for stat in ("p50_ms", "p99_ms", "messages")),
    *(f"rates.*.{phase}.{count}" for phase in PHASES for count in ("lost", "duplicates")),
    *(f"rates.*.path.stages.{stage}.p50_ms" for stage in STAGES),
    "rates.*.path.http_errors",
    "rates.*.path.rejected_by_moderation",
    "rates.*.p99_ratio",
    "rates.*.p50_ratio",
)


def packet(room: str, n: int) -> ChatMessageEvent:
    body = f"benchmark message {n}, about as long as a chat line usually is"
    return ChatMessageEvent(message=chat_message(room, body, author_name="Bench"))


async def run_direct(
    publisher: Any, pool: ViewerPool, room: str, rate: int, seconds: float = SECONDS_PER_RATE
) -> Phase:
    """One sender, one packet after the other, as a chat client would publish.

    Not concurrent tasks: the rtc SDK hands every FFI event to every pending call's queue, so
    hundreds of concurrent `publish_data` calls cost the sender quadratic time and would
    measure the SDK's bookkeeping, not LiveKit. Latency counts from the scheduled send time,
    so a sender that falls behind shows up in the figures.
    """
    phase = Phase(pool, DRAIN_S)
    await phase.begin()
    started = time.monotonic()
    for n in range(int(rate * seconds)):
        scheduled = started + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        event = packet(room, n)
        phase.sent_at[event.message.id] = scheduled
        await publisher.local_participant.publish_data(
            event.to_json(), reliable=True, topic=CHAT_TOPIC
        )
    await phase.drain()
    return phase


async def run_server_send(
    lk: api.LiveKitAPI, pool: ViewerPool, room: str, rate: int, seconds: float = SECONDS_PER_RATE
) -> Phase:
    phase = Phase(pool, DRAIN_S)
    await phase.begin()

    async def send(n: int, scheduled: float) -> None:
        event = packet(room, n)
        phase.sent_at[event.message.id] = scheduled
        await lk.room.send_data(
            api.SendDataRequest(
                room=room,
                data=event.to_json(),
                kind=api.DataPacket.Kind.RELIABLE,
                topic=CHAT_TOPIC,
            )
        )

    await paced(rate, seconds, send)
    await phase.drain()
    return phase


async def run_path(
    http: aiohttp.ClientSession,
    tokens: list[str],
    stored: StoredTimes,
    pool: ViewerPool,
    rate: int,
    seconds: float = SECONDS_PER_RATE,
) -> tuple[Phase, PageChat]:
    phase = Phase(pool, DRAIN_S)
    await phase.begin()
    sent = await page_chat(http, tokens, phase, rate, seconds)
    await phase.drain(lambda: stored.rejected)
    return phase, sent


def path_stages(
    phase: Phase, acked_at: dict[str, float], approved_at: dict[str, float]
) -> dict[str, Any]:
    accepted, approved, delivered_first, spread = [], [], [], []
    for message_id, sent in phase.sent_at.items():
        accepted.append((acked_at[message_id] - sent) * 1000)
        approved_time = approved_at.get(message_id)
        arrivals = phase.arrivals(message_id)
        if approved_time is not None:
            approved.append((approved_time - sent) * 1000)
            if arrivals:
                delivered_first.append((min(arrivals) - approved_time) * 1000)
        if arrivals:
            spread.append((max(arrivals) - min(arrivals)) * 1000)
    return {
        "post_to_202": summary(accepted),
        "post_to_approved": summary(approved),
        "approved_to_first_viewer": summary(delivered_first),
        "first_to_last_viewer": summary(spread),
    }


async def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        **where_and_when(),
        "viewers": VIEWERS,
        "seconds_per_rate": SECONDS_PER_RATE,
        "rates": {},
    }
    async with chat_stack() as stack:
        results["rates"] = await measure(stack)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


async def measure(stack: ChatStack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    room, lk_srv = stack.room, stack.livekit
    async with edge_client(stack.edge_url) as http:
        tokens = await poster_tokens(http, POSTERS)
        nc = await nats.connect(stack.nats_url)
        stored = StoredTimes()
        await stored.follow(nc, room)
        try:
            async with publisher_and_viewers(lk_srv, room, VIEWERS, WORKERS) as (publisher, pool):
                async with server_api(lk_srv) as lk:
                    # warm every path once (connections, pools, caches)
                    await run_path(http, tokens, stored, pool, 10)
                    cpu = CpuMeter({**stack.pids, "bench_senders": os.getpid(), **pool.pids()})
                    for rate in RATES:
                        cpu.start()
                        direct = await run_direct(publisher, pool, room, rate)
                        direct_cpu = cpu.per_message_ms(len(direct.sent_at))
                        server_send = await run_server_send(lk, pool, room, rate)
                        cpu.start()
                        path, sent = await run_path(http, tokens, stored, pool, rate)
                        path_cpu = cpu.per_message_ms(len(path.sent_at) + len(sent.errors))
                        out[str(rate)] = report(
                            direct,
                            server_send,
                            path,
                            sent.acked_at,
                            stored.approved_at,
                            stored.rejected,
                        )
                        out[str(rate)]["path"]["http_errors"] = len(sent.errors)
                        out[str(rate)]["path"]["http_error_examples"] = sent.errors[:3]
                        out[str(rate)]["path"]["cpu_ms_per_message"] = path_cpu
                        out[str(rate)]["direct"]["cpu_ms_per_message"] = direct_cpu
                        print(f"rate {rate}: {out[str(rate)]['p99_ratio']}x p99", flush=True)
        finally:
            await nc.close()
    return out


def report(
    direct: Phase,
    server_send: Phase,
    path: Phase,
    acked_at: dict[str, float],
    approved_at: dict[str, float],
    rejected: dict[str, str],
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for name, phase in zip(PHASES, (direct, server_send, path), strict=True):
        values, lost = phase.latencies(set(rejected) if phase is path else frozenset())
        figures[name] = {
            **summary(values),
            "messages": len(phase.sent_at),
            "lost": lost,
            "duplicates": phase.duplicates,
        }
    figures["path"]["stages"] = path_stages(path, acked_at, approved_at)
    reasons = [rejected[i] for i in path.sent_at if i in rejected]
    figures["path"]["rejected_by_moderation"] = len(reasons)
    figures["path"]["rejection_examples"] = sorted(set(reasons))[:3]
    direct_p99, path_p99 = figures["direct"]["p99_ms"], figures["path"]["p99_ms"]
    direct_p50, path_p50 = figures["direct"]["p50_ms"], figures["path"]["p50_ms"]
    figures["p99_ratio"] = round(path_p99 / direct_p99, 2) if direct_p99 and path_p99 else None
    figures["p50_ratio"] = round(path_p50 / direct_p50, 2) if direct_p50 and path_p50 else None
    return figures
