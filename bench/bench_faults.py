"""Delivery under faults: chat at a steady rate while, in turn, every part of the stack crashes.

    python -m bench faults          (or `make bench B=faults`)

Starts its own nats-server (JetStream file store), redis-server (append-only file, fsync on
every write) and livekit-server on free 127.0.0.1 ports, then every service as `make run` does,
`python -m <package>`, each in a process group of its own with its `/readyz` on a free port:
the edge, moderation, chat-history, the stage producer and the host agent (local voice, no
avatar). `VIEWERS` rtc viewers (subscribe-only, spread over `WORKERS` processes) behave as the
viewer page does: a token from the edge, then the room; when the connection is lost for good a
fresh token and the room again (backoff 0.5 s doubling to 2 s); after every join and every resume
the chat history, merged by message id: the newest 50 on the first join, else, as the page
catches up, every message stored after the one it held `CATCH_UP_OVERLAP` messages before the
newest when the connection dropped (`GET /api/chat/history?after=<id>&limit=200`, page by page
while `more`; a `gap` is counted).

Chat: `RATE` messages a second for `DURATION_S`, open loop, each line unique, from `POSTERS`
visitors in turn (moderation's flood check allows one visitor 5 lines in 10 s). Each send
carries a fresh `clientId`; a send whose POST failed (no answer, a timeout, a 5xx or 429) is sent
again with the same `clientId`, as the page does, until it is answered 202 ("accepted").

Faults, one every `(DURATION_S - WARMUP_S - TAIL_S) / len(FAULTS)` seconds, in this order:
SIGKILL of the process group of token (the edge), moderation, chat-history, stage-producer,
host-agent, each started again at once with the same settings; then nats-server, redis-server
and livekit-server, each SIGKILLed and started again on the same ports and data. Per fault:

- `ready_s`: kill to the restarted process answering `/readyz` 200 (for a server: ready again,
  the way the test fixtures probe it);
- `chat_s`: kill to the first moment a message whose first POST came after the kill had reached
  every viewer (live or through the history the page loads): chat works end to end again;
- `rejoined_s` (livekit): kill to every viewer joined again and holding a message sent live
  after the kill;
- `host_spoken_s`: kill to the first `host.spoken` (the end of the host's next utterance, as
  JetStream stored it) after the kill, when it came before the next fault;
- `recovery_s`: what the goal is about: services and NATS/Redis `max(ready_s, chat_s)` (goal 5 s
  and 10 s), livekit `rejoined_s` (10 s), host-agent `host_spoken_s` (15 s); null when it did
  not recover before the next fault (or the end of the run), with `met: false`.

In total: sends, accepted (202), rejected by moderation (those are owed to nobody), and per
viewer what it was owed (every accepted, not rejected message) against what it showed: `lost`
(message, viewer) pairs never shown, `shown_twice` sends shown under two ids (a resend that
became a second message), `live_repeats` packets of an id the viewer already had (the page drops
them), `history_gaps` catch-ups whose point history no longer had (the page says some older
messages are not shown). Lost messages are checked against the `chat.approved` stream (lost
before or after moderation) and attributed to the last fault before their approval; examples
say how long after which fault each was first posted, accepted and approved.

`BENCH_SMOKE=1`: 5 msg/s for 24 s, 2 viewers in 1 process, the edge, moderation and chat-history
only, faults moderation and nats. `BENCH_FAULTS_RATE`, `BENCH_FAULTS_SECONDS`,
`BENCH_FAULTS_VIEWERS` override the sizes; `BENCH_FAULTS_ONLY=livekit,redis` runs only those
faults (in that order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import multiprocessing
import os
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nats

from bench import smoke_or, where_and_when
from bench.chat_path import WORDS, paced, poster_tokens
from livestage import subjects
from livestage.schemas import ChatMessage, ModerationVerdict
from tests.support.chat import backend_env
from tests.support.infra import LiveKitServer, NatsServer, RedisServer, ServerProcess
from tests.support.services import ServiceOutput, free_port, start_service

RATE = int(os.environ.get("BENCH_FAULTS_RATE", smoke_or("50", "5")))
DURATION_S = float(os.environ.get("BENCH_FAULTS_SECONDS", smoke_or("180", "24")))
VIEWERS = int(os.environ.get("BENCH_FAULTS_VIEWERS", smoke_or("20", "2")))
WORKERS = smoke_or(4, 1)  # viewers' processes
POSTERS = smoke_or(500, 40)
WARMUP_S = smoke_or(10.0, 4.0)  # chat before the first fault
TAIL_S = smoke_or(12.0, 6.0)  # chat after the last fault's slot began, at least
DRAIN_S = smoke_or(40.0, 20.0)  # after the last send: how long stragglers may take
# ... and past that, while they still arrive: a message whose handling failed during an outage
# waits out its retry back-off (up to NATS_RETRY_MAX_BACKOFF_S, 60 s) before it is delivered, late
# but not lost. The collection ends when every viewer has everything, when nothing new arrived for
# QUIET_S (longer than one back-off step), or at SETTLE_MAX_S after the last send.
QUIET_S = smoke_or(90.0, 10.0)
SETTLE_MAX_S = smoke_or(300.0, 20.0)
HISTORY_LIMIT = 50  # what the viewer page asks for on its first join (the edge's default)
# as web/src/chat.ts catches up: CATCH_UP_OVERLAP, CATCH_UP_PAGE, CATCH_UP_MAX_PAGES
CATCH_UP_OVERLAP = 100
CATCH_UP_PAGE = 200
CATCH_UP_MAX_PAGES = 20
SERVICE_FAULTS = ("token", "moderation", "chat-history", "stage-producer", "host-agent")
SERVER_FAULTS = ("nats", "redis", "livekit")
FAULTS: tuple[str, ...] = tuple(
    name
    for name in os.environ.get("BENCH_FAULTS_ONLY", "").split(",")
    if name in (*SERVICE_FAULTS, *SERVER_FAULTS)
) or smoke_or((*SERVICE_FAULTS, *SERVER_FAULTS), ("moderation", "nats"))
SERVICES: tuple[str, ...] = smoke_or(SERVICE_FAULTS, ("token", "moderation", "chat-history"))
GOAL_S = {"nats": 10.0, "redis": 10.0, "livekit": 10.0, "host-agent": 15.0}
SERVICE_GOAL_S = 5.0
FIGURES = (
    "faults.*.ready_s",
    "totals.sends",
    "totals.accepted",
    "totals.owed_pairs",
    "totals.lost_pairs",
    "totals.shown_twice",
    "totals.live_repeats",
    "totals.never_accepted",
)
PACKAGES = {
    "token": "token_service",
    "moderation": "moderation",
    "chat-history": "chat_history",
    "stage-producer": "stage_producer",
    "host-agent": "host_agent",
}


# --- the services, each a process group that can crash -----------------------------------------


@dataclass
class Service:
    """One Livestage service: `python -m <package>` in a process group of its own."""

    name: str
    env: dict[str, str]
    ready_port: int
    process: subprocess.Popen[str] | None = None
    output: ServiceOutput | None = None
    previous_output: str = ""

    def start(self) -> None:
        self.process = start_service(PACKAGES[self.name], self.env, new_session=True)
        self.output = ServiceOutput(self.process)

    def kill(self) -> None:
        """SIGKILL the whole group (worker, job processes, Chromium), as a crash would."""
        assert self.process is not None and self.output is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(15)
        self.previous_output += self.output.finish(5)

    def stop(self) -> str:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        return self.previous_output + (self.output.finish(5) if self.output else "")


def service_env(
    name: str, common: dict[str, str], ready_port: int, asset_dir: Path
) -> dict[str, str]:
    if name == "token":
        return {
            **common,
            "TOKEN_PORT": str(ready_port),
            # Every poster and viewer is on 127.0.0.1, one network: only the per-network and
            # per-address limits are raised; per visitor they stay as they are.
            "TOKEN_RATE_TOKEN_PER_IP": "100000/minute",
            "TOKEN_RATE_CHAT_PER_NETWORK": "100000/10seconds",
            "TOKEN_RATE_HISTORY_PER_NETWORK": "100000/minute",
        }
    env = {**common, "LIVESTAGE_HEALTH_PORT": str(ready_port)}
    if name == "stage-producer":
        env |= {"STAGE_HTTP_PORT": str(free_port()), "STAGE_ASSET_DIR": str(asset_dir)}
    if name == "host-agent":
        env |= {
            "HOST_VOICE": "local",
            "HOST_AVATAR": "none",
            "HOST_HEALTH_PORT": "0",
            "HOST_IDLE_PROCESSES": "1",
            "HOST_GREET": "true",
        }
    return env


async def until_ready(port: int, within_s: float) -> float | None:
    """Poll http://127.0.0.1:port/readyz every 50 ms; the monotonic time it first said 200."""
    deadline = time.monotonic() + within_s
    timeout = aiohttp.ClientTimeout(total=1)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with http.get(f"http://127.0.0.1:{port}/readyz") as response:
                    if response.status == 200:
                        return time.monotonic()
            await asyncio.sleep(0.05)
    return None


# --- viewers that behave like the page ----------------------------------------------------------


class PageViewer:
    """One viewer as the viewer page behaves (web/src/livekit.ts, web/src/pages/viewer.ts)."""

    def __init__(self, http: aiohttp.ClientSession, number: int) -> None:
        self.http = http
        self.number = number
        self.seen: dict[
            str, list[Any]
        ] = {}  # message id -> [first arrival, "live"|"history", body]
        self.live_repeats = 0
        self.arrived: list[str] = []  # every message id (any kind), first arrival order
        self.arrived_ids: set[str] = set()
        self.held: list[str | None] | None = None  # the resume point while one is held
        self.gaps = 0  # catch-ups told that their point was no longer in history
        self.joins: list[float] = []
        self.drops: list[float] = []  # connection lost for good (a rejoin follows)
        self.resumes: list[float] = []  # the SDK resumed by itself
        self.joined = asyncio.Event()
        self.stopped = False
        self.room: Any = None
        self.tasks: set[asyncio.Task[None]] = set()

    def record(self, message: dict[str, Any], via: str) -> None:
        if message["id"] not in self.arrived_ids:
            self.arrived_ids.add(message["id"])
            self.arrived.append(message["id"])
        if message.get("kind") != "viewer":
            return
        if message["id"] in self.seen:
            if via == "live":
                self.live_repeats += 1
            return
        self.seen[message["id"]] = [time.monotonic(), via, message.get("body", "")]

    async def mint(self) -> dict[str, Any]:
        """A token from the edge, as the page mints one for every join (retried with backoff)."""
        delay = 0.5
        while True:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                async with self.http.post(
                    "/api/livekit-token",
                    json={"displayName": f"Viewer {self.number}", "avatar": "fox"},
                ) as response:
                    if response.status == 200:
                        reply: dict[str, Any] = await response.json()
                        return reply
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def lost(self) -> None:
        """The connection dropped (or is resuming): hold the point to catch up from (the page's
        `ResumePoint.lost`), unless one is held."""
        if self.held is None:
            back = len(self.arrived) - 1 - CATCH_UP_OVERLAP
            self.held = [self.arrived[max(0, back)] if self.arrived else None]

    async def history_page(self, token: str, params: dict[str, str]) -> dict[str, Any] | None:
        async with self.http.get(
            "/api/chat/history", params=params, headers={"Authorization": f"Bearer {token}"}
        ) as response:
            if response.status != 200:
                return None
            page: dict[str, Any] = await response.json()
            return page

    async def load_history(self, token: str) -> None:
        """As the page after every join and resume: the newest on a first join, else every
        message stored after the held point, page by page (`catchUp`); 5 attempts."""
        self.lost()
        assert self.held is not None
        cursor = self.held[0]
        for attempt in range(5):
            with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError):
                after = cursor
                for pages in range(1, CATCH_UP_MAX_PAGES + 1):
                    params = {"limit": str(HISTORY_LIMIT)}
                    if after is not None:
                        params = {"after": after, "limit": str(CATCH_UP_PAGE)}
                    page = await self.history_page(token, params)
                    if page is None:
                        break
                    for message in page["messages"]:
                        self.record(message, "history")
                    self.gaps += bool(page.get("gap"))
                    if not page.get("more") or not page["messages"]:
                        self.held = None  # caught up
                        return
                    if pages == CATCH_UP_MAX_PAGES:
                        self.gaps += 1
                        self.held = None
                        return
                    after = page["messages"][-1]["id"]
            await asyncio.sleep(0.5 * (attempt + 1))

    async def run(self) -> None:
        """Join, and join again (a fresh token each time) whenever the connection is lost."""
        delay = 0.5
        while not self.stopped:
            if await self.stay_joined(await self.mint()):
                delay = 0.5
            else:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def stay_joined(self, info: dict[str, Any]) -> bool:
        """Join with `info`, load the history, and return once the connection is lost for good;
        False if joining failed."""
        from livekit import rtc

        room = rtc.Room()
        lost = asyncio.Event()

        def on_data(packet: rtc.DataPacket) -> None:
            if packet.topic == "anam-live-chat":
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    self.record(json.loads(packet.data)["message"], "live")

        def on_resumed() -> None:
            # the page treats a resume as a rejoin: packets sent meanwhile may be lost
            self.resumes.append(time.monotonic())
            task = asyncio.create_task(self.load_history(info["token"]))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

        def on_lost(*_: Any) -> None:
            self.lost()
            lost.set()

        room.on("data_received", on_data)
        room.on("reconnecting", self.lost)
        room.on("disconnected", on_lost)
        room.on("reconnected", on_resumed)
        try:
            await asyncio.wait_for(room.connect(info["url"], info["token"]), 15)
        except Exception:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(room.disconnect(), 5)
            return False
        self.room = room
        self.joins.append(time.monotonic())
        self.joined.set()
        await self.load_history(info["token"])
        await lost.wait()
        if not self.stopped:
            self.drops.append(time.monotonic())
        return True

    async def leave(self) -> None:
        self.stopped = True
        if self.room is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.room.disconnect(), 5)

    def report(self) -> dict[str, Any]:
        return {
            "seen": self.seen,
            "live_repeats": self.live_repeats,
            "joins": self.joins,
            "drops": self.drops,
            "resumes": self.resumes,
            "history_gaps": self.gaps,
        }


def viewer_worker(edge_url: str, numbers: list[int], conn: Any) -> None:
    """A child process holding some viewers (spawned). On `conn`: it sends "ready" once each
    joined; "collect" answers {viewer number: PageViewer.report()}; "stop" leaves."""

    async def main() -> None:
        # the rtc SDK logs every resume attempt; what a viewer went through is in its report
        logging.getLogger("livekit").setLevel(logging.CRITICAL)
        async with aiohttp.ClientSession(
            base_url=edge_url,
            timeout=aiohttp.ClientTimeout(total=10),
            cookie_jar=aiohttp.DummyCookieJar(),
        ) as http:
            viewers = [PageViewer(http, n) for n in numbers]
            running = [asyncio.create_task(v.run()) for v in viewers]
            await asyncio.wait_for(asyncio.gather(*(v.joined.wait() for v in viewers)), 120)
            loop = asyncio.get_running_loop()
            conn.send("ready")
            while await loop.run_in_executor(None, conn.recv) == "collect":
                conn.send({v.number: v.report() for v in viewers})
            for viewer in viewers:
                await viewer.leave()
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            conn.send("stopped")

    asyncio.run(main())


class Viewers:
    """`VIEWERS` page-like viewers over `WORKERS` processes."""

    def __init__(self, edge_url: str) -> None:
        self.edge_url = edge_url
        self.conns: list[Any] = []
        self.processes: list[Any] = []

    async def start(self) -> None:
        context = multiprocessing.get_context("spawn")
        for worker in range(WORKERS):
            parent, child = context.Pipe()
            numbers = list(range(VIEWERS))[worker::WORKERS]
            process = context.Process(
                target=viewer_worker, args=(self.edge_url, numbers, child), daemon=True
            )
            process.start()
            self.conns.append(parent)
            self.processes.append(process)
        for conn in self.conns:
            assert await asyncio.wait_for(asyncio.to_thread(conn.recv), 150) == "ready"

    async def collect(self) -> dict[int, dict[str, Any]]:
        reports: dict[int, dict[str, Any]] = {}
        for conn in self.conns:
            conn.send("collect")
            reports.update(await asyncio.to_thread(conn.recv))
        return reports

    async def close(self) -> None:
        for conn, process in zip(self.conns, self.processes, strict=True):
            with contextlib.suppress(OSError, EOFError):
                conn.send("stop")
                if await asyncio.to_thread(conn.poll, 20):
                    conn.recv()
            await asyncio.to_thread(process.join, 5)
            if process.is_alive():
                process.kill()


# --- chat that is resent until accepted ---------------------------------------------------------


@dataclass
class Send:
    number: int
    body: str
    client_id: str
    first_at: float
    accepted_at: float | None = None
    id: str | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)


class Sender:
    """Posts chat at `RATE` a second; resends a failed POST with the same clientId.

    As on the page, a person has one line in flight at a time: a poster's next line waits until
    the previous one was accepted (or given up), so an outage does not turn into a storm of
    resends that no real audience could produce."""

    def __init__(self, http: aiohttp.ClientSession, tokens: list[str], give_up_at: float) -> None:
        self.http = http
        self.tokens = tokens
        self.give_up_at = give_up_at
        self.sends: list[Send] = []
        self.run_tag = uuid.uuid4().hex[:6]
        self.typing = [asyncio.Lock() for _ in tokens]

    async def send(self, n: int, scheduled: float) -> None:
        poster = n % len(self.tokens)
        async with self.typing[poster]:
            body = f"{WORDS[n % len(WORDS)]} {self.run_tag}-{n}, about as long as chat is"
            record = Send(n, body, uuid.uuid4().hex, time.monotonic())
            self.sends.append(record)
            await self.post_until_accepted(record, self.tokens[poster])

    async def post_until_accepted(self, record: Send, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        delay = 0.5
        while time.monotonic() < self.give_up_at:
            record.attempts += 1
            try:
                async with self.http.post(
                    "/api/chat",
                    json={"body": record.body, "clientId": record.client_id},
                    headers=headers,
                ) as response:
                    if response.status == 202:
                        record.id = (await response.json())["id"]
                        record.accepted_at = time.monotonic()
                        return
                    record.errors.append(f"{response.status} {(await response.text())[:160]}")
                    if response.status in (400, 401, 403, 413, 422):
                        return  # the page would not resend these either
            except (aiohttp.ClientError, TimeoutError) as error:
                record.errors.append(repr(error)[:160])
            await asyncio.sleep(delay)
            delay = min(delay * 2, 4.0)


# --- reading back what JetStream stored ---------------------------------------------------------


async def stored(nats_url: str, subject: str) -> list[tuple[float, bytes]]:
    """Every message on `subject` in its stream: (stored at, as time.monotonic(), payload)."""
    wall_to_monotonic = time.monotonic() - time.time()
    found: list[tuple[float, bytes]] = []
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        sub = await js.subscribe(subject, ordered_consumer=True)
        while True:
            try:
                msg = await sub.next_msg(timeout=2)
            except TimeoutError:
                break
            found.append((msg.metadata.timestamp.timestamp() + wall_to_monotonic, msg.data))
            if msg.metadata.num_pending == 0:
                break
    finally:
        await nc.close()
    return found


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Fault:
    name: str
    killed_at: float
    ready_at: float | None
    until: float = 0.0  # the next fault's kill (or the end of the run)


async def inject(
    name: str, services: dict[str, Service], servers: dict[str, ServerProcess]
) -> Fault:
    """SIGKILL `name`, start it again at once, and wait (bounded) until it is ready."""
    if name in services:
        service = services[name]
        killed_at = time.monotonic()
        await asyncio.to_thread(service.kill)
        service.start()
        return Fault(name, killed_at, await until_ready(service.ready_port, 60))
    server = servers[name]
    killed_at = time.monotonic()
    await asyncio.to_thread(server.kill)
    await asyncio.to_thread(server.start)
    return Fault(name, killed_at, time.monotonic())


async def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        **where_and_when(),
        "rate": RATE,
        "seconds": DURATION_S,
        "viewers": VIEWERS,
        "faults_in_order": list(FAULTS),
    }
    room = "faults-" + uuid.uuid4().hex[:8]
    with (
        NatsServer() as nats_srv,
        RedisServer(persistence=True) as redis_srv,
        LiveKitServer() as lk_srv,
        tempfile.TemporaryDirectory(prefix="bench-faults-") as assets,
    ):
        common = {
            **backend_env(nats_srv, redis_srv, lk_srv),
            "LIVEKIT_ROOM": room,
            "LIVEKIT_AGENT_NAME": "bench-host-" + uuid.uuid4().hex[:6],
            "MODERATION_ROOM_RATE": "1000000",  # the bench's rate is above one room's cap
            "LIVESTAGE_LOG_LEVEL": "WARNING",
        }
        services: dict[str, Service] = {}
        for name in SERVICES:
            port = free_port()
            services[name] = Service(name, service_env(name, common, port, Path(assets)), port)
        servers: dict[str, ServerProcess] = {
            "nats": nats_srv,
            "redis": redis_srv,
            "livekit": lk_srv,
        }
        try:
            for service in services.values():
                service.start()
            for service in services.values():
                if await until_ready(service.ready_port, 120) is None:
                    raise RuntimeError(
                        f"{service.name} not ready within 120 s:\n{service.stop()[-3000:]}"
                    )
            edge_url = f"http://127.0.0.1:{services['token'].ready_port}"
            results |= await measure(edge_url, nats_srv.url, room, services, servers)
        finally:
            for service in services.values():
                output = service.stop()
                if "Traceback" in output:
                    print(f"----- {service.name} -----\n{output[-3000:]}", flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


async def measure(
    edge_url: str,
    nats_url: str,
    room: str,
    services: dict[str, Service],
    servers: dict[str, ServerProcess],
) -> dict[str, Any]:
    async with aiohttp.ClientSession(
        base_url=edge_url,
        timeout=aiohttp.ClientTimeout(total=10),
        connector=aiohttp.TCPConnector(limit=64),
        cookie_jar=aiohttp.DummyCookieJar(),
    ) as http:
        tokens = await poster_tokens(http, POSTERS)
        viewers = Viewers(edge_url)
        try:
            await viewers.start()
            began = time.monotonic()
            sender = Sender(http, tokens, began + DURATION_S + DRAIN_S)
            slot = (DURATION_S - WARMUP_S - TAIL_S) / len(FAULTS)
            faults: list[Fault] = []

            async def break_things() -> None:
                for n, name in enumerate(FAULTS):
                    await asyncio.sleep(max(0.0, began + WARMUP_S + n * slot - time.monotonic()))
                    fault = await inject(name, services, servers)
                    faults.append(fault)
                    print(f"{name}: killed, ready again after {since(fault, fault.ready_at)} s")

            await asyncio.gather(paced(RATE, DURATION_S, sender.send), break_things())
            ended = time.monotonic()
            for fault, later in zip(faults, faults[1:], strict=False):
                fault.until = later.killed_at
            faults[-1].until = ended + DRAIN_S
            reports = await settle(viewers, sender, ended)
            settled_s = round(time.monotonic() - ended, 1)
        finally:
            await viewers.close()
    approved = {
        ChatMessage.from_json(d).id: at
        for at, d in await stored(nats_url, subjects.chat_approved(room))
    }

    rejected = {
        ModerationVerdict.from_json(d).message_id
        for _, d in await stored(nats_url, subjects.chat_rejected(room))
    }
    spoken = [at for at, _ in await stored(nats_url, subjects.host_spoken(room))]
    return {
        "faults": {f.name: fault_figures(f, sender.sends, reports, spoken) for f in faults},
        "totals": totals(sender.sends, reports, approved, rejected, faults),
        "host_utterances": len(spoken),
        "settled_after_last_send_s": settled_s,
    }


async def settle(viewers: Viewers, sender: Sender, ended: float) -> dict[int, dict[str, Any]]:
    """Collect until every viewer showed every accepted message; or, after DRAIN_S, until
    nothing new arrived for QUIET_S; at most SETTLE_MAX_S after the last send (`ended`)."""
    shown, last_progress = -1, time.monotonic()
    while True:
        reports = await viewers.collect()
        owed = {s.id for s in sender.sends if s.id}
        if all(owed <= set(r["seen"]) for r in reports.values()):
            return reports
        now = time.monotonic()
        count = sum(len(r["seen"]) for r in reports.values())
        if count != shown:
            shown, last_progress = count, now
        quiet = now > ended + DRAIN_S and now - last_progress > QUIET_S
        if quiet or now > ended + SETTLE_MAX_S:
            return reports
        await asyncio.sleep(1.0)


def since(fault: Fault, at: float | None) -> float | None:
    return None if at is None else round(at - fault.killed_at, 2)


def fault_figures(
    fault: Fault, sends: list[Send], reports: dict[int, dict[str, Any]], spoken: list[float]
) -> dict[str, Any]:
    # The first moment chat works end to end again: a message first POSTed after the kill has
    # reached every viewer (through any route the page uses).
    everywhere: list[float] = []
    for send in sends:
        if send.id is None or not fault.killed_at <= send.first_at < fault.until:
            continue
        arrivals = [r["seen"].get(send.id) for r in reports.values()]
        if all(arrivals):
            everywhere.append(max(a[0] for a in arrivals if a))
    chat_at = min(everywhere, default=None)
    # Every viewer joined again and holding a message that came live after the kill.
    sent_after = {s.id for s in sends if s.id and s.first_at >= fault.killed_at}
    live_after = [
        min(
            (a[0] for i, a in r["seen"].items() if a[1] == "live" and i in sent_after),
            default=None,
        )
        for r in reports.values()
    ]
    rejoined_at = None if None in live_after else max(a for a in live_after if a is not None)
    spoken_at = min((t for t in spoken if fault.killed_at < t < fault.until), default=None)
    figures: dict[str, Any] = {
        "ready_s": since(fault, fault.ready_at),
        "chat_s": since(fault, chat_at),
        "host_spoken_s": since(fault, spoken_at),
        "window_s": round(fault.until - fault.killed_at, 1),
        "viewer_drops": sum(
            1 for r in reports.values() for t in r["drops"] if fault.killed_at <= t < fault.until
        ),
        "viewer_resumes": sum(
            1 for r in reports.values() for t in r["resumes"] if fault.killed_at <= t < fault.until
        ),
    }
    if fault.name == "livekit":
        figures["rejoined_s"] = recovery = since(fault, rejoined_at)
    elif fault.name == "host-agent":
        recovery = figures["host_spoken_s"]
    elif figures["ready_s"] is None or figures["chat_s"] is None:
        recovery = None
    else:
        recovery = max(figures["ready_s"], figures["chat_s"])
    goal = GOAL_S.get(fault.name, SERVICE_GOAL_S)
    figures |= {
        "recovery_s": recovery,
        "goal_s": goal,
        "met": recovery is not None and recovery <= goal,
    }
    return figures


def totals(
    sends: list[Send],
    reports: dict[int, dict[str, Any]],
    approved: dict[str, float],
    rejected: set[str],
    faults: list[Fault],
) -> dict[str, Any]:
    accepted = [s for s in sends if s.id]
    owed = [s for s in accepted if s.id not in rejected]
    lost: list[dict[str, Any]] = []
    shown_twice = 0
    for number, report in sorted(reports.items()):
        seen = report["seen"]
        ids_by_body: dict[str, set[str]] = {}
        for message_id, (_, _, body) in seen.items():
            ids_by_body.setdefault(body, set()).add(message_id)
        shown_twice += sum(1 for ids in ids_by_body.values() if len(ids) > 1)
        for send in owed:
            if send.id not in seen:
                lost.append({"viewer": number, "send": send})
    only_history = sum(
        1
        for r in reports.values()
        for s in owed
        if (r["seen"].get(s.id) or [0, "live"])[1] == "history"
    )

    def during(at: float | None) -> tuple[str, float | None]:
        """The last fault before `at`, and how long after its kill `at` was."""
        if at is None:
            return "never", None
        before = [f for f in faults if f.killed_at <= at]
        if not before:
            return "before the first fault", None
        return before[-1].name, round(at - before[-1].killed_at, 2)

    by_fault: dict[str, int] = {}
    for item in lost:
        key = during(approved.get(item["send"].id))[0]
        by_fault[key] = by_fault.get(key, 0) + 1
    lost_ids = {item["send"].id for item in lost}
    return {
        "sends": len(sends),
        "accepted": len(accepted),
        "never_accepted": len(sends) - len(accepted),
        "never_accepted_examples": sorted({e for s in sends if not s.id for e in s.errors[-1:]})[
            :3
        ],
        "resent": sum(1 for s in sends if s.attempts > 1),
        "rejected_by_moderation": sum(1 for s in accepted if s.id in rejected),
        "owed_pairs": len(owed) * len(reports),
        "lost_pairs": len(lost),
        "lost_messages": len(lost_ids),
        "lost_messages_never_approved": len(lost_ids - set(approved) - rejected),
        "viewers_with_losses": len({item["viewer"] for item in lost}),
        "lost_pairs_by_fault_before_approval": by_fault,
        "lost_examples": [
            {
                "viewer": item["viewer"],
                "id": item["send"].id,
                "first_post_after": during(item["send"].first_at),
                "accepted_after": during(item["send"].accepted_at),
                "approved_after": during(approved.get(item["send"].id)),
            }
            for item in lost[:: max(1, len(lost) // 5)][:5]
        ],
        "shown_via_history_only_pairs": only_history,
        "shown_twice": shown_twice,
        "live_repeats": sum(r["live_repeats"] for r in reports.values()),
        "history_gaps": sum(r["history_gaps"] for r in reports.values()),
    }
