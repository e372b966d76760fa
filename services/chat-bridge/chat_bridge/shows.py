"""Platform chat per show: each show's YouTube video and Twitch channel into its own room.

A show's `platformChat` ({youtubeVideoId, twitchChannelId}, `livestage.schemas.ShowConfig`)
names the platform chats that feed it. `ShowBridges` runs, for every show that names one, the
bridge of one room (`app.serve`: its platform clients into `chat.submitted.<room>`, the
platforms' deletions and bans, replies from `host.spoken.<room>` back to those platforms).

- At start it reads every show from the `ShowStore` (Redis: the source of truth), then follows
  `room.config.*` from the time of that read (`ShowConfigEvent`: created, changed, deleted).
  A change of a show's sources stops its bridge and starts one with the new sources; a deleted
  show, or one that names none, has none. A change that leaves the sources as they were
  touches nothing.
- The deployment's show (BRIDGE_ROOM, else LIVEKIT_ROOM) keeps the deployment's settings:
  a null `youtubeVideoId` / `twitchChannelId` there means BRIDGE_YOUTUBE_VIDEO_ID (or
  BRIDGE_YOUTUBE_CHANNEL_ID) / BRIDGE_TWITCH_CHANNEL. Another show's null is no source.
- Every show uses the deployment's credentials (BRIDGE_YOUTUBE_API_KEY / OAuth client,
  BRIDGE_TWITCH_* tokens; one bot token pair for all, refreshed once: `twitch_api.BotTokens`);
  a show's Twitch channel is its user id (no lookup). Sources that
  cannot run with them (Twitch credentials missing) are logged as an ERROR for that show and
  left off; the other shows go on.

One bridge process serves every show (`app.main`); the service runs as one replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from livestage import subjects
from livestage.bus import Bus, Observed, Watch
from livestage.schemas import ShowConfig, ShowConfigEvent
from livestage.shows import ShowStore

from . import twitch, youtube
from .settings import TwitchSettings, YouTubeSettings
from .source import PlatformChat

log = logging.getLogger(__name__)

SHOWS_RETRY_S = 5.0
"""How soon the bridge reads the shows again while Redis cannot be read."""


@dataclass(frozen=True)
class ShowSources:
    """The platform chats one show follows (empty strings: none)."""

    youtube_video_id: str = ""
    youtube_channel_id: str = ""
    twitch_channel: str = ""
    """A login name (BRIDGE_TWITCH_CHANNEL, the deployment's show only)."""
    twitch_channel_id: str = ""
    """A user id (a show's `platformChat.twitchChannelId`)."""

    def __bool__(self) -> bool:
        return any(
            (
                self.youtube_video_id,
                self.youtube_channel_id,
                self.twitch_channel,
                self.twitch_channel_id,
            )
        )

    def describe(self) -> str:
        parts = [
            f"YouTube video {self.youtube_video_id}" if self.youtube_video_id else "",
            f"YouTube channel {self.youtube_channel_id}" if self.youtube_channel_id else "",
            f"Twitch #{self.twitch_channel}" if self.twitch_channel else "",
            f"Twitch channel id {self.twitch_channel_id}" if self.twitch_channel_id else "",
        ]
        return ", ".join(part for part in parts if part) or "none"


def show_sources(
    config: ShowConfig | None,
    *,
    deployment: bool,
    youtube_settings: YouTubeSettings,
    twitch_settings: TwitchSettings,
) -> ShowSources:
    """What a show follows: its `platformChat`; for the deployment's show a null is the
    deployment's setting. `config` None: a deleted show (or the deployment's without a record)."""
    chat = config.platform_chat if config is not None else None
    video = chat.youtube_video_id if chat is not None else None
    channel_id = chat.twitch_channel_id if chat is not None else None
    if not deployment:
        return ShowSources(youtube_video_id=video or "", twitch_channel_id=channel_id or "")
    return ShowSources(
        youtube_video_id=video or youtube_settings.video_id,
        youtube_channel_id="" if video else youtube_settings.channel_id,
        twitch_channel="" if channel_id else twitch_settings.channel.strip(),
        twitch_channel_id=channel_id or "",
    )


def platforms_for(
    redis: Redis,
    room: str,
    sources: ShowSources,
    youtube_settings: YouTubeSettings,
    twitch_settings: TwitchSettings,
) -> list[PlatformChat]:
    """The platform clients of `sources` with the deployment's credentials (a ValueError naming
    what is missing when a source cannot run with them)."""
    found: list[PlatformChat | None] = [
        youtube.from_settings(
            redis,
            settings=youtube_settings.model_copy(
                update={
                    "video_id": sources.youtube_video_id,
                    "channel_id": sources.youtube_channel_id,
                }
            ),
            room=room,
        ),
        twitch.from_settings(
            redis,
            settings=twitch_settings.model_copy(update={"channel": sources.twitch_channel}),
            broadcaster_id=sources.twitch_channel_id or None,
        ),
    ]
    return [chat for chat in found if chat is not None]


ServeRoom = Callable[[str, Sequence[PlatformChat], asyncio.Event], Awaitable[None]]
"""One room's bridge until its stop event (`app.serve` bound to the bus, Redis, settings)."""


@dataclass
class _Running:
    sources: ShowSources
    stop: asyncio.Event
    task: asyncio.Task[None]


class ShowBridges:
    """The bridge of every show that names a platform chat, following the shows at run time.

    `serve(room, platforms, stop)`: one room's bridge until `stop`; it closes its platform
    clients when it returns."""

    def __init__(
        self,
        bus: Bus,
        store: ShowStore,
        deployment_room: str,
        serve: ServeRoom,
        *,
        youtube_settings: YouTubeSettings | None = None,
        twitch_settings: TwitchSettings | None = None,
        stop_within_s: float = 15.0,
    ) -> None:
        self.bus = bus
        self.store = store
        self.deployment_room = deployment_room
        self.serve = serve
        self.youtube_settings = youtube_settings or YouTubeSettings()
        self.twitch_settings = twitch_settings or TwitchSettings()
        self.stop_within_s = stop_within_s
        self.running: dict[str, _Running] = {}
        self._changes: asyncio.Queue[tuple[str, ShowConfig | None]] = asyncio.Queue()
        self._watch: Watch | None = None
        self._unread = False  # the store could not be read yet: `run` tries again

    def sources(self, room: str) -> ShowSources:
        """What the room's bridge follows now (empty: no bridge)."""
        running = self.running.get(room)
        return running.sources if running is not None else ShowSources()

    async def start(self) -> None:
        """Every show's bridge as the store has them now, then their changes followed from the
        time of that read (a change in between is applied twice: the second finds nothing to
        do)."""
        if self._watch is not None:
            return
        read_at = time.time()
        if not await self._read_shows():
            await self._apply(self.deployment_room, None)  # its settings, until the store answers
        self._watch = await self.bus.watch(
            subjects.all_rooms("room", "config"), ShowConfigEvent, self._on_config, start=read_at
        )

    async def _read_shows(self) -> bool:
        """Every show's bridge as the store has them now; False (logged) while Redis cannot be
        read: the deployment's show then runs on its settings and `run` reads again every
        `SHOWS_RETRY_S`."""
        try:
            rooms = dict.fromkeys([*await self.store.rooms(), self.deployment_room])
            configs = [(room, await self.store.config(room)) for room in rooms]
        except RedisError as error:
            log.warning(
                "the shows could not be read (%s): the deployment's show follows its settings; "
                "reading again in %.0f s",
                error,
                SHOWS_RETRY_S,
            )
            self._unread = True
            return False
        self._unread = False
        for room, config in configs:
            await self._apply(room, config)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Every show's bridge until `stop` (`start` first, if not done); then every bridge is
        stopped."""
        await self.start()
        watch = self._watch
        assert watch is not None
        try:
            while not stop.is_set():
                change = asyncio.ensure_future(self._changes.get())
                stopped = asyncio.ensure_future(stop.wait())
                try:
                    await asyncio.wait(
                        {change, stopped},
                        timeout=SHOWS_RETRY_S if self._unread else None,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                finally:
                    stopped.cancel()
                    if not change.done():
                        change.cancel()
                if change.done() and not change.cancelled():
                    await self._apply(*change.result())
                elif self._unread and not stop.is_set():
                    await self._read_shows()
        finally:
            self._watch = None
            with contextlib.suppress(Exception):
                await watch.stop()
            await asyncio.gather(*(self._stop(room) for room in list(self.running)))

    async def _on_config(self, observed: Observed[ShowConfigEvent]) -> None:
        # applied one at a time, in order, by `run` (a bridge's stop takes a moment)
        self._changes.put_nowait((observed.model.room, observed.model.config))

    async def _apply(self, room: str, config: ShowConfig | None) -> None:
        sources = show_sources(
            config,
            deployment=room == self.deployment_room,
            youtube_settings=self.youtube_settings,
            twitch_settings=self.twitch_settings,
        )
        if sources == self.sources(room):
            return
        await self._stop(room)
        if not sources:
            return
        try:
            platforms = platforms_for(
                self.store.redis, room, sources, self.youtube_settings, self.twitch_settings
            )
        except ValueError as error:
            log.error("room %s: its platform chat (%s) cannot run: %s", room, sources, error)
            return
        log.info("room %s: following %s", room, sources.describe())
        stop = asyncio.Event()
        task = asyncio.create_task(self._serve(room, platforms, stop), name=f"bridge {room}")
        self.running[room] = _Running(sources, stop, task)

    async def _serve(
        self, room: str, platforms: Sequence[PlatformChat], stop: asyncio.Event
    ) -> None:
        try:
            await self.serve(room, platforms, stop)
        except Exception:
            log.exception("room %s: its platform chat bridge failed", room)

    async def _stop(self, room: str) -> None:
        running = self.running.pop(room, None)
        if running is None:
            return
        log.info("room %s: no longer following %s", room, running.sources.describe())
        running.stop.set()
        _, late = await asyncio.wait({running.task}, timeout=self.stop_within_s)
        for task in late:
            task.cancel()
