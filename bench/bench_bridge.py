"""Platform chat (YouTube Live, Twitch) to the viewers, against page chat's own path, in one run.

    python -m bench bridge          (or `make bench B=bridge`)

Starts its own nats-server, redis-server and livekit-server on 127.0.0.1, the real edge,
moderation and chat-history processes (`bench.chat_path`), the YouTube and Twitch doubles
(`tests/doubles`, in the bench process) and the real chat-bridge process pointed at both
(`BRIDGE_YOUTUBE_BASE_URL`, `BRIDGE_TWITCH_*_URL`), and joins `VIEWERS` subscribe-only rtc
viewers. Then, `ROUNDS` times, at `RATE` messages a second (open loop) for `SECONDS` each:

- `page`: `POST /api/chat` -> edge -> JetStream -> moderation -> chat-history -> every viewer
  (as `bench_chat_latency`'s `path`): latency from the POST's scheduled start;
- `mixed`: half the messages written in the Twitch double's chat, half in the YouTube double's,
  alternating; reported per platform (`mixed_twitch`, `mixed_youtube`);
- `twitch`, `youtube`: each platform alone at the whole rate.

A platform message's latency counts from the moment the double has it (Twitch: the EventSub
notification is sent to the bridge's socket; YouTube: the item is in the chat, due in the next
`liveChatMessages.list` page) to its arrival at a viewer, per (message, viewer) pair. From there
the bridge publishes it on `chat.submitted.<room>` and it takes page chat's path.

YouTube is polled: the double announces `pollingIntervalMillis` = `YOUTUBE_POLL_MS` (1000 ms
here; real YouTube asks for about 2 to 7 s, and the bridge's quota budget stretches it further:
at the default BRIDGE_YOUTUBE_BUDGET_HOURS=4 a fresh 10,000-unit day polls every 7.2 s, reported
as `youtube_default_budget_poll_s`). The bench runs the bridge with BRIDGE_YOUTUBE_BUDGET_HOURS=0
(YouTube's own pace) so the figures show the announced interval alone. So the YouTube latency
holds a wait for the next poll (on average half the interval) that no client can avoid;
`from_fetch` is the latency from the moment the bridge fetched the page that held the message
(the double's request log), which shows the bridge's own cost apart from the poll wait.

Stages per message, p50/p99 ms, between what is known of each: `sent` (POST start, the Twitch
notification, the YouTube item), `fetched` (YouTube: the page request), `submitted` and
`approved` (JetStream stored it on `chat.submitted` / `chat.approved`, its own timestamp),
`first_viewer`. Lost = (message, viewer) pairs that never arrived (messages moderation rejected
are not owed, and counted apart); duplicates = a viewer getting a message id again. CPU per
message of each process (from /proc), the chat-bridge's among them, per phase kind.

Every page poster is its own visitor, every platform author a different chatter
(`CHATTERS`), each line different: moderation's flood and duplicate checks see a busy room of
people, not one spammer.

The goal (issue #18): platform p99 within 1.2x of page chat's p99 (`p99_ratio`, `goal_met`).

`BENCH_SMOKE=1`: one round of 1 s per phase at 20 msg/s, 2 viewers in 1 worker.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import aiohttp
import nats

from bench import smoke_or, where_and_when
from bench.chat_path import (
    POST_COUNTER,
    ChatStack,
    CpuMeter,
    PageChat,
    Phase,
    StoredTimes,
    ViewerPool,
    chat_line,
    chat_stack,
    edge_client,
    paced,
    page_chat,
    poster_tokens,
    summary,
)
from chat_bridge.convert import chat_id
from chat_bridge.youtube import poll_interval_s
from tests.doubles.twitch import Chatter, TwitchDouble
from tests.doubles.youtube import Author, YouTubeDouble
from tests.support.services import end_service, start_service_until

RATE = int(os.environ.get("BENCH_BRIDGE_RATE", "20"))
SECONDS = float(os.environ.get("BENCH_BRIDGE_SECONDS", smoke_or("15", "1")))
ROUNDS = int(os.environ.get("BENCH_BRIDGE_ROUNDS", smoke_or("2", "1")))
VIEWERS = int(os.environ.get("BENCH_BRIDGE_VIEWERS", smoke_or("20", "2")))
WORKERS = int(os.environ.get("BENCH_BRIDGE_WORKERS", smoke_or("4", "1")))  # viewers' processes
POSTERS = int(os.environ.get("BENCH_BRIDGE_POSTERS", smoke_or("500", "20")))
CHATTERS = int(os.environ.get("BENCH_BRIDGE_CHATTERS", smoke_or("500", "50")))
"""Authors on each platform, in turn (moderation's flood check: 5 lines per author in 10 s)."""
YOUTUBE_POLL_MS = int(os.environ.get("BENCH_BRIDGE_YOUTUBE_POLL_MS", "1000"))
DRAIN_S = 5.0 + YOUTUBE_POLL_MS / 1000  # after the last send, before a pair counts as lost
WARM_S = smoke_or(2.0, 1.0)  # each path once at 10 msg/s before measuring
VIDEO_ID = "benchLive01"
GOAL_RATIO: Final = 1.2
KINDS = ("page", "mixed", "twitch", "youtube")
PATHS = {  # reported path: (phase kind, platform of its messages)
    "page": ("page", "page"),
    "mixed_twitch": ("mixed", "twitch"),
    "mixed_youtube": ("mixed", "youtube"),
    "twitch": ("twitch", "twitch"),
    "youtube": ("youtube", "youtube"),
}
FIGURES = (
    *(f"paths.*.{stat}" for stat in ("p50_ms", "p99_ms", "messages", "lost", "duplicates")),
    "paths.*.rejected_by_moderation",
    "paths.*.stages.submitted_to_approved.p50_ms",
    "paths.*.stages.approved_to_first_viewer.p50_ms",
    "paths.page.stages.sent_to_202.p50_ms",
    "paths.twitch.stages.sent_to_submitted.p50_ms",
    "paths.youtube.stages.sent_to_fetched.p50_ms",
    "paths.youtube.stages.fetched_to_submitted.p99_ms",
    "paths.youtube.from_fetch.p50_ms",
    "paths.youtube.from_fetch.p99_ms",
    "paths.mixed_youtube.from_fetch.p99_ms",
    "p99_ratio.*",
    "cpu_ms_per_message.*.chat_bridge",
    "page_http_errors",
)


@dataclass
class Run:
    """One phase: its messages (by Livestage message id) and which platform each came from."""

    phase: Phase
    platform_of: dict[str, str] = field(default_factory=dict)
    page: PageChat | None = None

    def ids(self, platform: str) -> list[str]:
        return [i for i, p in self.platform_of.items() if p == platform]


class Audience:
    """The platforms' viewers: each line in the Twitch or the YouTube double's chat."""

    def __init__(self, twitch: TwitchDouble, youtube: YouTubeDouble) -> None:
        self.twitch = twitch
        self.youtube = youtube
        self.chatters = [Chatter(f"7{n:08d}", f"Chatter{n}") for n in range(CHATTERS)]
        self.authors = [Author(f"UCbench{n:017d}", f"Watcher {n}") for n in range(CHATTERS)]
        self.turns = itertools.count()

    async def say(self, platform: str, run: Run, scheduled: float) -> None:
        """One line on `platform`, its latency counted from `scheduled`."""
        turn = next(self.turns)
        text = chat_line(next(POST_COUNTER))
        if platform == "twitch":
            message_id = str(uuid.uuid4())
            key = chat_id("twitch", message_id)
            run.phase.sent_at[key], run.platform_of[key] = scheduled, platform
            await self.twitch.chat(self.chatters[turn % CHATTERS], text, message_id=message_id)
        else:
            item = self.youtube.post(VIDEO_ID, text, author=self.authors[turn % CHATTERS])
            key = chat_id("youtube", item["id"])
            run.phase.sent_at[key], run.platform_of[key] = scheduled, platform

    def fetched_at(self) -> dict[str, float]:
        """When the bridge first fetched each YouTube message (the request of the first page
        that held it), by Livestage message id. The double appends a request and its page in
        one step, so the two logs pair up unless a call was refused (never, here)."""
        requests, pages = self.youtube.chat_requests, self.youtube.pages
        if len(requests) != len(pages):
            raise RuntimeError(
                f"the YouTube double answered {len(pages)} of {len(requests)} chat requests "
                "with a page: some were refused, the fetch times cannot be paired"
            )
        fetched: dict[str, float] = {}
        for request, page in zip(requests, pages, strict=True):
            for item in page["items"]:
                fetched.setdefault(chat_id("youtube", item["id"]), request.received_at)
        return fetched


async def platform_phase(
    audience: Audience,
    pool: ViewerPool,
    stored: StoredTimes,
    platforms: Sequence[str],
    rate: int,
    seconds: float = SECONDS,
) -> Run:
    """`rate` lines a second for `seconds`, taking `platforms` in turn."""
    run = Run(Phase(pool, DRAIN_S))
    await run.phase.begin()

    async def send(n: int, scheduled: float) -> None:
        await audience.say(platforms[n % len(platforms)], run, scheduled)

    await paced(rate, seconds, send)
    await run.phase.drain(lambda: stored.rejected)
    return run


async def page_phase(
    http: aiohttp.ClientSession,
    tokens: list[str],
    pool: ViewerPool,
    stored: StoredTimes,
    rate: int,
    seconds: float = SECONDS,
) -> Run:
    run = Run(Phase(pool, DRAIN_S))
    await run.phase.begin()
    run.page = await page_chat(http, tokens, run.phase, rate, seconds)
    run.platform_of = dict.fromkeys(run.phase.sent_at, "page")
    await run.phase.drain(lambda: stored.rejected)
    return run


def spans(
    run: Run, ids: Sequence[str], marks: Sequence[tuple[str, Mapping[str, float]]]
) -> dict[str, list[float]]:
    """Milliseconds between consecutive known marks of each message (`marks`: a name and the
    time of each message id, in path order); the last mark is the first viewer's arrival."""
    found: dict[str, list[float]] = {}
    for message_id in ids:
        arrivals = run.phase.arrivals(message_id)
        times = [(name, at.get(message_id)) for name, at in marks]
        times.append(("first_viewer", min(arrivals) if arrivals else None))
        for (a, started), (b, ended) in itertools.pairwise(times):
            if started is not None and ended is not None:
                found.setdefault(f"{a}_to_{b}", []).append((ended - started) * 1000)
    return found


def path_figures(
    runs: list[Run], platform: str, stored: StoredTimes, fetched_at: Mapping[str, float]
) -> dict[str, Any]:
    """One reported path over every round: end to end, stages, and for YouTube from the fetch."""
    values: list[float] = []
    from_fetch: list[float] = []
    stage_values: dict[str, list[float]] = {}
    lost = duplicates = messages = rejected = 0
    rejection_examples: set[str] = set()
    marks: list[tuple[str, Mapping[str, float]]] = [("sent", {})]
    if platform == "youtube":
        marks.append(("fetched", fetched_at))
    marks += [("submitted", stored.submitted_at), ("approved", stored.approved_at)]
    for run in runs:
        ids = run.ids(platform)
        messages += len(ids)
        refused = [i for i in ids if i in stored.rejected]
        rejected += len(refused)
        rejection_examples.update(stored.rejected[i] for i in refused)
        got, missing = run.phase.latencies(set(stored.rejected), among=ids)
        values += got
        lost += missing
        duplicates += run.phase.duplicates_among(ids)
        marks[0] = ("sent", run.phase.sent_at)
        owed = [i for i in ids if i not in stored.rejected]
        for name, spent in spans(run, owed, marks).items():
            stage_values.setdefault(name, []).extend(spent)
        if run.page is not None:
            stage_values.setdefault("sent_to_202", []).extend(
                (run.page.acked_at[i] - run.phase.sent_at[i]) * 1000 for i in owed
            )
        if platform == "youtube":
            from_fetch += [
                (at - fetched_at[i]) * 1000
                for i in owed
                if i in fetched_at
                for at in run.phase.arrivals(i)
            ]
    figures: dict[str, Any] = {
        **summary(values),
        "messages": messages,
        "lost": lost,
        "duplicates": duplicates,
        "rejected_by_moderation": rejected,
        "rejection_examples": sorted(rejection_examples)[:3],
        "stages": {name: summary(spent) for name, spent in sorted(stage_values.items())},
    }
    if platform == "youtube":
        figures["from_fetch"] = summary(from_fetch)
    return figures


def ratios(paths: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Each platform path's p99 over page chat's p99 (and YouTube's from its fetch)."""
    page_p99 = paths["page"]["p99_ms"]

    def over_page(p99: float | None) -> float | None:
        return round(p99 / page_p99, 2) if p99 and page_p99 else None

    out = {name: over_page(figures["p99_ms"]) for name, figures in paths.items() if name != "page"}
    for name in ("youtube", "mixed_youtube"):
        out[f"{name}_from_fetch"] = over_page(paths[name]["from_fetch"]["p99_ms"])
    return out


async def run() -> dict[str, Any]:
    results: dict[str, Any] = {
        **where_and_when(),
        "rate_per_s": RATE,
        "seconds_per_phase": SECONDS,
        "rounds": ROUNDS,
        "viewers": VIEWERS,
        "youtube_polling_interval_ms": YOUTUBE_POLL_MS,
        "youtube_default_budget_poll_s": round(
            poll_interval_s(YOUTUBE_POLL_MS, units_left=10_000, horizon_s=4 * 3600), 2
        ),
        "goal": f"platform p99 within {GOAL_RATIO}x page chat's p99",
    }
    async with (
        chat_stack() as stack,
        YouTubeDouble(api_key="bench-youtube-key", polling_interval_ms=YOUTUBE_POLL_MS) as youtube,
        TwitchDouble() as twitch,
    ):
        youtube.go_live(VIDEO_ID)
        bridge_env = {
            **stack.env,
            "BRIDGE_ROOM": stack.room,
            "BRIDGE_YOUTUBE_VIDEO_ID": VIDEO_ID,
            "BRIDGE_YOUTUBE_API_KEY": "bench-youtube-key",
            "BRIDGE_YOUTUBE_BASE_URL": youtube.base_url,
            "BRIDGE_YOUTUBE_BUDGET_HOURS": "0",  # YouTube's announced interval, not stretched
            **twitch.env,
        }
        bridge = await asyncio.to_thread(
            start_service_until, "chat_bridge", bridge_env, "chat into room"
        )
        try:
            await twitch.wait_until(twitch.subscribed_session, within=60)
            await youtube.wait_until(lambda: youtube.pages, within=60)
            results |= await measure(stack, Audience(twitch, youtube), bridge.pid)
        finally:
            output = end_service(bridge)
            if bridge.returncode not in (0, -15):
                print(output[-3000:], flush=True)
    results["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    return results


async def measure(stack: ChatStack, audience: Audience, bridge_pid: int) -> dict[str, Any]:
    async with edge_client(stack.edge_url) as http:
        tokens = await poster_tokens(http, POSTERS)
        nc = await nats.connect(stack.nats_url)
        stored = StoredTimes()
        await stored.follow(nc, stack.room, submitted=True)
        pool = ViewerPool(stack.livekit, stack.room, VIEWERS, WORKERS)
        runs: dict[str, list[Run]] = {kind: [] for kind in KINDS}
        cpu_s: dict[str, dict[str, float]] = {kind: {} for kind in KINDS}
        try:
            await pool.start()
            # warm every path once (connections, pools, caches, the bridge's first pages)
            await page_phase(http, tokens, pool, stored, 10, WARM_S)
            await platform_phase(audience, pool, stored, ("twitch", "youtube"), 10, WARM_S)
            cpu = CpuMeter(
                {**stack.pids, "chat_bridge": bridge_pid, "bench_and_doubles": os.getpid()}
                | pool.pids()
            )
            for round_number in range(ROUNDS):
                for kind in KINDS:
                    cpu.start()
                    if kind == "page":
                        done = await page_phase(http, tokens, pool, stored, RATE)
                    else:
                        platforms = ("twitch", "youtube") if kind == "mixed" else (kind,)
                        done = await platform_phase(audience, pool, stored, platforms, RATE)
                    for name, spent in cpu.spent_s().items():
                        cpu_s[kind][name] = cpu_s[kind].get(name, 0.0) + spent
                    runs[kind].append(done)
                    print(f"round {round_number + 1} {kind}: {len(done.phase.sent_at)} sent")
        finally:
            await pool.close()
            await nc.close()
    fetched_at = audience.fetched_at()
    paths = {
        name: path_figures(runs[kind], platform, stored, fetched_at)
        for name, (kind, platform) in PATHS.items()
    }
    p99_ratio = ratios(paths)
    messages = {kind: sum(len(r.phase.sent_at) for r in runs[kind]) for kind in KINDS}
    errors = [error for r in runs["page"] for error in (r.page.errors if r.page else [])]
    return {
        "paths": paths,
        "p99_ratio": p99_ratio,
        "goal_met": {
            name: ratio is not None and ratio <= GOAL_RATIO for name, ratio in p99_ratio.items()
        },
        "cpu_ms_per_message": {
            kind: {
                name: round(spent * 1000 / max(messages[kind], 1), 3)
                for name, spent in sorted(cpu_s[kind].items())
            }
            for kind in KINDS
        },
        "page_http_errors": len(errors),
        "page_http_error_examples": errors[:3],
    }
