"""The chat path as the chat benches drive it (not a benchmark itself: no `bench_` prefix).

Shared by `bench_chat_latency` (page chat against LiveKit's direct path), `bench_bridge`
(platform chat against page chat) and `bench_faults`:

- `chat_stack()`: own nats-server, redis-server and livekit-server on 127.0.0.1, then the real
  edge, moderation and chat-history processes for one fresh room;
- `ViewerPool`: subscribe-only rtc viewers (like browsers) in worker processes, recording when
  each first got each message; `Phase`: one measured run on that pool (what was sent when, what
  arrived, loss and duplicates);
- `paced()`: open-loop sending at a rate; `page_chat()`: `POST /api/chat` by many visitors;
- `StoredTimes`: when JetStream stored each message on `chat.submitted` / `chat.approved` (its
  own clock) and what moderation rejected;
- figures: `percentile`, `summary`, `CpuMeter` (CPU per message of each process, from /proc).
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
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from nats.aio.client import Client as NatsClient

from livestage import subjects
from livestage.schemas import ChatMessage, ModerationVerdict, inflate_packet
from tests.support.chat import backend_env, chat_services
from tests.support.identities import named_viewer
from tests.support.infra import LiveKitServer, NatsServer, RedisServer
from tests.support.livekit_helpers import mint_token
from tests.support.services import end_service, free_port, start_service_until, wait_http_ok

CHAT_TOPIC = "anam-live-chat"
POST_COUNTER = itertools.count()
WORDS = ("hello from", "what a show,", "question", "lol nice", "greetings", "agree with")


def chat_line(n: int) -> str:
    """The `n`th line a bench posts: each different, as a busy room of people writes (moderation's
    duplicate check sees no repeats)."""
    return f"{WORDS[n % len(WORDS)]} {n}, about as long as chat is"


# -- figures ---------------------------------------------------------------------------------


def cpu_seconds(pid: int | None, apart: frozenset[int] = frozenset()) -> float:
    """User + system CPU time of a process and of its live descendants so far (an edge with
    TOKEN_WORKERS > 1 works in its children), from /proc (Linux); descendants in `apart` (and
    theirs) are not counted: they are measured on their own."""
    if pid is None or pid in apart:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return own + sum(cpu_seconds(child, apart) for child in children(pid))


def children(pid: int) -> list[int]:
    """The child processes of `pid` (from each of its threads' /proc children list)."""
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as listed:
                found += [int(child) for child in listed.read().split()]
    except OSError:
        pass
    return found


class CpuMeter:
    """CPU time each process of the path spent during a phase, per message sent.

    A process counts with its descendants but those named on their own: the bench process
    started the servers, the services and the viewer processes, which it must not count again.
    """

    def __init__(self, pids: dict[str, int | None]) -> None:
        self.pids = pids
        self.before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        named = frozenset(pid for pid in self.pids.values() if pid is not None)
        return {name: cpu_seconds(pid, named - {pid}) for name, pid in self.pids.items()}

    def start(self) -> None:
        self.before = self._now()

    def spent_s(self) -> dict[str, float]:
        """CPU seconds of each process since `start()`."""
        now = self._now()
        return {name: now[name] - self.before[name] for name in self.pids}

    def per_message_ms(self, messages: int) -> dict[str, float]:
        return {
            name: round(spent * 1000 / max(messages, 1), 3)
            for name, spent in self.spent_s().items()
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


def chat_line_ids(data: bytes) -> list[str]:
    """The ids of the chat lines in one packet on the chat topic: a message event
    (`{"message": {...}}`) or a batch of events (`{"type": "batch", "events": [...]}`,
    chat-history's batched fan-out, compressed: `inflate_packet`); rejections and removals carry
    none."""
    event = json.loads(inflate_packet(data))
    events = event.get("events", ()) if event.get("type") == "batch" else (event,)
    return [each["message"]["id"] for each in events if isinstance(each.get("message"), dict)]


# -- the stack -------------------------------------------------------------------------------


@dataclass
class ChatStack:
    """The servers and chat processes of one bench run, for one room."""

    room: str
    env: dict[str, str]
    """NATS, Redis and LiveKit settings (and LIVEKIT_ROOM) for further services."""
    edge_url: str
    livekit: LiveKitServer
    nats_url: str
    pids: dict[str, int | None]
    """Each process of the path by name (edge, moderation, chat_history, the servers)."""


@contextlib.asynccontextmanager
async def chat_stack(**extra_env: str) -> AsyncIterator[ChatStack]:
    """nats-server, redis-server and livekit-server, then the edge, moderation and chat-history.

    Moderation's room cap (`MODERATION_ROOM_RATE`, 15/s by default) is raised, since benches
    measure the path at rates above it, and every poster is on 127.0.0.1, one network: only the
    edge's per-network limits are raised (`TOKEN_RATE_TOKEN_PER_IP`,
    `TOKEN_RATE_CHAT_PER_NETWORK`). The per-visitor chat limit and moderation's flood check stay
    as they are, which is why a high rate needs many posters. `extra_env` goes to every service.
    """
    with NatsServer() as nats_srv, RedisServer() as redis_srv, LiveKitServer() as lk_srv:
        room = "bench-" + uuid.uuid4().hex[:8]
        env = backend_env(
            nats_srv, redis_srv, lk_srv, MODERATION_ROOM_RATE="1000000", LIVEKIT_ROOM=room
        )
        env.update(extra_env)
        port = free_port()
        edge_env = {
            **env,
            "TOKEN_PORT": str(port),
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
                yield ChatStack(
                    room=room,
                    env=env,
                    edge_url=f"http://127.0.0.1:{port}",
                    livekit=lk_srv,
                    nats_url=nats_srv.url,
                    pids={
                        "edge": edge.pid,
                        "moderation": services["moderation"].pid,
                        "chat_history": services["chat_history"].pid,
                        "livekit_server": lk_srv.pid,
                        "nats_server": nats_srv.pid,
                        "redis_server": redis_srv.pid,
                    },
                )
        finally:
            output = end_service(edge)
            if edge.returncode not in (0, -15):
                print(output[-3000:], flush=True)


class StoredTimes:
    """When JetStream stored each chat message of a room on `chat.submitted` and `chat.approved`
    (JetStream's own timestamp, this machine's wall clock, turned into `time.monotonic()`: a
    busy bench loop cannot skew it), and moderation's rejections (message id -> reason)."""

    def __init__(self) -> None:
        self.submitted_at: dict[str, float] = {}
        self.approved_at: dict[str, float] = {}
        self.rejected: dict[str, str] = {}
        self._wall_to_monotonic = time.monotonic() - time.time()

    async def follow(self, nc: NatsClient, room: str, *, submitted: bool = False) -> None:
        js = nc.jetstream()

        def stored(into: dict[str, float]) -> Callable[[Any], Awaitable[None]]:
            async def on_message(msg: Any) -> None:
                at = msg.metadata.timestamp.timestamp() + self._wall_to_monotonic
                into[ChatMessage.from_json(msg.data).id] = at

            return on_message

        async def on_rejected(msg: Any) -> None:
            verdict = ModerationVerdict.from_json(msg.data)
            self.rejected[verdict.message_id] = verdict.reason

        await js.subscribe(
            subjects.chat_approved(room), cb=stored(self.approved_at), ordered_consumer=True
        )
        await js.subscribe(subjects.chat_rejected(room), cb=on_rejected, ordered_consumer=True)
        if submitted:
            await js.subscribe(
                subjects.chat_submitted(room), cb=stored(self.submitted_at), ordered_consumer=True
            )


# -- viewers ---------------------------------------------------------------------------------


def viewer_worker(url: str, tokens: list[str], conn: Any) -> None:
    """A child process holding some of the viewers (run with the `spawn` start method).

    Viewers live in their own processes so that receiving thousands of packets a second never
    competes with the senders' event loop. Arrival times are `time.monotonic()`, which is the
    same clock in every process of a machine. Protocol on `conn`: it sends "ready" once every
    viewer joined; "reset" forgets what arrived so far (a new phase); "collect" answers
    {viewer: {message_id: first arrival}} plus {message_id: times it came again}; "tally" only
    {viewer: (messages so far, last first-arrival)} (cheap with tens of thousands); ("lacking",
    ids) how many of its viewers lack some of `ids` (a phase polls this, and collects the
    arrivals once, at its end); "received" (chat-topic bytes, packets) since the last reset, all
    its viewers together; "stop" leaves.
    Packets are read with `json.loads` (`chat_line_ids`: one message or a batch of them), the
    least a viewer can do (the page does about as much).
    """

    async def main() -> None:
        from livekit import rtc

        first: dict[str, dict[str, float]] = {}
        repeats: dict[str, int] = {}
        rooms: list[rtc.Room] = []
        received = [0, 0]  # chat-topic bytes and packets, all viewers of this process

        def recorder(seen: dict[str, float]) -> Callable[[rtc.DataPacket], None]:
            def on_data(packet: rtc.DataPacket) -> None:
                at = time.monotonic()
                if packet.topic != CHAT_TOPIC:
                    return
                received[0] += len(packet.data)
                received[1] += 1
                for message_id in chat_line_ids(packet.data):
                    if message_id in seen:
                        repeats[message_id] = repeats.get(message_id, 0) + 1
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
            if isinstance(command, tuple) and command[0] == "lacking":
                wanted = command[1]
                conn.send(sum(1 for seen in first.values() if not wanted <= seen.keys()))
            elif command == "collect":
                conn.send(({name: dict(seen) for name, seen in first.items()}, dict(repeats)))
            elif command == "tally":
                conn.send(
                    {
                        name: (len(seen), max(seen.values(), default=0.0))
                        for name, seen in first.items()
                    }
                )
            elif command == "received":
                conn.send(tuple(received))
            elif command == "reset":
                for seen in first.values():
                    seen.clear()
                repeats.clear()
                received[:] = [0, 0]
                conn.send("reset")
            else:
                break
        for room in rooms:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(room.disconnect(), 5)

    asyncio.run(main())


class ViewerPool:
    """`viewers` subscribe-only rtc viewers spread over `workers` processes."""

    def __init__(self, lk_srv: LiveKitServer, room: str, viewers: int, workers: int) -> None:
        self.lk_srv = lk_srv
        self.room = room
        self.viewers = viewers
        self.workers = workers
        self.conns: list[Any] = []
        self.processes: list[Any] = []

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        identities = [named_viewer(f"bench viewer {n}") for n in range(self.viewers)]
        for worker in range(self.workers):
            mine = identities[worker :: self.workers]
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

    async def collect(self) -> tuple[dict[str, dict[str, float]], dict[str, int]]:
        arrivals: dict[str, dict[str, float]] = {}
        repeats: dict[str, int] = {}
        for conn in self.conns:
            conn.send("collect")
            part, again = await asyncio.to_thread(conn.recv)
            arrivals.update(part)
            for message_id, times in again.items():
                repeats[message_id] = repeats.get(message_id, 0) + times
        return arrivals, repeats

    async def lacking(self, wanted: set[str]) -> int:
        """How many viewers lack some of the `wanted` messages (cheap: nothing per arrival
        crosses the pipes)."""
        for conn in self.conns:
            conn.send(("lacking", wanted))
        return sum([await asyncio.to_thread(conn.recv) for conn in self.conns])

    async def tally(self) -> dict[str, tuple[int, float]]:
        """{viewer: (distinct messages since the last reset, when the latest of them came)}."""
        counts: dict[str, tuple[int, float]] = {}
        for conn in self.conns:
            conn.send("tally")
            counts.update(await asyncio.to_thread(conn.recv))
        return counts

    async def received(self) -> tuple[int, int]:
        """(bytes, packets) on the chat topic since the last reset, all viewers together."""
        total = [0, 0]
        for conn in self.conns:
            conn.send("received")
            size, packets = await asyncio.to_thread(conn.recv)
            total[0] += size
            total[1] += packets
        return total[0], total[1]

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


@dataclass
class Phase:
    """One run on a pool: what was sent when, and when each viewer first got it."""

    pool: ViewerPool
    drain_s: float
    """After the last send, how long stragglers may take before they count as lost."""
    sent_at: dict[str, float] = field(default_factory=dict)
    arrived: dict[str, dict[str, float]] = field(default_factory=dict)
    repeats: dict[str, int] = field(default_factory=dict)
    """Messages a viewer got more than once: how many extra times (over every viewer)."""

    @property
    def duplicates(self) -> int:
        return sum(self.repeats.values())

    async def begin(self) -> None:
        await self.pool.reset()

    async def drain(self, excluded: Callable[[], Iterable[str]] = tuple) -> None:
        """Collect until every viewer has every message (but those `excluded()` names: moderation
        rejected them), or `drain_s` passed."""
        deadline = time.monotonic() + self.drain_s
        while await self.pool.lacking(set(self.sent_at) - set(excluded())):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        self.arrived, self.repeats = await self.pool.collect()

    def arrivals(self, message_id: str) -> list[float]:
        return [seen[message_id] for seen in self.arrived.values() if message_id in seen]

    def latencies(
        self,
        excluded: set[str] | frozenset[str] = frozenset(),
        among: Iterable[str] | None = None,
    ) -> tuple[list[float], int]:
        """Latencies of every (message, viewer) pair, and the pairs that never arrived;
        `excluded` messages (moderation rejected them) are not expected anywhere; `among`: only
        these messages (default: every one sent)."""
        values: list[float] = []
        lost = 0
        for message_id in self.sent_at if among is None else among:
            if message_id in excluded:
                continue
            sent = self.sent_at[message_id]
            arrived = self.arrivals(message_id)
            lost += self.pool.viewers - len(arrived)
            values.extend((at - sent) * 1000 for at in arrived)
        return values, lost

    def duplicates_among(self, ids: Iterable[str]) -> int:
        return sum(self.repeats.get(message_id, 0) for message_id in ids)


async def paced(
    rate: int, seconds: float, send: Callable[[int, float], Coroutine[Any, Any, None]]
) -> None:
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


# -- page chat -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def edge_client(edge_url: str) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client for the edge. aiohttp, not httpx: at 200 requests a second the sender's own
    CPU matters. No cookie jar: each token request comes without the edge's visitor cookie, so
    each poster is a new visitor."""
    async with aiohttp.ClientSession(
        base_url=edge_url,
        timeout=aiohttp.ClientTimeout(total=30),
        connector=aiohttp.TCPConnector(limit=64),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as http:
        yield http


async def poster_tokens(http: aiohttp.ClientSession, posters: int) -> list[str]:
    """A viewer token for each of `posters` new visitors (as each browser would get one)."""
    limit = asyncio.Semaphore(16)

    async def poster_token(n: int) -> str:
        async with (
            limit,
            http.post(
                "/api/livekit-token", json={"displayName": f"Poster {n}", "avatar": "fox"}
            ) as response,
        ):
            if response.status != 200:
                raise RuntimeError(
                    f"POST /api/livekit-token: {response.status} {await response.text()}"
                )
            token: str = (await response.json())["token"]
            return token

    return list(await asyncio.gather(*(poster_token(n) for n in range(posters))))


def post_chat(http: aiohttp.ClientSession, tokens: list[str], turn: int) -> Any:
    """`POST /api/chat` of line `turn` by poster `turn % len(tokens)` (an aiohttp request
    context: `async with post_chat(...) as response`)."""
    return http.post(
        "/api/chat",
        json={"body": chat_line(turn)},
        headers={"Authorization": f"Bearer {tokens[turn % len(tokens)]}"},
    )


@contextlib.asynccontextmanager
async def publisher_and_viewers(
    lk_srv: LiveKitServer, room: str, viewers: int, processes: int
) -> AsyncIterator[tuple[Any, ViewerPool]]:
    """A participant that may publish data (the direct path) and `viewers` subscribe-only
    viewers in `processes` processes, all in the room and seen by the publisher."""
    from tests.support.livekit_helpers import join, leave

    publisher = await join(
        lk_srv, mint_token(lk_srv, "bench-direct-publisher", room, can_publish_data=True)
    )
    pool = ViewerPool(lk_srv, room, viewers, processes)
    try:
        await pool.start()
        async with asyncio.timeout(30):
            while len(publisher.remote_participants) < viewers:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield publisher, pool
    finally:
        await pool.close()
        await leave(publisher)


@dataclass
class PageChat:
    """Page chat sent during one phase: when the edge answered 202, and what failed."""

    acked_at: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


async def page_chat(
    http: aiohttp.ClientSession, tokens: list[str], phase: Phase, rate: int, seconds: float
) -> PageChat:
    """`POST /api/chat` at `rate` for `seconds` (open loop), the posters taking turns over the
    whole run; each message's latency counts from its scheduled send."""
    sent = PageChat()

    async def send(n: int, scheduled: float) -> None:
        turn = next(POST_COUNTER)
        try:
            async with post_chat(http, tokens, turn) as response:
                if response.status != 202:
                    sent.errors.append(f"{response.status} {(await response.text())[:200]}")
                    return
                message_id = (await response.json())["id"]
        except (aiohttp.ClientError, TimeoutError) as error:
            sent.errors.append(repr(error))
            return
        phase.sent_at[message_id] = scheduled
        sent.acked_at[message_id] = time.monotonic()

    await paced(rate, seconds, send)
    return sent
