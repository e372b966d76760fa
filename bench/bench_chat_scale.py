"""Chat that holds a busy room (issue #20): the four proofs in one run.

    python -m bench chat_scale            (or `make bench B=chat_scale`)

Starts its own nats-server, redis-server and livekit-server on 127.0.0.1, the real edge,
moderation and chat-history processes (`chat_stack`), and joins `VIEWERS` subscribe-only rtc
viewers to one room. Then, in this order:

- `rates.<rate>` (a: 50 msg/s, b: 200 msg/s by default): page chat (`POST /api/chat` by many
  visitors, open loop) for `SECONDS` each, against LiveKit's direct data path and the server
  API's SendData at the same rate, exactly as `bench_chat_latency` measures them (its phases are
  reused): p50/p99 per (message, viewer), loss, duplicates, `p99_ratio` (path / direct; goal
  <= 2.0 at 50 msg/s; goal path p99 <= 500 ms at 200 msg/s), the path's stages, CPU per message.
- `drain` (c): moderation is paused (SIGSTOP), `DRAIN_RATE * DRAIN_SECONDS` platform chat
  messages (each a fresh author, as chat-bridge would put them) are stored on
  `chat.submitted.<room>`, moderation resumes, and the clock runs until every viewer has every
  approved message: `messages_per_s` = approved messages / that time (goal >= 1,000), loss, CPU
  per message of each process.
- `edge` (d): moderation and chat-history are paused (JetStream keeps what comes; nothing else
  competes), then `EDGE_CLIENTS` client processes keep `EDGE_CONCURRENCY` chat POSTs each in
  flight for `EDGE_SECONDS`, first against the edge, then against `bench/bare_edge.py` (FastAPI,
  one route answering 202 with no work, the same uvicorn settings): accepted POSTs per second
  per worker of each and `edge_to_bare` (goal >= 0.33), the CPU of the edge (all its workers),
  NATS, Redis and the clients per POST. The clients share the machine with the server they
  measure: their CPU is reported so a client-bound figure shows.

Sizes are environment variables (defaults in brackets): BENCH_SCALE_RATES [50,200],
BENCH_SCALE_SECONDS [10], BENCH_SCALE_DRAIN_RATE [1000], BENCH_SCALE_DRAIN_SECONDS [60],
BENCH_SCALE_EDGE_SECONDS [10], BENCH_SCALE_EDGE_CLIENTS [2], BENCH_SCALE_EDGE_CONCURRENCY [32],
BENCH_SCALE_VIEWERS [20], BENCH_SCALE_VIEWER_PROCESSES [4], BENCH_SCALE_POSTERS [1000], and
TOKEN_WORKERS [1] for the edge and the bare server alike. BENCH_SCALE_PHASES [rates,drain,edge]
runs only the named phases (`edge` alone: phase d without viewers, e.g. to profile the edge).
The edge's per-visitor chat limit is raised to 60/10 s (every POST still counts against it) so
that phase d is never refused;
moderation's flood check stays, which is why the rate phases take turns over many posters.
Packets are read as one message or a `ChatBatchEvent` (`chat_line_ids`), so the bench measures
per-message and batched fan-out alike.

`BENCH_SMOKE=1`: one rate (20 msg/s) for 1 s, a drain of 200 messages, 1 s of edge load, 2
viewers in 1 process, 20 posters.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import nats
from nats.aio.client import Client as NatsClient

from bench import smoke_or, where_and_when
from bench.bench_chat_latency import report, run_direct, run_path, run_server_send
from bench.chat_path import (
    ChatStack,
    CpuMeter,
    StoredTimes,
    ViewerPool,
    chat_line,
    chat_stack,
    edge_client,
    post_chat,
    poster_tokens,
    publisher_and_viewers,
)
from livestage import subjects
from livestage.schemas import ModerationVerdict
from tests.support.chat import platform_message
from tests.support.livekit_helpers import server_api
from tests.support.services import end_service, free_port, start_service_until, wait_http_ok


def _setting(name: str, full: str, smoke: str) -> str:
    return os.environ.get(f"BENCH_SCALE_{name}", smoke_or(full, smoke))


RATES = tuple(int(rate) for rate in _setting("RATES", "50,200", "20").split(","))
SECONDS = float(_setting("SECONDS", "10", "1"))
DRAIN_RATE = int(_setting("DRAIN_RATE", "1000", "200"))
DRAIN_SECONDS = float(_setting("DRAIN_SECONDS", "60", "1"))
EDGE_SECONDS = float(_setting("EDGE_SECONDS", "10", "1"))
EDGE_CLIENTS = int(_setting("EDGE_CLIENTS", "2", "1"))
EDGE_CONCURRENCY = int(_setting("EDGE_CONCURRENCY", "32", "4"))
VIEWERS = int(_setting("VIEWERS", "20", "2"))
VIEWER_PROCESSES = int(_setting("VIEWER_PROCESSES", "4", "1"))
POSTERS = int(_setting("POSTERS", "1000", "20"))
WORKERS = int(os.environ.get("TOKEN_WORKERS", "1"))
PHASES = frozenset(_setting("PHASES", "rates,drain,edge", "rates,drain,edge").split(","))
CHAT_PER_VISITOR = "60/10seconds"
PUBLISH_IN_FLIGHT = 256  # drain phase: JetStream publishes awaiting their ack at once

FIGURES = (
    *(f"rates.*.{phase}.{stat}" for phase in ("direct", "path") for stat in ("p50_ms", "p99_ms")),
    *(f"rates.*.{phase}.{count}" for phase in ("direct", "path") for count in ("lost", "messages")),
    "rates.*.p99_ratio",
    "rates.*.path.cpu_ms_per_message.edge",
    "rates.*.path.cpu_ms_per_message.moderation",
    "rates.*.path.cpu_ms_per_message.chat_history",
    "drain.messages",
    "drain.approved",
    "drain.lost",
    "drain.seconds",
    "drain.messages_per_s",
    "drain.bytes_per_message",
    "drain.cpu_ms_per_message.moderation",
    "drain.cpu_ms_per_message.chat_history",
    "edge.edge.accepted_per_s_per_worker",
    "edge.bare.accepted_per_s_per_worker",
    "edge.edge.cpu_ms_per_post.server",
    "edge.edge_to_bare",
)


async def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        **where_and_when(),
        "viewers": VIEWERS,
        "edge_workers": WORKERS,
        "seconds_per_rate": SECONDS,
    }
    async with chat_stack(TOKEN_RATE_CHAT=CHAT_PER_VISITOR) as stack:
        results.update(await measure(stack))
    results["goals"] = goals(results)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


def goals(results: dict[str, Any]) -> dict[str, Any]:
    """Each goal of the issue beside its figure (None: that phase did not run at that size)."""
    rates, drain = results.get("rates", {}), results.get("drain", {})
    return {
        "p99_ratio_at_50_le_2": rates.get("50", {}).get("p99_ratio"),
        "path_p99_ms_at_200_le_500": rates.get("200", {}).get("path", {}).get("p99_ms"),
        "drain_messages_per_s_ge_1000": drain.get("messages_per_s"),
        "edge_to_bare_ge_0.33": results.get("edge", {}).get("edge_to_bare"),
        "zero_loss": all(rate[p]["lost"] == 0 for rate in rates.values() for p in ("path",))
        and drain.get("lost", 0) == 0,
    }


async def measure(stack: ChatStack) -> dict[str, Any]:
    """The phases named in PHASES, in their order (rates, drain, edge)."""
    room, lk_srv = stack.room, stack.livekit
    out: dict[str, Any] = {}
    async with edge_client(stack.edge_url) as http:
        tokens = await poster_tokens(http, POSTERS)
        if PHASES & {"rates", "drain"}:
            nc = await nats.connect(stack.nats_url)
            try:
                async with publisher_and_viewers(lk_srv, room, VIEWERS, VIEWER_PROCESSES) as (
                    publisher,
                    pool,
                ):
                    cpu = CpuMeter({**stack.pids, "bench": os.getpid(), **pool.pids()})
                    if "rates" in PHASES:
                        out["rates"] = await measure_rates(
                            stack, http, tokens, publisher, pool, cpu
                        )
                    if "drain" in PHASES:
                        out["drain"] = await measure_drain(stack, nc, pool, cpu)
            finally:
                await nc.close()
        if "edge" in PHASES:
            out["edge"] = await measure_edge(stack, tokens)
    return out


async def measure_rates(
    stack: ChatStack,
    http: aiohttp.ClientSession,
    tokens: list[str],
    publisher: Any,
    pool: ViewerPool,
    cpu: CpuMeter,
) -> dict[str, Any]:
    """a and b: `bench_chat_latency`'s three phases at each rate."""
    out: dict[str, Any] = {}
    stored_nc = await nats.connect(stack.nats_url)
    stored = StoredTimes()
    await stored.follow(stored_nc, stack.room)
    try:
        async with server_api(stack.livekit) as lk:
            await run_path(http, tokens, stored, pool, 10, min(SECONDS, 1.0))  # warm every path
            for rate in RATES:
                cpu.start()
                direct = await run_direct(publisher, pool, stack.room, rate, SECONDS)
                direct_cpu = cpu.per_message_ms(len(direct.sent_at))
                server_send = await run_server_send(lk, pool, stack.room, rate, SECONDS)
                cpu.start()
                path, sent = await run_path(http, tokens, stored, pool, rate, SECONDS)
                path_cpu = cpu.per_message_ms(len(path.sent_at) + len(sent.errors))
                figures = report(
                    direct, server_send, path, sent.acked_at, stored.approved_at, stored.rejected
                )
                figures["path"]["http_errors"] = len(sent.errors)
                figures["path"]["http_error_examples"] = sent.errors[:3]
                figures["path"]["cpu_ms_per_message"] = path_cpu
                figures["direct"]["cpu_ms_per_message"] = direct_cpu
                out[str(rate)] = figures
                print(
                    f"rate {rate}: path p99 {figures['path']['p99_ms']} ms, "
                    f"{figures['p99_ratio']}x direct",
                    flush=True,
                )
    finally:
        await stored_nc.drain()
    return out


@contextlib.contextmanager
def paused(stack: ChatStack, *names: str) -> Iterator[None]:
    """SIGSTOP these processes of the stack; SIGCONT on the way out, whatever happened."""
    for name in names:
        os.kill(_pid(stack, name), signal.SIGSTOP)
    try:
        yield
    finally:
        for name in names:
            os.kill(_pid(stack, name), signal.SIGCONT)


def _pid(stack: ChatStack, name: str) -> int:
    pid = stack.pids[name]
    assert pid is not None, name
    return pid


@contextlib.asynccontextmanager
async def rejections(nc: NatsClient, room: str) -> AsyncIterator[set[str]]:
    """The ids moderation rejects in `room` while inside (a core subscription: approved
    messages are not read, they are what the viewers count)."""
    rejected: set[str] = set()

    async def on_rejected(msg: Any) -> None:
        rejected.add(ModerationVerdict.from_json(msg.data).message_id)

    subscription = await nc.subscribe(subjects.chat_rejected(room), cb=on_rejected)
    try:
        yield rejected
    finally:
        await subscription.unsubscribe()


async def measure_drain(
    stack: ChatStack, nc: NatsClient, pool: ViewerPool, cpu: CpuMeter
) -> dict[str, Any]:
    """c: a backlog on chat.submitted, delivered to every viewer once moderation resumes."""
    count = int(DRAIN_RATE * DRAIN_SECONDS)
    subject = subjects.chat_submitted(stack.room)
    js = nc.jetstream()
    await pool.reset()
    async with rejections(nc, stack.room) as rejected:
        with paused(stack, "moderation"):
            stored_s = await store_backlog(js, subject, stack.room, count)
            cpu.start()
            resumed = time.monotonic()
        delivered, last_at = await wait_for_every_viewer(pool, count, rejected, resumed)
        spent = cpu.per_message_ms(count)
    received_bytes, received_packets = await pool.received()
    approved = count - len(rejected)
    viewer_messages = max(approved * pool.viewers, 1)
    seconds = max(last_at - resumed, 1e-6)
    figures = {
        "messages": count,
        "stored_in_s": round(stored_s, 2),
        "approved": approved,
        "rejected_by_moderation": len(rejected),
        "lost": sum(max(0, approved - got) for got in delivered.values()),
        "seconds": round(seconds, 2),
        "messages_per_s": round(approved / seconds, 1),
        "cpu_ms_per_message": spent,
        # what each viewer's data channel carried per chat line (packets: JSON or compressed)
        "bytes_per_message": round(received_bytes / viewer_messages, 1),
        "messages_per_packet": round(viewer_messages / max(received_packets, 1), 1),
    }
    print(
        f"drain: {approved} messages to every viewer at {figures['messages_per_s']}/s", flush=True
    )
    return figures


async def store_backlog(js: Any, subject: str, room: str, count: int) -> float:
    """Store `count` platform messages (each a fresh author and line) on `subject`, as
    chat-bridge does (`Nats-Msg-Id` as `livestage.bus`); seconds it took."""
    started = time.monotonic()
    in_flight = asyncio.Semaphore(PUBLISH_IN_FLIGHT)

    async def store(n: int) -> None:
        message = platform_message(room, chat_line(n), author_name=f"Platform {n}")
        async with in_flight:
            await js.publish(
                subject,
                message.to_json(),
                headers={"Nats-Msg-Id": f"{subject}:{message.id}"},
                timeout=30,
            )

    await asyncio.gather(*(store(n) for n in range(count)))
    return time.monotonic() - started


async def wait_for_every_viewer(
    pool: ViewerPool, count: int, rejected: set[str], since: float
) -> tuple[dict[str, int], float]:
    """Until every viewer counted every approved message (or no progress for a while): what
    each got and when the last of them came."""
    stalled_after_s = 30.0
    last_progress, best = time.monotonic(), -1
    while True:
        tally = await pool.tally()
        delivered = {viewer: got for viewer, (got, _) in tally.items()}
        last_at = max((at for _, at in tally.values()), default=since)
        if all(got >= count - len(rejected) for got in delivered.values()):
            return delivered, last_at
        if sum(delivered.values()) > best:
            best, last_progress = sum(delivered.values()), time.monotonic()
        elif time.monotonic() - last_progress > stalled_after_s:
            return delivered, last_at
        await asyncio.sleep(0.25)


def load_client(url: str, tokens: list[str], start_at: float, end_at: float, conn: Any) -> None:
    """A client process (spawned): `EDGE_CONCURRENCY` chat POSTs in flight from `start_at` to
    `end_at` (wall clock); sends back {status: responses}."""

    async def main() -> dict[int, int]:
        statuses: dict[int, int] = {}
        async with aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=EDGE_CONCURRENCY),
            timeout=aiohttp.ClientTimeout(total=30),
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as http:
            await asyncio.sleep(max(0.0, start_at - time.time()))

            async def one_connection(worker: int) -> None:
                n = worker
                while time.time() < end_at:
                    n += EDGE_CONCURRENCY
                    try:
                        async with post_chat(http, tokens, n) as response:
                            await response.read()
                            statuses[response.status] = statuses.get(response.status, 0) + 1
                    except (aiohttp.ClientError, TimeoutError):
                        statuses[0] = statuses.get(0, 0) + 1

            await asyncio.gather(*(one_connection(w) for w in range(EDGE_CONCURRENCY)))
        return statuses

    conn.send(asyncio.run(main()))


async def post_load(
    url: str, tokens: list[str], server_pids: dict[str, int | None]
) -> dict[str, Any]:
    """d, one server: accepted POSTs per second (per worker) and CPU per POST."""
    context = multiprocessing.get_context("spawn")
    start_at = time.time() + 3.0  # the clients' imports and connections come first
    end_at = start_at + EDGE_SECONDS
    conns, clients = [], []
    for n in range(EDGE_CLIENTS):
        parent, child = context.Pipe()
        mine = tokens[n::EDGE_CLIENTS]
        process = context.Process(
            target=load_client, args=(url, mine, start_at, end_at, child), daemon=True
        )
        process.start()
        conns.append(parent)
        clients.append(process)
    cpu = CpuMeter({**server_pids, **{f"client_{n}": c.pid for n, c in enumerate(clients)}})
    await asyncio.sleep(max(0.0, start_at - time.time()))
    cpu.start()
    await asyncio.sleep(max(0.0, end_at - time.time()))
    spent = cpu.spent_s()
    statuses: dict[int, int] = {}
    for conn in conns:
        part = await asyncio.wait_for(asyncio.to_thread(conn.recv), 60)
        for code, times in part.items():
            statuses[code] = statuses.get(code, 0) + times
    for process in clients:
        await asyncio.to_thread(process.join, 10)
    answered = max(sum(statuses.values()), 1)
    accepted = statuses.get(202, 0)
    per_post = {name: round(s * 1000 / answered, 3) for name, s in spent.items()}
    return {
        "statuses": {str(code): times for code, times in sorted(statuses.items())},
        "accepted_per_s": round(accepted / EDGE_SECONDS, 1),
        "accepted_per_s_per_worker": round(accepted / EDGE_SECONDS / WORKERS, 1),
        "cpu_ms_per_post": {
            "server": per_post["server"],
            **{name: ms for name, ms in per_post.items() if name != "server"},
        },
        "cpu_cores_busy": {name: round(s / EDGE_SECONDS, 2) for name, s in spent.items()},
    }


async def measure_edge(stack: ChatStack, tokens: list[str]) -> dict[str, Any]:
    """d: the edge against a bare FastAPI route, the consumers paused."""
    with paused(stack, "moderation", "chat_history"):
        edge = await post_load(
            stack.edge_url,
            tokens,
            {
                "server": stack.pids["edge"],
                "nats_server": stack.pids["nats_server"],
                "redis_server": stack.pids["redis_server"],
            },
        )
        print(f"edge: {edge['accepted_per_s_per_worker']} accepted/s per worker", flush=True)
        async with bare_server(stack) as (url, pid):
            bare = await post_load(url, tokens, {"server": pid})
        print(f"bare: {bare['accepted_per_s_per_worker']} accepted/s per worker", flush=True)
    ratio = edge["accepted_per_s"] / bare["accepted_per_s"] if bare["accepted_per_s"] else None
    return {
        "workers": WORKERS,
        "clients": EDGE_CLIENTS,
        "concurrency_per_client": EDGE_CONCURRENCY,
        "seconds": EDGE_SECONDS,
        "edge": edge,
        "bare": bare,
        "edge_to_bare": None if ratio is None else round(ratio, 3),
    }


@contextlib.asynccontextmanager
async def bare_server(stack: ChatStack) -> AsyncIterator[tuple[str, int]]:
    """`bench/bare_edge.py` with the edge's settings (its environment, another port)."""
    port = free_port()
    env = {**stack.env, "TOKEN_PORT": str(port), "TOKEN_WORKERS": str(WORKERS)}
    process = await asyncio.to_thread(
        start_service_until, "bench.bare_edge", env, "Application startup complete"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        await asyncio.to_thread(wait_http_ok, f"{url}/openapi.json", process)
        yield url, process.pid
    finally:
        await asyncio.to_thread(end_service, process)
