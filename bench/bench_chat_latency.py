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
import contextlib
import itertools
import json
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import nats
from livekit import api

from bench import smoke_or, where_and_when
from livestage import subjects
from livestage.schemas import ChatMessage, ChatMessageEvent, ModerationVerdict
from tests.support.chat import backend_env, chat_message, chat_services
from tests.support.identities import named_viewer
from tests.support.infra import LiveKitServer, NatsServer, RedisServer
from tests.support.livekit_helpers import join, leave, mint_token, server_api
from tests.support.services import end_service, free_port, start_service_until, wait_http_ok

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


POST_COUNTER = itertools.count()
WORDS = ("hello from", "what a show,", "question", "lol nice", "greetings", "agree with")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    if pid is None:
        return 0.0
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU time each process of the path spent during a phase, per message sent."""

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def start(self) -> None:
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def per_message_ms(self, messages: int) -> dict[str, float]:
        return {
            name: round((cpu_seconds(pid) - self.before[name]) * 1000 / max(messages, 1), 3)
            for name, pid in self.pids.items()
        }


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return round(ordered[index], 2)


def summary(values: list[float]) -> dict[str, Any]:
    return {
        "p50_ms": percentile(values, 50),
        "p99_ms": percentile(values, 99),
        "max_ms": round(max(values), 2) if values else None,
        "mean_ms": round(statistics.fmean(values), 2) if values else None,
        "samples": len(values),
    }


def viewer_worker(url: str, tokens: list[str], conn: Any) -> None:
    """A child process holding some of the viewers (run with the `spawn` start method).

    Viewers live in their own processes so that receiving thousands of packets a second never
    competes with the senders' event loop. Arrival times are `time.monotonic()`, which is the
    same clock in every process of a machine. Protocol on `conn`: it sends "ready" once every
    viewer joined; "reset" forgets what arrived so far (a new phase); "collect" answers
    {viewer: {message_id: first arrival}} plus the duplicate count; "stop" leaves. Packets are
    read with `json.loads`, the least a viewer can do (the page does about as much).
    """

    async def main() -> None:
        from livekit import rtc

        first: dict[str, dict[str, float]] = {}
        duplicates = 0
        rooms: list[rtc.Room] = []

        def recorder(seen: dict[str, float]) -> Callable[[rtc.DataPacket], None]:
            def on_data(packet: rtc.DataPacket) -> None:
                nonlocal duplicates
                at = time.monotonic()
                if packet.topic != "anam-live-chat":
                    return
                message_id = json.loads(packet.data)["message"]["id"]
                if message_id in seen:
                    duplicates += 1
                else:
                    seen[message_id] = at

            return on_data

        for token in tokens:
            room = rtc.Room()
            seen: dict[str, float] = {}
            room.on("data_received", recorder(seen))
            await room.connect(url, token)
            first[room.local_participant.identity] = seen
            rooms.append(room)
        loop = asyncio.get_running_loop()
        conn.send("ready")
        while True:
            command = await loop.run_in_executor(None, conn.recv)
            if command == "collect":
                conn.send(({name: dict(seen) for name, seen in first.items()}, duplicates))
            elif command == "reset":
                for seen in first.values():
                    seen.clear()
                duplicates = 0
                conn.send("reset")
            else:
                break
        for room in rooms:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(room.disconnect(), 5)

    asyncio.run(main())


class ViewerPool:
    """`VIEWERS` subscribe-only rtc viewers spread over `WORKERS` processes."""

    def __init__(self, lk_srv: LiveKitServer, room: str) -> None:
        self.lk_srv = lk_srv
        self.room = room
        self.conns: list[Any] = []
        self.processes: list[Any] = []

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        identities = [named_viewer(f"bench viewer {n}") for n in range(VIEWERS)]
        for worker in range(WORKERS):
            mine = identities[worker::WORKERS]
            tokens = [
                mint_token(self.lk_srv, i, self.room, can_publish=False, can_publish_data=False)
                for i in mine
            ]
            parent, child = context.Pipe()
            process = context.Process(
                target=viewer_worker, args=(self.lk_srv.url, tokens, child), daemon=True
            )
            process.start()
            self.conns.append(parent)
            self.processes.append(process)
        for conn in self.conns:
            ready = await asyncio.wait_for(asyncio.to_thread(conn.recv), 60)
            assert ready == "ready", ready

    def pids(self) -> dict[str, int | None]:
        return {f"viewers_{n}": process.pid for n, process in enumerate(self.processes)}

    async def collect(self) -> tuple[dict[str, dict[str, float]], int]:
        arrivals: dict[str, dict[str, float]] = {}
        duplicates = 0
        for conn in self.conns:
            conn.send("collect")
            part, dups = await asyncio.to_thread(conn.recv)
            arrivals.update(part)
            duplicates += dups
        return arrivals, duplicates

    async def reset(self) -> None:
        for conn in self.conns:
            conn.send("reset")
        for conn in self.conns:
            await asyncio.to_thread(conn.recv)

    async def close(self) -> None:
        for conn in self.conns:
            with contextlib.suppress(OSError):
                conn.send("stop")
        for process in self.processes:
            await asyncio.to_thread(process.join, 10)
            if process.is_alive():
                process.kill()


class Phase:
    """One run at one rate: what was sent when, and when each viewer first got it."""

    def __init__(self, pool: ViewerPool) -> None:
        self.pool = pool
        self.sent_at: dict[str, float] = {}
        self.arrived: dict[str, dict[str, float]] = {}
        self.duplicates = 0

    async def begin(self) -> None:
        await self.pool.reset()

    async def drain(self) -> None:
        """Collect until every viewer has every message, or `DRAIN_S` passed."""
        deadline = time.monotonic() + DRAIN_S
        wanted = set(self.sent_at)
        while True:
            self.arrived, self.duplicates = await self.pool.collect()
            done = all(wanted <= set(seen) for seen in self.arrived.values())
            if done or time.monotonic() > deadline:
                return
            await asyncio.sleep(0.2)

    def arrivals(self, message_id: str) -> list[float]:
        return [seen[message_id] for seen in self.arrived.values() if message_id in seen]

    def latencies(
        self, excluded: set[str] | frozenset[str] = frozenset()
    ) -> tuple[list[float], int]:
        """Latencies of every (message, viewer) pair, and the pairs that never arrived;
        `excluded` messages (moderation rejected them) are not expected anywhere."""
        values: list[float] = []
        lost = 0
        for message_id, sent in self.sent_at.items():
            if message_id in excluded:
                continue
            arrived = self.arrivals(message_id)
            lost += VIEWERS - len(arrived)
            values.extend((at - sent) * 1000 for at in arrived)
        return values, lost


async def paced(rate: int, seconds: float, send: Callable[[int, float], Awaitable[None]]) -> None:
    """Call `send(n, scheduled)` `rate` times a second for `seconds`, on schedule (open loop).

    Latencies count from `scheduled`, so a sender (or a bench loop) that falls behind shows up
    in the figures instead of silently sending less.
    """
    started = time.monotonic()
    tasks: list[asyncio.Task[None]] = []
    for n in range(int(rate * seconds)):
        scheduled = started + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        tasks.append(asyncio.create_task(send(n, scheduled)))
    await asyncio.gather(*tasks)


def packet(room: str, n: int) -> ChatMessageEvent:
    body = f"benchmark message {n}, about as long as a chat line usually is"
    return ChatMessageEvent(message=chat_message(room, body, author_name="Bench"))


async def run_direct(publisher: Any, pool: ViewerPool, room: str, rate: int) -> Phase:
    """One sender, one packet after the other, as a chat client would publish.

    Not concurrent tasks: the rtc SDK hands every FFI event to every pending call's queue, so
    hundreds of concurrent `publish_data` calls cost the sender quadratic time and would
    measure the SDK's bookkeeping, not LiveKit. Latency counts from the scheduled send time,
    so a sender that falls behind shows up in the figures.
    """
    phase = Phase(pool)
    await phase.begin()
    started = time.monotonic()
    for n in range(int(rate * SECONDS_PER_RATE)):
        scheduled = started + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.monotonic()))
        event = packet(room, n)
        phase.sent_at[event.message.id] = scheduled
        await publisher.local_participant.publish_data(
            event.to_json(), reliable=True, topic="anam-live-chat"
        )
    await phase.drain()
    return phase


async def run_server_send(lk: api.LiveKitAPI, pool: ViewerPool, room: str, rate: int) -> Phase:
    phase = Phase(pool)
    await phase.begin()

    async def send(n: int, scheduled: float) -> None:
        event = packet(room, n)
        phase.sent_at[event.message.id] = scheduled
        await lk.room.send_data(
            api.SendDataRequest(
                room=room,
                data=event.to_json(),
                kind=api.DataPacket.Kind.RELIABLE,
                topic="anam-live-chat",
            )
        )

    await paced(rate, SECONDS_PER_RATE, send)
    await phase.drain()
    return phase


async def run_path(
    http: aiohttp.ClientSession,
    tokens: list[str],
    approved_at: dict[str, float],
    pool: ViewerPool,
    rate: int,
) -> tuple[Phase, dict[str, float], list[str]]:
    phase = Phase(pool)
    await phase.begin()
    acked_at: dict[str, float] = {}
    errors: list[str] = []

    async def send(n: int, scheduled: float) -> None:
        # Posters take turns over the whole run, each line different: moderation's flood and
        # duplicate checks see what a busy room of real people would look like.
        sent = next(POST_COUNTER)
        try:
            async with http.post(
                "/api/chat",
                json={"body": f"{WORDS[sent % len(WORDS)]} {sent}, about as long as chat is"},
                headers={"Authorization": f"Bearer {tokens[sent % len(tokens)]}"},
            ) as response:
                if response.status != 202:
                    errors.append(f"{response.status} {(await response.text())[:200]}")
                    return
                message_id = (await response.json())["id"]
        except (aiohttp.ClientError, TimeoutError) as error:
            errors.append(repr(error))
            return
        phase.sent_at[message_id] = scheduled
        acked_at[message_id] = time.monotonic()

    await paced(rate, SECONDS_PER_RATE, send)
    await phase.drain()
    return phase, acked_at, errors


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
    with NatsServer() as nats_srv, RedisServer() as redis_srv, LiveKitServer() as lk_srv:
        env = backend_env(nats_srv, redis_srv, lk_srv, MODERATION_ROOM_RATE="1000000")
        port = free_port()
        room = "bench-" + uuid.uuid4().hex[:8]
        edge_env = {
            **env,
            "LIVEKIT_ROOM": room,
            "TOKEN_PORT": str(port),
            # Every poster is on 127.0.0.1, one network: only the per-network limits are raised.
            "TOKEN_RATE_TOKEN_PER_IP": "100000/minute",
            "TOKEN_RATE_CHAT_PER_NETWORK": "100000/10seconds",
            "LIVESTAGE_LOG_LEVEL": "WARNING",
        }
        # Its output is read all along: an unread pipe fills up and stalls the edge.
        edge = await asyncio.to_thread(
            start_service_until, "token_service", edge_env, "Application startup complete"
        )
        try:
            await asyncio.to_thread(wait_http_ok, f"http://127.0.0.1:{port}/readyz", edge)
            with chat_services(env) as services:
                pids = {
                    "edge": edge.pid,
                    "moderation": services["moderation"].pid,
                    "chat_history": services["chat_history"].pid,
                    "livekit_server": lk_srv.pid,
                    "nats_server": nats_srv.pid,
                    "redis_server": redis_srv.pid,
                }
                results["rates"] = await measure(lk_srv, nats_srv.url, port, room, pids)
        finally:
            output = end_service(edge)
            if edge.returncode not in (0, -15):
                print(output[-3000:], flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


async def measure(
    lk_srv: LiveKitServer, nats_url: str, port: int, room: str, pids: dict[str, int | None]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    # aiohttp, not httpx: at 200 requests a second the sender's own CPU matters. No cookie jar:
    # each token request comes without the edge's visitor cookie, so each poster is a new visitor.
    async with aiohttp.ClientSession(
        base_url=f"http://127.0.0.1:{port}",
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=64),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as http:
        limit = asyncio.Semaphore(16)

        async def poster_token(n: int) -> str:
            async with (
                limit,
                http.post(
                    "/api/livekit-token",
                    json={"displayName": f"Poster {n}", "avatar": "fox"},
                ) as response,
            ):
                if response.status != 200:
                    raise RuntimeError(
                        f"POST /api/livekit-token: {response.status} {await response.text()}"
                    )
                token: str = (await response.json())["token"]
                return token

        tokens = list(await asyncio.gather(*(poster_token(n) for n in range(POSTERS))))

        nc = await nats.connect(nats_url)
        approved_at: dict[str, float] = {}
        rejected: dict[str, str] = {}

        # When JetStream stored each approved message (its own clock, this machine's wall
        # clock), turned into time.monotonic(): a busy bench loop cannot skew it.
        wall_to_monotonic = time.monotonic() - time.time()

        async def on_approved(msg: Any) -> None:
            stored = msg.metadata.timestamp.timestamp() + wall_to_monotonic
            approved_at[ChatMessage.from_json(msg.data).id] = stored

        async def on_rejected(msg: Any) -> None:
            verdict = ModerationVerdict.from_json(msg.data)
            rejected[verdict.message_id] = verdict.reason

        await nc.jetstream().subscribe(
            subjects.chat_approved(room), cb=on_approved, ordered_consumer=True
        )
        await nc.jetstream().subscribe(
            subjects.chat_rejected(room), cb=on_rejected, ordered_consumer=True
        )
        publisher = await join(
            lk_srv,
            mint_token(lk_srv, "bench-direct-publisher", room, can_publish_data=True),
        )
        pool = ViewerPool(lk_srv, room)
        try:
            await pool.start()
            async with asyncio.timeout(20):
                while len(publisher.remote_participants) < VIEWERS:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            async with server_api(lk_srv) as lk:
                # warm every path once (connections, pools, caches)
                await run_path(http, tokens, approved_at, pool, 10)
                cpu = CpuMeter(
                    {**pids, "bench_senders": os.getpid(), **pool.pids()}  # type: ignore[dict-item]
                )
                for rate in RATES:
                    cpu.start()
                    direct = await run_direct(publisher, pool, room, rate)
                    direct_cpu = cpu.per_message_ms(len(direct.sent_at))
                    server_send = await run_server_send(lk, pool, room, rate)
                    cpu.start()
                    path, acked_at, errors = await run_path(http, tokens, approved_at, pool, rate)
                    path_cpu = cpu.per_message_ms(len(path.sent_at) + len(errors))
                    out[str(rate)] = report(
                        direct, server_send, path, acked_at, approved_at, rejected
                    )
                    out[str(rate)]["path"]["http_errors"] = len(errors)
                    out[str(rate)]["path"]["http_error_examples"] = errors[:3]
                    out[str(rate)]["path"]["cpu_ms_per_message"] = path_cpu
                    out[str(rate)]["direct"]["cpu_ms_per_message"] = direct_cpu
                    print(f"rate {rate}: {out[str(rate)]['p99_ratio']}x p99", flush=True)
        finally:
            await pool.close()
            await leave(publisher)
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
