"""YouTube Live chat through the YouTube Data API v3 (a `source.PlatformChat`).

    chat = from_settings(redis)          # None when BRIDGE_YOUTUBE_* configures nothing
    await chat.run(sink, stop)           # follows the show's chat until `stop` is set

How it follows the chat (quota units in brackets; the default budget is 10,000 a day):

1. **Find the chat.** With `BRIDGE_YOUTUBE_VIDEO_ID`: `videos.list?part=liveStreamingDetails`
   → `activeLiveChatId` [1] (an API key is enough). With `BRIDGE_YOUTUBE_CHANNEL_ID` instead:
   the OAuth account's active broadcasts, `liveBroadcasts.list?part=snippet&broadcastStatus=
   active&broadcastType=all` [1] (the API allows one filter, so no `mine=true` beside it), the
   one whose `snippet.channelId` is that channel → `snippet.liveChatId`. Not live yet (or the
   chat ended): look again every `find_interval_s`, reported once as problem `not_live`.
2. **Poll** `liveChatMessages.list?part=snippet,authorDetails&pageToken=` [5], waiting what
   YouTube asks (`pollingIntervalMillis`), stretched when the quota runs low (see 4).
3. **Resume, never replay.** The page token is stored in Redis (`livestage:bridge:youtube:
   {<room>}:page:<chat id>`) only after the page's items were handed to the sink, so a restart
   asks for the next page; a crash mid-page hands that page over again, which the sink's
   de-duplication (`youtube:<message id>`) makes harmless. A `BusUnavailable` from the sink
   retries the rest of the same page. The very first start for a chat (no stored token) hands
   over only the backlog messages younger than `backlog_s` (60 s): what was said just before the
   bridge came up is still worth answering, older lines are history.
4. **Quota.** Every call is counted in Redis per Pacific-time day (YouTube's quota day), one
   counter per Google Cloud project (its OAuth client, or its API key). At 80% one WARNING;
   at 100% the client stops calling (problem `quota`) until the day turns; a 403
   `quotaExceeded` from YouTube counts as 100%. The poll interval is stretched so the
   remaining budget lasts `budget_hours` (or to the end of the quota day if sooner):
   `interval >= 5 units × horizon / units left`, so a fresh 10,000-unit day at 4 hours polls
   at most every 7.2 s, and the interval grows as the budget shrinks instead of running dry
   mid-show.
5. **Trouble** is reported through `sink.problem(platform, outcome, detail)` and
   `sink.connected`: `unauthorized` (a bad key, or an access token that refreshing did not fix),
   `quota`, `rate_limited`, `forbidden`, `unavailable` (5xx, connection errors, timeouts),
   `storage` (Redis), `not_live`. Each is retried with random exponential backoff (tenacity,
   `retry_min_s`..`retry_max_s`); `run` never raises for platform trouble. A chat that ended
   (`chatEndedEvent`, `offlineAt`, 403 `liveChatEnded`, 404 `liveChatNotFound`) sends the
   client back to step 1.

Items become `PlatformMessage`s: `textMessageEvent` (message), `superChatEvent` (super_chat, the
comment as text), `superStickerEvent` (super_chat), `newSponsorEvent`, `memberMilestoneChatEvent`
and `membershipGiftingEvent` (membership); `messageDeletedEvent` → `sink.remove_message`,
`userBannedEvent` (permanent or a timeout) → `sink.remove_user`; others are ignored. Roles:
`isChatOwner` broadcaster, `isChatModerator` moderator, `isChatSponsor` member.

Replies (`reply`) post `liveChatMessages.insert?part=snippet` [50] as the OAuth account: the
text the bridge gives (already addressed, "@Marta ...") cut to YouTube's 200 characters; the
bridge never hands its own replies back as chat. The API key goes in the `X-Goog-Api-Key`
header (never in a URL that could be logged).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as day_start
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_random_exponential

from livestage.bus import BusUnavailable
from livestage.schemas import Platform, PlatformEvent, PlatformRole
from livestage.settings import LiveKitSettings
from livestage.subjects import check_room
from livestage.text import clean_text, shorten

from .settings import BridgeSettings, YouTubeSettings
from .source import PlatformMessage, ReplyTarget, Sink

log = logging.getLogger(__name__)

T = TypeVar("T")

PLATFORM: Final[Platform] = "youtube"
COST_LOOKUP: Final = 1
"""Quota units of `videos.list` and `liveBroadcasts.list`."""
COST_PAGE: Final = 5
"""Quota units of `liveChatMessages.list`."""
COST_REPLY: Final = 50
"""Quota units of `liveChatMessages.insert`."""
WARN_AT: Final = 0.8
"""Share of the daily budget at which the bridge warns (once a day)."""
QUOTA_ZONE: Final = ZoneInfo("America/Los_Angeles")
"""YouTube's quota day turns at midnight Pacific time."""
DEFAULT_POLL_MS: Final = 5000
"""Used when a page carries no `pollingIntervalMillis`."""
REPLY_MAX_CHARS: Final = 200
"""YouTube refuses live chat messages longer than this."""
AMOUNT_MAX_CHARS: Final = 32
KEY_TTL_S: Final = 2 * 24 * 3600
CHAT_OVER_REASONS: Final = frozenset({"liveChatEnded", "liveChatNotFound", "liveChatDisabled"})
QUOTA_REASONS: Final = frozenset({"quotaExceeded", "dailyLimitExceeded"})
RATE_REASONS: Final = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
AUTH_REASONS: Final = frozenset({"authError", "keyInvalid", "keyExpired", "unauthorized"})


# -- items (pure) ----------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoveMessage:
    """`messageDeletedEvent`: the channel's moderators deleted this message."""

    message_id: str


@dataclass(frozen=True)
class RemoveUser:
    """`userBannedEvent`: the channel banned or timed out this author."""

    user_id: str


@dataclass(frozen=True)
class ChatEnded:
    """`chatEndedEvent`: the broadcast is over."""


ChatAction = PlatformMessage | RemoveMessage | RemoveUser | ChatEnded


def epoch_ms(rfc3339: object) -> int | None:
    """`snippet.publishedAt` ("2026-12-07T14:04:49.123+00:00" or "...Z") in epoch ms."""
    if not isinstance(rfc3339, str):
        return None
    try:
        return round(datetime.fromisoformat(rfc3339).timestamp() * 1000)
    except ValueError:
        return None


def _details(snippet: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = snippet.get(name)
    return value if isinstance(value, Mapping) else {}


def _what(snippet: Mapping[str, Any]) -> tuple[PlatformEvent, str, str] | None:
    """(event, text, amount) of a chat item the host may hear, or None."""
    kind = snippet.get("type")
    if kind == "textMessageEvent":
        text = _details(snippet, "textMessageDetails").get("messageText")
        return "message", str(text or snippet.get("displayMessage") or ""), ""
    if kind == "superChatEvent":
        details = _details(snippet, "superChatDetails")
        return (
            "super_chat",
            str(details.get("userComment") or ""),
            str(details.get("amountDisplayString") or ""),
        )
    if kind == "superStickerEvent":
        details = _details(snippet, "superStickerDetails")
        return "super_chat", "", str(details.get("amountDisplayString") or "")
    if kind == "newSponsorEvent":
        details = _details(snippet, "newSponsorDetails")
        return "membership", "", str(details.get("memberLevelName") or "")
    if kind == "memberMilestoneChatEvent":
        details = _details(snippet, "memberMilestoneChatDetails")
        months = details.get("memberMonth")
        amount = f"{months} months" if months else str(details.get("memberLevelName") or "")
        return "membership", str(details.get("userComment") or ""), amount
    if kind == "membershipGiftingEvent":
        count = _details(snippet, "membershipGiftingDetails").get("giftMembershipsCount")
        return "membership", "", f"{count} gifted" if count else ""
    return None


def roles_of(author: Mapping[str, Any]) -> tuple[PlatformRole, ...]:
    """The author's roles from `authorDetails`."""
    roles: list[PlatformRole] = []
    if author.get("isChatOwner"):
        roles.append("broadcaster")
    if author.get("isChatModerator"):
        roles.append("moderator")
    if author.get("isChatSponsor"):
        roles.append("member")
    return tuple(roles)


def read_item(item: Mapping[str, Any], now_ms: int) -> ChatAction | None:
    """What one `liveChatMessage` resource asks of the bridge (None: nothing, e.g. a tombstone
    or an item missing the ids it needs). `now_ms` stands in for a missing `publishedAt`."""
    snippet = item.get("snippet")
    if not isinstance(snippet, Mapping):
        return None
    kind = snippet.get("type")
    if kind == "messageDeletedEvent":
        deleted = _details(snippet, "messageDeletedDetails").get("deletedMessageId")
        return RemoveMessage(str(deleted)) if deleted else None
    if kind == "userBannedEvent":
        banned = _details(_details(snippet, "userBannedDetails"), "bannedUserDetails")
        return RemoveUser(str(banned["channelId"])) if banned.get("channelId") else None
    if kind == "chatEndedEvent":
        return ChatEnded()
    what = _what(snippet)
    author = item.get("authorDetails")
    author = author if isinstance(author, Mapping) else {}
    user_id = author.get("channelId") or snippet.get("authorChannelId")
    if what is None or not item.get("id") or not user_id:
        return None
    event, text, amount = what
    return PlatformMessage(
        platform=PLATFORM,
        message_id=str(item["id"]),
        user_id=str(user_id),
        user_name=str(author.get("displayName") or ""),
        text=text,
        published_at_ms=epoch_ms(snippet.get("publishedAt")) or now_ms,
        roles=roles_of(author),
        event=event,
        amount=amount[:AMOUNT_MAX_CHARS],
    )


def reply_text(text: str) -> str:
    """The reply as posted: `text` (addressed by the bridge's replies, "@Marta ...": adding a
    mention here would name the viewer twice) cut at a word boundary to what YouTube accepts."""
    return shorten(clean_text(text), REPLY_MAX_CHARS)


# -- quota (pure parts) ----------------------------------------------------------------------


def quota_day(now_s: float) -> str:
    """The Pacific-time date YouTube counts quota against (`YYYY-MM-DD`)."""
    return datetime.fromtimestamp(now_s, QUOTA_ZONE).date().isoformat()


def seconds_to_next_quota_day(now_s: float) -> float:
    """Seconds until the quota day turns (midnight Pacific time, daylight saving included)."""
    today = datetime.fromtimestamp(now_s, QUOTA_ZONE).date()
    midnight = datetime.combine(today + timedelta(days=1), day_start.min, QUOTA_ZONE)
    return midnight.timestamp() - now_s


def poll_interval_s(platform_ms: int, *, units_left: int, horizon_s: float) -> float:
    """The wait before the next page: YouTube's `pollingIntervalMillis`, stretched so the units
    left last `horizon_s` (0: no stretching) at `COST_PAGE` units a page."""
    wait = max(platform_ms, 0) / 1000
    if horizon_s <= 0 or units_left <= 0:
        return wait
    return max(wait, COST_PAGE * horizon_s / units_left)


# -- trouble ---------------------------------------------------------------------------------


class Trouble(Exception):
    """A failed step worth trying again later; `outcome` names it for `Sink.problem`."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome
        self.detail = detail


class ChatOver(Exception):
    """The live chat ended or is gone: look for the show's chat again."""


class _Stopped(Exception):
    """`stop` was set while waiting."""


def google_error(response: httpx.Response) -> tuple[str, str]:
    """(reason, message) of a Google API error body `{error: {code, message, errors: [{reason,
    domain, message}]}}`; ("", the start of the body) when it is not one."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, Mapping):
        return "", response.text[:200]
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors else {}
    reason = first.get("reason", "") if isinstance(first, Mapping) else ""
    return str(reason), str(error.get("message", ""))


def refusal(response: httpx.Response, what: str) -> Trouble | ChatOver:
    """What an error answer of the API means for the client."""
    status = response.status_code
    reason, message = google_error(response)
    said = f"{what}: {status} {reason or 'error'}: {message}"
    if reason in CHAT_OVER_REASONS:
        return ChatOver(said)
    if reason in QUOTA_REASONS:
        return Trouble("quota", f"{said} (YouTube's own count; waiting for the quota day to turn)")
    if reason in RATE_REASONS or status == 429:
        return Trouble("rate_limited", said)
    if status == 401 or reason in AUTH_REASONS or "API key not valid" in message:
        hint = "check BRIDGE_YOUTUBE_API_KEY or the OAuth client and refresh token"
        return Trouble("unauthorized", f"{said} ({hint})")
    if status >= 500:
        return Trouble("unavailable", said)
    if status == 403:
        return Trouble("forbidden", said)
    return Trouble("rejected", said)


# -- Redis state -----------------------------------------------------------------------------


class QuotaBudget:
    """Quota units used per Pacific-time day, in Redis (`livestage:bridge:youtube:quota:
    <project>:<day>`, `project` a digest of the OAuth client id or else the API key: quota
    belongs to the Google Cloud project, so every bridge using those credentials shares it).

    A Redis failure does not stop the chat: the call goes ahead uncounted (logged).
    """

    def __init__(
        self, redis: Redis, budget: int, clock: Callable[[], float], *, project: str
    ) -> None:
        self.redis = redis
        self.budget = budget
        self.clock = clock
        self.project = hashlib.sha256(project.encode()).hexdigest()[:16]
        self._warned_day = ""

    def key(self) -> str:
        return f"livestage:bridge:youtube:quota:{self.project}:{quota_day(self.clock())}"

    async def used(self) -> int:
        try:
            value = await self.redis.get(self.key())
        except RedisError as error:
            log.warning("YouTube quota: could not read today's count (%s)", error)
            return 0
        return int(value or 0)

    async def spend(self, units: int) -> None:
        """Count `units` for a call about to be made; `Trouble("quota")` when they would take
        the day past the budget (nothing counted then)."""
        key = self.key()
        try:
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.incrby(key, units)
                pipe.expire(key, KEY_TTL_S)
                total, _ = await pipe.execute()
            if total > self.budget:
                await self.redis.decrby(key, units)
        except RedisError as error:
            log.warning(
                "YouTube quota: could not count %d units (%s); calling anyway", units, error
            )
            return
        if total > self.budget:
            used = total - units
            raise Trouble(
                "quota",
                f"the daily budget is spent ({used} of {self.budget} units, "
                "BRIDGE_YOUTUBE_DAILY_QUOTA); YouTube chat waits until midnight Pacific time",
            )
        day = quota_day(self.clock())
        if total >= WARN_AT * self.budget and self._warned_day != day:
            self._warned_day = day
            log.warning(
                "YouTube quota: %d of %d units used today (Pacific time); polling slows down "
                "and stops at 100%% until midnight Pacific time (BRIDGE_YOUTUBE_DAILY_QUOTA)",
                total,
                self.budget,
            )

    async def exhaust(self) -> None:
        """YouTube itself said the quota is spent: count the day as used up."""
        key = self.key()
        with contextlib.suppress(RedisError):
            used = int(await self.redis.get(key) or 0)
            if used < self.budget:
                await self.redis.incrby(key, self.budget - used)
            await self.redis.expire(key, KEY_TTL_S)


class PageTokens:
    """Where each chat's next page starts (`livestage:bridge:youtube:{room}:page:<chat>`)."""

    def __init__(self, redis: Redis, room: str) -> None:
        self.redis = redis
        self.room = check_room(room)

    def key(self, chat_id: str) -> str:
        return f"livestage:bridge:youtube:{{{self.room}}}:page:{chat_id}"

    async def get(self, chat_id: str) -> str | None:
        try:
            value = await self.redis.get(self.key(chat_id))
        except RedisError as error:
            raise Trouble("storage", f"could not read the stored page token: {error}") from error
        return value.decode() if isinstance(value, bytes) else value

    async def put(self, chat_id: str, token: str) -> None:
        """Store the token; a Redis failure is logged and the client goes on (a restart would
        then hand over the last pages again, which the sink's de-duplication absorbs)."""
        try:
            await self.redis.set(self.key(chat_id), token, ex=KEY_TTL_S)
        except RedisError as error:
            log.warning("YouTube: could not store the page token (%s)", error)


# -- OAuth -----------------------------------------------------------------------------------


class OAuthToken:
    """An access token refreshed from the channel's refresh token (Google's token endpoint)."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, client_id: str, secret: str, refresh: str
    ) -> None:
        self._http = http
        self._url = url
        self._form = {
            "client_id": client_id,
            "client_secret": secret,
            "refresh_token": refresh,
            "grant_type": "refresh_token",
        }
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        """A valid access token (refreshed when missing or within a minute of expiring)."""
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at - 60:
                return self._token
            try:
                response = await self._http.post(self._url, data=self._form)
            except httpx.HTTPError as error:
                raise Trouble(
                    "unavailable", f"OAuth refresh: {type(error).__name__}: {error}"
                ) from error
            if response.status_code >= 500:
                raise Trouble("unavailable", f"OAuth refresh: {response.status_code}")
            body = _json(response)
            if response.status_code != 200 or not body.get("access_token"):
                raise Trouble(
                    "unauthorized",
                    f"OAuth refresh refused: {response.status_code} {body.get('error', '')}: "
                    f"{body.get('error_description', '')} (check BRIDGE_YOUTUBE_CLIENT_ID, "
                    "BRIDGE_YOUTUBE_CLIENT_SECRET and BRIDGE_YOUTUBE_REFRESH_TOKEN)",
                )
            self._token = str(body["access_token"])
            self._expires_at = time.monotonic() + float(body.get("expires_in", 3600))
            log.info("YouTube: OAuth access token refreshed")
            return self._token

    def forget(self, token: str) -> None:
        """The API refused `token` (expired or revoked): the next `get` refreshes."""
        if self._token == token:
            self._token = ""


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


# -- the client ------------------------------------------------------------------------------


class YouTubeChat:
    """One show's YouTube Live chat (see the module docstring)."""

    platform: Platform = PLATFORM

    def __init__(
        self,
        settings: YouTubeSettings,
        redis: Redis,
        room: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.room = check_room(room)
        self._clock = clock
        self._api_key = _secret(settings.api_key)
        self._http = httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/", timeout=settings.timeout_s
        )
        self._oauth = (
            OAuthToken(
                self._http,
                settings.token_url,
                settings.client_id,
                _secret(settings.client_secret),
                _secret(settings.refresh_token),
            )
            if oauth_configured(settings)
            else None
        )
        self.quota = QuotaBudget(
            redis, settings.daily_quota, clock, project=settings.client_id or self._api_key
        )
        self.pages = PageTokens(redis, room)
        self.chat_id: str | None = None
        """The live chat being followed (None while looking for it)."""
        self._ended: set[str] = set()
        self._own_ids: dict[str, None] = {}  # ids of our own replies (an ordered set)
        self._replies_in_flight: Counter[str] = Counter()
        self._sink: Sink | None = None
        self._stop = asyncio.Event()

    # -- PlatformChat ------------------------------------------------------------------------

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        """Follow the show's chat until `stop` is set; never raises for platform trouble."""
        self._sink, self._stop = sink, stop
        follow = asyncio.create_task(self._follow_chats(sink), name="youtube-chat")
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({follow, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (follow, stopped):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, _Stopped):
                await follow
            sink.connected(PLATFORM, False)

    def replies_off(self) -> str:
        if self._oauth is None:
            return (
                "replies need BRIDGE_YOUTUBE_CLIENT_ID, BRIDGE_YOUTUBE_CLIENT_SECRET and "
                "BRIDGE_YOUTUBE_REFRESH_TOKEN"
            )
        return ""

    async def reply(self, target: ReplyTarget, text: str) -> bool:
        """Post `text` in the chat being followed (50 quota units); False (logged) when
        there is no OAuth, no live chat, no quota, or YouTube refused it."""
        chat_id = self.chat_id
        if self._oauth is None:
            log.warning("YouTube reply not sent: replies need the OAuth client and refresh token")
            return False
        if chat_id is None:
            log.warning("YouTube reply not sent: no live chat is being followed")
            return False
        message = reply_text(text)
        body = {
            "snippet": {
                "liveChatId": chat_id,
                "type": "textMessageEvent",
                "textMessageDetails": {"messageText": message},
            }
        }
        self._replies_in_flight[message] += 1
        try:
            posted = await self._call(
                "POST",
                "liveChat/messages",
                cost=COST_REPLY,
                params={"part": "snippet"},
                body=body,
                oauth=True,
            )
        except (Trouble, ChatOver) as refused:
            log.warning("YouTube reply to %s not sent: %s", target.message_id, refused)
            return False
        finally:
            self._replies_in_flight[message] -= 1
            if self._replies_in_flight[message] <= 0:
                del self._replies_in_flight[message]
        if posted.get("id"):
            self._own_ids[str(posted["id"])] = None
            while len(self._own_ids) > 1000:
                del self._own_ids[next(iter(self._own_ids))]
        return True

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- following ---------------------------------------------------------------------------

    async def _follow_chats(self, sink: Sink) -> None:
        while True:
            chat_id = ""
            try:
                chat_id = await self._retrying(sink, self._find_chat)
                await self._follow(sink, chat_id)
            except ChatOver as over:
                self._ended.add(chat_id)
                log.info("YouTube: live chat %s is over (%s); looking for the next", chat_id, over)
            except _Stopped:
                raise
            except Exception as error:  # a bug or an answer we cannot read: start over, later
                log.exception("YouTube: following the live chat failed (%s)", chat_id or "-")
                sink.problem(PLATFORM, "error", f"{type(error).__name__}: {error}")
                await self._pause(self.settings.retry_max_s)
            self.chat_id = None
            sink.connected(PLATFORM, False)

    async def _find_chat(self) -> str:
        settings = self.settings
        if settings.video_id:
            found = await self._call(
                "GET",
                "videos",
                cost=COST_LOOKUP,
                params={"part": "liveStreamingDetails", "id": settings.video_id},
            )
            items = found.get("items") or []
            if not items:
                raise Trouble(
                    "not_live", f"no video {settings.video_id!r} (check BRIDGE_YOUTUBE_VIDEO_ID)"
                )
            chat_id = (items[0].get("liveStreamingDetails") or {}).get("activeLiveChatId")
            where = f"video {settings.video_id}"
        else:
            found = await self._call(
                "GET",
                "liveBroadcasts",
                cost=COST_LOOKUP,
                params={"part": "snippet", "broadcastStatus": "active", "broadcastType": "all"},
                oauth=True,
            )
            snippets = [item.get("snippet") or {} for item in found.get("items") or []]
            chats = [
                s.get("liveChatId") for s in snippets if s.get("channelId") == settings.channel_id
            ]
            chat_id = next((chat for chat in chats if chat), None)
            where = f"channel {settings.channel_id}"
        if not chat_id or chat_id in self._ended:
            raise Trouble(
                "not_live",
                f"{where} has no live chat yet; looking again every {settings.find_interval_s:g} s",
            )
        return str(chat_id)

    async def _follow(self, sink: Sink, chat_id: str) -> None:
        token = await self._retrying(sink, functools.partial(self.pages.get, chat_id))
        self.chat_id = chat_id
        first = token is None
        log.info(
            "YouTube: following live chat %s for room %s (%s)",
            chat_id,
            self.room,
            "first start" if first else "resuming from the stored page token",
        )
        while True:
            page = await self._retrying(sink, functools.partial(self._page, chat_id, token))
            fetched_at = self._clock()
            sink.connected(PLATFORM, True)
            now_ms = round(fetched_at * 1000)
            actions = [a for a in (read_item(i, now_ms) for i in page.get("items") or []) if a]
            if first:
                actions = self._without_old_backlog(actions, now_ms)
            await self._deliver(sink, actions)
            next_token = page.get("nextPageToken")
            if next_token:
                await self.pages.put(chat_id, str(next_token))
                token = str(next_token)
            first = False
            if page.get("offlineAt") or any(isinstance(a, ChatEnded) for a in actions):
                raise ChatOver("the broadcast ended")
            # the interval runs from the fetch: handing the page over is part of the wait
            wait_s = await self._next_wait(page) - (self._clock() - fetched_at)
            await self._pause(max(wait_s, 0.0))

    async def _page(self, chat_id: str, token: str | None) -> dict[str, Any]:
        params = {"liveChatId": chat_id, "part": "snippet,authorDetails"}
        if token:
            params["pageToken"] = token
        return await self._call("GET", "liveChat/messages", cost=COST_PAGE, params=params)

    def _without_old_backlog(self, actions: list[ChatAction], now_ms: int) -> list[ChatAction]:
        oldest_ms = now_ms - round(self.settings.backlog_s * 1000)
        kept = [
            a
            for a in actions
            if not isinstance(a, PlatformMessage) or a.published_at_ms >= oldest_ms
        ]
        if len(kept) < len(actions):
            log.info(
                "YouTube: first start for this chat: %d backlog messages older than %g s "
                "not handed over (BRIDGE_YOUTUBE_BACKLOG_S)",
                len(actions) - len(kept),
                self.settings.backlog_s,
            )
        return kept

    async def _deliver(self, sink: Sink, actions: list[ChatAction]) -> None:
        """Hand the page's items to the sink in order; a `BusUnavailable` retries from the item
        that failed (never skips one)."""
        done = 0

        async def rest() -> None:
            nonlocal done
            while done < len(actions):
                await self._act(sink, actions[done])
                done += 1

        await self._retrying(sink, rest)

    async def _act(self, sink: Sink, action: ChatAction) -> None:
        if isinstance(action, PlatformMessage):
            if action.message_id in self._own_ids or action.text in self._replies_in_flight:
                return  # our own reply coming back
            await sink.submit(action)
        elif isinstance(action, RemoveMessage):
            await sink.remove_message(PLATFORM, action.message_id)
        elif isinstance(action, RemoveUser):
            await sink.remove_user(PLATFORM, action.user_id)

    async def _next_wait(self, page: Mapping[str, Any]) -> float:
        polling_ms = page.get("pollingIntervalMillis")
        platform_ms = int(polling_ms) if isinstance(polling_ms, int | float) else DEFAULT_POLL_MS
        if self.settings.budget_hours <= 0:
            return platform_ms / 1000
        horizon_s = min(self.settings.budget_hours * 3600, seconds_to_next_quota_day(self._clock()))
        units_left = self.quota.budget - await self.quota.used()
        return poll_interval_s(platform_ms, units_left=units_left, horizon_s=horizon_s)

    # -- calls -------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        *,
        cost: int,
        params: dict[str, str],
        body: dict[str, Any] | None = None,
        oauth: bool = False,
    ) -> dict[str, Any]:
        """One API call, counted against the quota; raises `Trouble` or `ChatOver` when it fails.

        Reads use the API key when there is one, else the OAuth token; an access token the API
        refuses (401: expired, revoked) is refreshed and the call made once more.
        """
        await self.quota.spend(cost)
        use_oauth = oauth or not self._api_key
        for attempt in (1, 2):
            headers: dict[str, str] = {}
            token = ""
            if use_oauth:
                if self._oauth is None:
                    raise Trouble(
                        "unauthorized", f"{path} needs the OAuth client and refresh token"
                    )
                token = await self._oauth.get()
                headers["Authorization"] = f"Bearer {token}"
            else:
                headers["X-Goog-Api-Key"] = self._api_key
            try:
                response = await self._http.request(
                    method, path, params=params, json=body, headers=headers
                )
            except httpx.HTTPError as error:
                raise Trouble("unavailable", f"{path}: {type(error).__name__}: {error}") from error
            if response.status_code == 401 and self._oauth is not None and token and attempt == 1:
                self._oauth.forget(token)
                continue
            break
        if response.is_success:
            answer = _json(response)
            if not answer:
                raise Trouble("unavailable", f"{path}: {response.status_code} without a JSON body")
            return answer
        refused = refusal(response, path)
        if isinstance(refused, Trouble) and refused.outcome == "quota":
            await self.quota.exhaust()
        raise refused

    # -- waiting -----------------------------------------------------------------------------

    async def _retrying(self, sink: Sink, step: Callable[[], Awaitable[T]]) -> T:
        """Run `step` until it succeeds, retrying `Trouble` and `BusUnavailable` (reported to the
        sink) with random exponential backoff; `ChatOver` and `_Stopped` go through."""
        backoff = wait_random_exponential(
            multiplier=self.settings.retry_min_s, max=self.settings.retry_max_s
        )

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, Trouble) and error.outcome == "quota":
                until_tomorrow = seconds_to_next_quota_day(self._clock()) + 1
                return min(until_tomorrow, self.settings.retry_max_s)
            if isinstance(error, Trouble) and error.outcome == "not_live":
                return self.settings.find_interval_s
            return float(backoff(state))

        def report(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, Trouble):
                sink.problem(PLATFORM, error.outcome, error.detail)
                sink.connected(PLATFORM, False)
            else:
                log.debug("YouTube: the sink could not take an item (%s); retrying", error)

        retrying = AsyncRetrying(
            retry=retry_if_exception_type((Trouble, BusUnavailable)),
            wait=wait,
            sleep=self._pause,
            before_sleep=report,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                result = await step()
        return result

    async def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or raise `_Stopped` as soon as `stop` is set."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), max(seconds, 0))
        if self._stop.is_set():
            raise _Stopped


# -- configuration ---------------------------------------------------------------------------


def _secret(value: object) -> str:
    return value.get_secret_value() if hasattr(value, "get_secret_value") else ""


def oauth_configured(settings: YouTubeSettings) -> bool:
    return bool(
        settings.client_id and _secret(settings.client_secret) and _secret(settings.refresh_token)
    )


def missing_settings(settings: YouTubeSettings) -> str | None:
    """What a half configuration lacks, said as the variables to set (None when complete)."""
    oauth = {
        "BRIDGE_YOUTUBE_CLIENT_ID": settings.client_id,
        "BRIDGE_YOUTUBE_CLIENT_SECRET": _secret(settings.client_secret),
        "BRIDGE_YOUTUBE_REFRESH_TOKEN": _secret(settings.refresh_token),
    }
    oauth_missing = [name for name, value in oauth.items() if not value]
    if settings.video_id and settings.channel_id:
        return "set BRIDGE_YOUTUBE_VIDEO_ID or BRIDGE_YOUTUBE_CHANNEL_ID, not both"
    if 0 < len(oauth_missing) < len(oauth):
        return f"the OAuth client is half configured: set {', '.join(oauth_missing)}"
    if settings.channel_id and oauth_missing:
        return (
            "BRIDGE_YOUTUBE_CHANNEL_ID finds the channel's live broadcast with its OAuth "
            f"client: set {', '.join(oauth_missing)}"
        )
    if settings.video_id and not _secret(settings.api_key) and oauth_missing:
        return (
            "BRIDGE_YOUTUBE_VIDEO_ID needs BRIDGE_YOUTUBE_API_KEY (or the OAuth client: "
            f"{', '.join(oauth_missing)})"
        )
    return None


def from_settings(
    redis: Redis,
    *,
    settings: YouTubeSettings | None = None,
    room: str | None = None,
    clock: Callable[[], float] = time.time,
) -> YouTubeChat | None:
    """The show's YouTube chat from `BRIDGE_YOUTUBE_*`: None when no video or channel is set,
    a ValueError naming what is missing when half configured. `room`: `BRIDGE_ROOM`, else
    `LIVEKIT_ROOM`."""
    settings = settings if settings is not None else YouTubeSettings()
    if not settings.video_id and not settings.channel_id:
        return None
    missing = missing_settings(settings)
    if missing is not None:
        raise ValueError(f"YouTube chat is half configured: {missing}")
    room = room or BridgeSettings().room or LiveKitSettings().room
    return YouTubeChat(settings, redis, room, clock=clock)
