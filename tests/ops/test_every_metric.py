"""Every metric docs/metrics.md names is emitted by a real run of the pipeline: the six services
as processes on the session's NATS, Redis and LiveKit, exporting over OTLP to a local collector
double, driven as a show is. The host agent runs its production backends (OpenAI Realtime voice,
Anam avatar) and chat-bridge its platforms (Twitch, YouTube) against the doubles in
`tests/doubles`, reached through their base-URL settings. The show:

- a viewer joins the edge's room: the edge dispatches a host job, which goes live on the
  realtime voice and the Anam avatar and greets (tokens, audio seconds, avatar minutes, spend);
- chat is approved (the host answers it) and rejected, a burst is refused (429), and so is a
  name that impersonates staff (422) and a client asking for visuals too often (429);
- an operator removes the answered message, has the host say something long and skips it, and
  asks the stage producer for a backdrop; a payload that never validates reaches moderation
  (a dead letter);
- chat-bridge follows the Twitch and YouTube doubles with replies on: YouTube answers one poll
  with a 500 (a problem, counted), a Twitch viewer's line is published, answered by the host
  and replied to in Twitch chat; then the viewer leaves: the job ends.

Beside it, a second room whose spend today is already over the daily cap (an earlier day's
worth, written where the host keeps it): its job falls back from both paid backends to the local
ones (`backend_fallbacks{reason=spend_cap}`), and the local voice is misconfigured
(`HOST_TTS=piper` without `HOST_PIPER_MODEL`), so the job raises while going live: a real job
crash, counted, while the realtime room never needs the local voice.

The metrics that never arrived are listed by area.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from livekit import api, rtc
from redis.asyncio import Redis

from host_agent.settings import CostSettings
from host_agent.spend import spend_key
from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.identity import viewer_identity
from livestage.memory import MemoryStore, card_key
from livestage.schemas import ChatMessage, HostJobEvent, SpokenTurn, new_id
from livestage.settings import NatsSettings
from livestage.shows import spend_day
from tests.doubles.anam import AnamDouble, AvatarConfig
from tests.doubles.base import Fault
from tests.doubles.egress import EgressConfig, EgressDouble
from tests.doubles.openai_realtime import OpenAIRealtimeDouble
from tests.doubles.twitch import Chatter
from tests.support import otlp
from tests.support.livekit_helpers import join, leave, mint_token, server_api
from tests.support.paid_doubles import verbatim_say
from tests.support.platforms import bridge_env, platform_doubles
from tests.support.services import (
    ServiceOutput,
    edge_env,
    end_service,
    free_port,
    start_service,
)

ROOT = Path(__file__).resolve().parents[2]
WORKERS = {
    "moderation": "moderation",
    "chat-history": "chat_history",
    "stage-producer": "stage_producer",
    "host-agent": "host_agent",
}
OPERATOR_SECRET = "ops-test-operator-secret-0123456789"
AGENT_NAME = "metrics-test-host"
OPENAI_KEY, ANAM_KEY = "test-openai-key", "test-anam-key"
REPLY = (
    "Thanks for asking. We are looking at the night sky, with the moon rising over the hills, "
    "and in a moment I will tell you all about the stars that you can see tonight."
)
NOT_PROVOKED: dict[str, str] = {}
"""Documented metrics this run cannot provoke, each with why (keep it empty if at all possible)."""


async def remember_a_regular(redis: Redis, room: str, tag: str) -> None:
    """A card for `tag`: Marta, from Lisbon, at a show a week ago."""
    store = MemoryStore(redis, retention_days=180)
    week_ago = int((time.time() - 7 * 86_400) * 1000)
    told = ChatMessage(
        id=new_id(),
        room=room,
        author_identity=viewer_identity(tag, "0a1b2c3d"),
        author_name="Marta",
        avatar="fox",
        body="I'm from Lisbon",
        kind="viewer",
        created_at=week_ago,
    )
    await store.record_message(told)
    await store.record_show(tag, f"{room}:{week_ago}", at=week_ago)
    await store.add_facts(tag, ["is from Lisbon"], message_id=told.id, at=week_ago)


def documented_metrics() -> dict[str, str]:
    """Metric name -> area, read from docs/metrics.md (what the docs promise)."""
    area = ""
    found: dict[str, str] = {}
    for line in (ROOT / "docs" / "metrics.md").read_text().splitlines():
        if line.startswith("## "):
            area = line[3:].strip()
        match = re.match(r"^\| `(livestage\.[a-z_.]+)` \|", line)
        if match:
            found[match.group(1)] = area
    return found


realtime_reply = verbatim_say(REPLY)


@pytest.fixture
def collector() -> Iterator[otlp.OtlpCollector]:
    yield from otlp.collector()


def request(
    method: str, url: str, body: dict[str, Any] | None = None, token: str = ""
) -> tuple[int, dict[str, Any]]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Service:
    """A service process whose output is read all along (a full pipe would stall it)."""

    def __init__(self, name: str, package: str, env: dict[str, str], ready_url: str) -> None:
        self.name, self.ready_url = name, ready_url
        self.process = start_service(package, env)
        self._output = ServiceOutput(self.process)
        self.lines = self._output.lines

    def output(self, last: int = 60) -> str:
        return "".join(self.lines[-last:])

    async def ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited early:\n{self.output()}")
            try:
                status = await asyncio.to_thread(_status, self.ready_url)
            except OSError:
                status = 0
            if status == 200:
                return
            await asyncio.sleep(0.2)
        raise TimeoutError(f"{self.name} not ready within {within} s:\n{self.output()}")

    def stop(self, timeout: float = 15) -> int:
        end_service(self.process, timeout)
        self._output.finish(5)
        return self.process.returncode


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


class Events:
    """`host.job` and `host.spoken` events of the rooms, as they arrive."""

    def __init__(self) -> None:
        self.jobs: list[HostJobEvent] = []
        self.spoken: list[SpokenTurn] = []
        self._changed = asyncio.Event()

    async def on_job(self, observed: Observed[HostJobEvent]) -> None:
        self.jobs.append(observed.model)
        self._changed.set()

    async def on_spoken(self, observed: Observed[SpokenTurn]) -> None:
        self.spoken.append(observed.model)
        self._changed.set()

    def job(self, room: str, event: str) -> HostJobEvent | None:
        return next((e for e in self.jobs if e.room == room and e.event == event), None)

    async def wait(self, condition: Callable[[], Any], within: float, what: str) -> Any:
        try:
            async with asyncio.timeout(within):
                while not (found := condition()):
                    self._changed.clear()
                    await self._changed.wait()
                return found
        except TimeoutError:
            raise TimeoutError(
                f"{what}: not within {within} s; "
                f"jobs {[(e.room, e.event, e.reason) for e in self.jobs]}"
                f", spoken {[(t.kind, t.text[:30], t.interrupted) for t in self.spoken]}"
            ) from None


async def test_every_documented_metric_is_emitted_by_a_run_of_the_pipeline(  # type: ignore[no-untyped-def]
    collector, nats_server, redis_server, livekit_server
) -> None:
    documented = documented_metrics()
    assert len(documented) >= 20
    assert set(NOT_PROVOKED) <= set(documented)
    room = f"metrics{uuid.uuid4().hex[:8]}"
    capped_room = f"capped{uuid.uuid4().hex[:8]}"
    port = free_port()
    stage_port = free_port()
    env = (
        edge_env(port, nats_server, redis_server, livekit_server)
        | otlp.fast_export_env(collector.url)
        | {
            "LIVEKIT_ROOM": room,
            "LIVEKIT_AGENT_NAME": AGENT_NAME,
            "LIVESTAGE_OPERATOR_SECRET": OPERATOR_SECRET,
            "TOKEN_RATE_CHAT": "3/10seconds",
            "TOKEN_RATE_MEDIA_PER_NETWORK": "2/minute",
            "TOKEN_STAGE_MEDIA_URL": f"http://127.0.0.1:{stage_port}",
            "STAGE_HTTP_PORT": str(stage_port),
        }
    )
    events = Events()
    regular_tag = uuid.uuid4().hex[:16]
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "every-metric-test")
    redis = Redis.from_url(redis_server.url)
    services: dict[str, Service] = {}
    viewers: list[rtc.Room] = []
    try:
        async with (
            OpenAIRealtimeDouble(api_key=OPENAI_KEY) as realtime,
            AnamDouble(
                api_key=ANAM_KEY, avatar_config=AvatarConfig(width=160, height=120, fps=10)
            ) as anam,
            platform_doubles() as platforms,
            EgressDouble(
                api_key=livekit_server.api_key,
                api_secret=livekit_server.api_secret,
                webhook_url=f"http://127.0.0.1:{port}/api/livekit/webhook",
                config=EgressConfig(activate_after_s=0.2, end_after_s=0.2, fail_after_s=0.2),
            ) as egress,
        ):
            env["TOKEN_EGRESS_API_URL"] = egress.url
            realtime.config.reply = realtime_reply
            try:
                host_env = {
                    "HOST_EXECUTOR": "thread",
                    "HOST_HEALTH_PORT": str(free_port()),  # the worker's own HTTP server (not 8081)
                    "HOST_VOICE": "openai-realtime",
                    "HOST_AVATAR": "anam",
                    "HOST_TTS": "piper",  # no HOST_PIPER_MODEL: the local voice cannot start
                    "HOST_EMPTY_GRACE_S": "1",
                    "HOST_VIEWER_WAIT_S": "30",
                    "HOST_CONNECT_TIMEOUT_S": "2",
                    "HOST_REMOTE_AVATAR_START_TIMEOUT_S": "5",
                    "HOST_REMOTE_AVATAR_JOIN_TIMEOUT_S": "10",
                    "HOST_COST_CHECK_INTERVAL_S": "1",
                    "HOST_OUTPUT_OPENAI": "false",  # the realtime double has no moderation route
                    "OPENAI_API_KEY": OPENAI_KEY,
                    "OPENAI_BASE_URL": realtime.base_url,
                    "ANAM_API_KEY": ANAM_KEY,
                    "ANAM_API_URL": anam.url,
                    "ANAM_AVATAR_ID": "cara-avatar-id",
                }
                for name, package in WORKERS.items():
                    health_port = free_port()
                    worker_env = dict(env, LIVESTAGE_HEALTH_PORT=str(health_port))
                    worker_env.pop("TOKEN_PORT")
                    if name == "host-agent":
                        worker_env |= host_env
                    services[name] = Service(
                        name, package, worker_env, f"http://127.0.0.1:{health_port}/readyz"
                    )
                services["token"] = Service(
                    "token", "token_service", env, f"http://127.0.0.1:{port}/readyz"
                )
                bridge = bridge_env(
                    room,
                    nats_server,
                    redis_server,
                    platforms,
                    BRIDGE_REPLIES="true",
                    **otlp.fast_export_env(collector.url),
                )
                services["chat-bridge"] = Service(
                    "chat-bridge",
                    "chat_bridge",
                    bridge,
                    f"http://127.0.0.1:{bridge['LIVESTAGE_HEALTH_PORT']}/readyz",
                )
                await asyncio.gather(*(service.ready(60) for service in services.values()))
                twitch = platforms.twitch
                await twitch.wait_until(twitch.subscribed_session, 30)
                platforms.youtube.fail(Fault.HTTP_500, times=1)  # livestage.bridge.problems

                for subject, model, handler in (
                    (subjects.host_job(room), HostJobEvent, events.on_job),
                    (subjects.host_job(capped_room), HostJobEvent, events.on_job),
                    (subjects.host_spoken(room), SpokenTurn, events.on_spoken),
                ):
                    await bus.watch(subject, model, handler)

                # the capped room: over today's cap already, a viewer, a host dispatched to it
                cap = CostSettings().daily_cap_usd
                await redis.set(spend_key(capped_room, spend_day(time.time())), cap + 1.0)
                async with server_api(livekit_server) as lk:
                    await lk.agent_dispatch.create_dispatch(
                        api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=capped_room)
                    )
                capped_viewer = mint_token(
                    livekit_server,
                    viewer_identity(uuid.uuid4().hex[:12], uuid.uuid4().hex[:8]),
                    capped_room,
                    can_publish=False,
                )
                viewers.append(await join(livekit_server, capped_viewer))

                # the show
                base = f"http://127.0.0.1:{port}"
                operator = f"{base}/api/operator"
                _, viewer = request(
                    "POST", f"{base}/api/livekit-token", {"displayName": "Ann", "avatar": "fox"}
                )
                browser = await join(livekit_server, viewer["token"])  # the edge dispatched a host
                viewers.append(browser)
                await events.wait(lambda: events.job(room, "live"), 30, "the host to go live")
                live = events.job(room, "live")
                assert live is not None and (live.voice, live.avatar) == ("openai-realtime", "anam")

                status, approved = request(
                    "POST",
                    f"{base}/api/chat",
                    {"body": "hi host, what is on screen?"},
                    viewer["token"],
                )
                assert status == 202, approved
                status, rejected = request(
                    "POST", f"{base}/api/chat", {"body": "you are a stupid idiot"}, viewer["token"]
                )
                assert status == 202, rejected
                refused = [
                    request("POST", f"{base}/api/chat", {"body": f"burst {n}"}, viewer["token"])[0]
                    for n in range(4)
                ]
                assert 429 in refused, refused
                status, body = request(
                    "POST", f"{base}/api/livekit-token", {"displayName": "Adm1n", "avatar": "fox"}
                )
                assert status == 422, body  # a name impersonating staff
                media = [  # a client asking for visuals faster than its rate (media_refused)
                    _status(f"{base}/media/{'a' * 64}.jpg?exp=1&sig=x") for _ in range(3)
                ]
                assert media[-1] == 429, media
                status, body = request(
                    "DELETE", f"{operator}/chat/messages/{approved['id']}", token=OPERATOR_SECRET
                )
                assert status == 202, body
                status, body = request(
                    "POST", f"{operator}/stage/backdrop", {"prompt": "a night sky"}, OPERATOR_SECRET
                )
                assert status == 202, body
                # going live without OBS: an egress that goes active (egresses_active), then one
                # the ingest refuses (egresses_failed)
                stream = {"rtmpUrl": "rtmp://127.0.0.1:1935/live", "streamKey": "metrics-key"}
                # (off the loop: the edge calls the egress double, which runs on this loop)
                status, started = await asyncio.to_thread(
                    request, "POST", f"{operator}/egress", stream, OPERATOR_SECRET
                )
                assert status == 202, started
                await egress.wait_for_webhook("egress_updated", started["egressId"], 15)
                status, body = await asyncio.to_thread(
                    request,
                    "DELETE",
                    f"{operator}/egress/{started['egressId']}",
                    None,
                    OPERATOR_SECRET,
                )
                assert status == 202, body
                await egress.wait_for_webhook("egress_ended", started["egressId"], 15)
                egress.fail_next_start()
                status, failed = await asyncio.to_thread(
                    request, "POST", f"{operator}/egress", stream, OPERATOR_SECRET
                )
                assert status == 202, failed
                await egress.wait_for_webhook("egress_ended", failed["egressId"], 15)
                # a payload that can never validate reaches moderation: a dead letter
                await bus.js.publish(subjects.chat_submitted(room), b'{"body": "no id"}')

                # the host is speaking its (long) reply: an operator skips it
                await asyncio.to_thread(
                    collector.wait_for,
                    lambda r: any(p.metric == "livestage.host.reaction_latency" for p in r.points),
                    30,
                    "the host to start its reply",
                )
                answers = realtime.responses
                speaking = [r for r in answers if r.status == "in_progress" and r.audio_bytes_sent]
                assert speaking, answers
                status, body = request("POST", f"{operator}/host/skip", token=OPERATOR_SECRET)
                assert status == 202, body
                await realtime.wait_until(lambda: speaking[0].status == "cancelled", 10)
                # A finished turn (livestage.host.turns): the greeting and the reply may both have
                # been cut before any of them was heard, so the operator has the host say a line;
                # its second sentence is one the host must not say (livestage.host.output_blocked).
                line = "Back to the show. What a load of shit."
                status, body = request(
                    "POST", f"{operator}/host/say", {"text": line}, OPERATOR_SECRET
                )
                assert status == 202, body
                await events.wait(
                    lambda: any(t.room == room and t.kind == "say" for t in events.spoken),
                    20,
                    "the host to say its line",
                )
                # a regular of an earlier show joins (after the reply and the line,
                # so its callback greeting takes no one's turn): memory reads, writes and a callback
                await remember_a_regular(redis, room, regular_tag)
                regular = mint_token(
                    livekit_server,
                    viewer_identity(regular_tag, "0a1b2c3d"),
                    room,
                    can_publish=False,
                )
                regular_room = await join(livekit_server, regular)
                viewers.append(regular_room)
                # a Twitch viewer asks: the host answers, the bridge replies in Twitch chat
                asked = await twitch.chat(Chatter("1001", "Marta"), "hello from Twitch, host!")
                await twitch.wait_until(
                    lambda: [
                        m for m in twitch.chat_sent if m.get("reply_parent_message_id") == asked
                    ],
                    45,
                )

                for room_client in (browser, regular_room):
                    viewers.remove(room_client)
                    await leave(room_client)
                await events.wait(lambda: events.job(room, "ended"), 20, "the job's end")
                crashed = await events.wait(
                    lambda: events.job(capped_room, "ended"), 30, "the capped room's job to end"
                )
                assert crashed.reason == "crashed", crashed

                def all_metrics(received: otlp.Received) -> bool:
                    wanted = set(documented) - set(NOT_PROVOKED)
                    return wanted <= {p.metric for p in received.points}

                try:
                    await asyncio.to_thread(collector.wait_for, all_metrics, 20, "every metric")
                except TimeoutError:
                    pass  # the assertion below names what is missing
            finally:  # while the doubles still answer the host's goodbyes
                for room_client in viewers:
                    await leave(room_client)
                stopped = await asyncio.gather(
                    *(asyncio.to_thread(service.stop) for service in services.values())
                )
                codes = dict(zip(services, stopped, strict=True))
                for name, service in services.items():  # shown by pytest when the test fails
                    print(f"--- {name} (last lines) ---\n{service.output()}")
    finally:
        await bus.close()
        await redis.delete(card_key(regular_tag))
        await redis.aclose()
    emitted = {p.metric for p in collector.received.points}
    missing: dict[str, list[str]] = {}
    for name, area in documented.items():
        if name not in emitted and name not in NOT_PROVOKED:
            missing.setdefault(area, []).append(name)
    assert not missing, f"documented but never emitted, by area: {missing}"
    fallbacks = {
        (p.attributes.get("kind"), p.attributes.get("backend"), p.attributes.get("reason"))
        for p in collector.received.points
        if p.metric == "livestage.host.backend_fallbacks"
    }
    assert ("voice", "openai-realtime", "spend_cap") in fallbacks, fallbacks
    assert ("avatar", "anam", "spend_cap") in fallbacks, fallbacks
    for name, code in codes.items():
        assert code in (0, -signal.SIGTERM), f"{name} exited {code}:\n{services[name].output()}"
