"""Replies back to the platforms (BRIDGE_REPLIES=true): the host answered a platform viewer, so
a short text version of the answer goes to that platform's chat.

A durable JetStream consumer of `host.spoken.<room>` (shared by every bridge replica) reads each
`SpokenTurn`: what the host actually said, after its output check. For each answered chat id
that is a platform message the bridge published (`records.target`), the reply is claimed once in
Redis (SET NX): never two replies to one comment, whichever replica or redelivery comes second.
The comments of one turn from one platform get one post (claimed just before it), addressed to
each author ("@Marta @Tom ..."), cut at a word boundary to the platform's limit (Twitch 500
characters, YouTube 200), as a reply to the first of them; the platforms are answered side by
side.

Send limits (`ReplyLimiter`): per platform, in Redis with `limits` (a moving window shared by
every replica: BRIDGE_REPLY_RATE_TWITCH, 20 per 30 s, Twitch's limit for a bot that is not a
moderator; BRIDGE_REPLY_RATE_YOUTUBE, 10 a minute, each post costing 20 quota units). A reply over
the limit waits for room up to BRIDGE_REPLY_MAX_WAIT_S, then is dropped and counted
(`livestage.bridge.replies{outcome=rate_limited}`): a late answer in a moving chat reads as
noise, and a Twitch bot over its limit is locked out for 30 minutes.

At most once: a claimed reply that then fails (the platform refused it, an error, a timeout) is
counted and not retried, because a retry after a post whose answer was lost would post twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from opentelemetry.metrics import Meter
from redis.asyncio import Redis

from livestage import metrics, subjects
from livestage.bus import Bus, Delivery
from livestage.schemas import Platform, SpokenTurn

from .convert import reply_text
from .records import Records
from .settings import BridgeSettings
from .source import PlatformChat, ReplyTarget

log = logging.getLogger(__name__)

DURABLE_PREFIX = "chat-bridge-replies-"
BATCH = 8


def redis_limits_storage(redis_url: str, redis: Redis) -> Storage:
    """`limits`' async Redis storage on `redis`'s own connection pool (its timeouts, retries)."""
    scheme, rest = redis_url.split("://", 1)
    return RedisStorage(
        f"async+{scheme}://{rest}",
        implementation="redispy",
        key_prefix="livestage-limits",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # documented option
    )


class ReplyLimiter:
    """Each platform's send limit for one room's replies; `acquire` waits (bounded) for room."""

    def __init__(
        self,
        storage: Storage,
        room: str,
        rates: Mapping[str, RateLimitItem],
        max_wait_s: float,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.limiter = MovingWindowRateLimiter(storage)
        self.room = room
        self.rates = dict(rates)
        self.max_wait_s = max_wait_s
        self.clock = clock

    @classmethod
    def from_settings(cls, storage: Storage, room: str, settings: BridgeSettings) -> ReplyLimiter:
        rates = {
            "twitch": parse(settings.reply_rate_twitch),
            "youtube": parse(settings.reply_rate_youtube),
        }
        return cls(storage, room, rates, settings.reply_max_wait_s)

    async def acquire(self, platform: Platform) -> bool:
        """Take one send of `platform`'s limit, waiting up to `max_wait_s` for one to free up;
        False when none did (the reply is to be dropped)."""
        item = self.rates[platform]
        keys = ("chat-bridge-replies", self.room, platform)
        deadline = time.monotonic() + self.max_wait_s
        while not await self.limiter.hit(item, *keys):
            stats = await self.limiter.get_window_stats(item, *keys)
            wait = max(stats.reset_time - self.clock(), 0.05)
            if time.monotonic() + wait > deadline:
                return False
            await asyncio.sleep(wait)  # the window's own time: nothing to await instead
        return True


@dataclass
class Replies:
    """Answers platform comments the host answered, for one room."""

    bus: Bus
    records: Records
    room: str
    platforms: Mapping[str, PlatformChat]
    limiter: ReplyLimiter
    timeout_s: float
    meter: Meter | None = None

    def __post_init__(self) -> None:
        self._replies = metrics.counter(metrics.BRIDGE_REPLIES, self.meter)

    def _count(self, platform: str, outcome: str, n: int = 1) -> None:
        self._replies.add(n, {"platform": platform, "outcome": outcome})

    async def run(self, stop: asyncio.Event, *, first_wait_s: float | None = None) -> None:
        """Consume `host.spoken.<room>` until `stop` is set. The first redelivery waits longer
        than one turn's replies may take (a wait for the limit, then the post)."""
        wait = first_wait_s or self.limiter.max_wait_s + self.timeout_s + 2
        consumer = await self.bus.consumer(
            subjects.host_spoken(self.room),
            SpokenTurn,
            DURABLE_PREFIX + self.room,
            backoff_s=(wait,),
            max_ack_pending=BATCH * 4,
        )
        log.info("replies to %s on: %s", ", ".join(sorted(self.platforms)), self.room)
        try:
            await consumer.run_concurrently(self.on_spoken, batch=BATCH, stop=stop, drain_s=wait)
        finally:
            await consumer.unsubscribe()

    async def on_spoken(self, delivery: Delivery[SpokenTurn]) -> None:
        await self.answer(delivery.model)

    async def answer(self, turn: SpokenTurn) -> None:
        """Reply to every platform comment `turn` answered and nobody replied to yet (the
        platforms side by side: a slow one holds up nobody, and claims nothing of another's)."""
        if turn.room != self.room or not turn.reply_to:
            return
        answered: dict[Platform, list[tuple[str, ReplyTarget]]] = {}
        for message_id in turn.reply_to:
            target = await self.records.target(message_id)
            if target is None or target.platform not in self.platforms:
                continue  # page chat, or a platform this bridge does not follow
            answered.setdefault(target.platform, []).append((message_id, target))
        await asyncio.gather(
            *(self._answer_on(platform, pairs, turn.text) for platform, pairs in answered.items())
        )

    async def _answer_on(
        self, platform: Platform, answered: list[tuple[str, ReplyTarget]], spoken: str
    ) -> None:
        claimed = []
        for message_id, target in answered:
            if await self.records.claim_reply(message_id):
                claimed.append(target)
            else:
                self._count(platform, "duplicate")
        if claimed:
            await self._post(platform, claimed, spoken)

    async def _post(self, platform: Platform, targets: list[ReplyTarget], spoken: str) -> None:
        n = len(targets)
        text = reply_text(platform, spoken, [target.user_name for target in targets])
        if not text:
            log.debug("turn said nothing: no reply on %s", platform)
            return
        if not await self.limiter.acquire(platform):
            log.warning(
                "reply on %s dropped: over its send limit for %.1f s",
                platform,
                self.limiter.max_wait_s,
            )
            self._count(platform, "rate_limited", n)
            return
        try:
            sent = await asyncio.wait_for(
                self.platforms[platform].reply(targets[0], text), self.timeout_s
            )
        except TimeoutError:
            log.warning(
                "reply on %s: no answer within %.1f s; not retried", platform, self.timeout_s
            )
            self._count(platform, "failed", n)
            return
        except Exception:  # the platform client's failure is this reply's only
            log.exception("reply on %s failed; not retried", platform)
            self._count(platform, "failed", n)
            return
        self._count(platform, "sent" if sent else "refused", n)
