"""A local double of the YouTube Data API v3 live chat endpoints and Google's OAuth token endpoint.

Point a client at `double.base_url` (`http://127.0.0.1:P/youtube/v3`, `BRIDGE_YOUTUBE_BASE_URL`)
and `double.token_url` (`http://127.0.0.1:P/token`, `BRIDGE_YOUTUBE_TOKEN_URL`). It serves, in
the real resources' shapes (`kind`, `etag`, `items`, `pageInfo`):

- `GET /youtube/v3/videos?part=liveStreamingDetails&id=` → `liveStreamingDetails.activeLiveChatId`
  (absent before `go_live` and after `end`);
- `GET /youtube/v3/liveBroadcasts?part=snippet&broadcastStatus=active` (OAuth) → the token's
  channel's live broadcasts with `snippet.liveChatId`; more than one filter (`mine` beside
  `broadcastStatus`) is 400 `incompatibleParameters`, as the API says;
- `GET /youtube/v3/liveChat/messages?liveChatId=&part=snippet,authorDetails&pageToken=` → pages
  of at most `page_size` items with `nextPageToken` and `pollingIntervalMillis` (0 while more
  items wait, `polling_interval_ms` otherwise; without a token only the newest page, like the
  API's "recent messages"), `offlineAt` once the broadcast ended (then 403 `liveChatEnded`);
- `POST /youtube/v3/liveChat/messages?part=snippet` (OAuth) → a new `textMessageEvent` by the
  token's channel, kept in `inserted` and shown in the chat like any message;
- `POST /token` (`grant_type=refresh_token`) → `{access_token, expires_in, scope, token_type}`,
  400 `invalid_grant` for an unknown refresh token or client.

Auth: an API key in `key=` or `X-Goog-Api-Key` (a wrong one is 400 `keyInvalid`, "API key not
valid"), or `Authorization: Bearer <access token>` (unknown or expired: 401 `authError`). Quota
units are counted as YouTube counts them (`units_used`; list 5, insert 50, lookups 1); past
`quota_limit` every call is 403 `quotaExceeded`. Errors use Google's body shape
`{error: {code, message, errors: [{message, domain, reason}], status}}`.

Tests script the chat: `go_live(video_id, channel_id)` returns the chat id; `post`, `super_chat`,
`super_sticker`, `new_member`, `milestone`, `gift_memberships`, `delete_message`, `ban` add items;
`end(video_id)` ends the broadcast. Faults: `fail(Fault.HTTP_500 | HTTP_401 | HANG, times=)` for
the next requests; `refuse("quotaExceeded" | "rateLimitExceeded" | "liveChatEnded" |
"liveChatNotFound" | "forbidden", times=)` for the next API calls (not the token endpoint);
`expire_access_tokens()`. Every request is in `requests` (with `received_at`, for polling
intervals); `chat_requests` are the `liveChatMessages.list` calls and `pages` its answers.
"""

from __future__ import annotations

import base64
import datetime
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from aiohttp import web

from tests.doubles.base import DoubleServer, Fault, RecordedRequest, serve_forever

API = "/youtube/v3"
COSTS = {"videos": 1, "liveBroadcasts": 1, "list": 5, "insert": 50}

# Google's answers for the reasons tests can script: (status, domain, message)
REASONS: dict[str, tuple[int, str, str]] = {
    "quotaExceeded": (
        403,
        "youtube.quota",
        "The request cannot be completed because you have exceeded your "
        '<a href="/youtube/v3/getting-started#quota">quota</a>.',
    ),
    "rateLimitExceeded": (
        403,
        "youtube.liveChat",
        "The request was sent too soon after the previous one. This error occurs when API "
        "requests to retrieve messages are being sent more frequently than YouTube's refresh "
        "rates, which unnecessarily wastes bandwidth and quota.",
    ),
    "liveChatEnded": (403, "youtube.liveChat", "The live chat is no longer live."),
    "liveChatDisabled": (403, "youtube.liveChat", "Live chat is not enabled for the broadcast."),
    "liveChatNotFound": (
        404,
        "youtube.liveChat",
        "The live chat that you are trying to retrieve cannot be found.",
    ),
    "forbidden": (403, "youtube.liveChat", "You do not have the permissions required."),
    "backendError": (500, "global", "Backend Error"),
    "authError": (401, "global", "Invalid Credentials"),
    "keyInvalid": (400, "global", "API key not valid. Please pass a valid API key."),
    "incompatibleParameters": (400, "youtube.parameter", "Incompatible parameters specified."),
    "invalidValue": (400, "youtube.parameter", "Invalid value."),
}
STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    500: "INTERNAL",
}


def google_error(reason: str, message: str | None = None) -> web.Response:
    """An error answer in Google's shape for `reason` (one of `REASONS`)."""
    status, domain, default = REASONS[reason]
    text = message or default
    body = {
        "error": {
            "code": status,
            "message": text,
            "errors": [{"message": text, "domain": domain, "reason": reason}],
            "status": STATUS.get(status, "UNKNOWN"),
        }
    }
    return web.json_response(body, status=status)


def rfc3339(epoch_s: float) -> str:
    return datetime.datetime.fromtimestamp(epoch_s, datetime.UTC).isoformat(timespec="microseconds")


def _etag() -> str:
    return secrets.token_urlsafe(20)


@dataclass(frozen=True)
class Author:
    """A chat author as `authorDetails` shows them."""

    channel_id: str
    name: str
    owner: bool = False
    moderator: bool = False
    sponsor: bool = False
    verified: bool = False

    def details(self) -> dict[str, Any]:
        return {
            "channelId": self.channel_id,
            "channelUrl": f"http://www.youtube.com/channel/{self.channel_id}",
            "displayName": self.name,
            "profileImageUrl": f"https://yt3.ggpht.example/{self.channel_id}.jpg",
            "isVerified": self.verified,
            "isChatOwner": self.owner,
            "isChatSponsor": self.sponsor,
            "isChatModerator": self.moderator,
        }


VIEWER = Author("UCviewer000000000000000a", "Marta")
MODERATOR = Author("UCmoderator0000000000000", "Mod Max", moderator=True)


@dataclass
class Chat:
    id: str
    video_id: str
    channel_id: str
    items: list[dict[str, Any]] = field(default_factory=list)
    deleted: set[str] = field(default_factory=set)
    """Ids of deleted messages: no longer served (page tokens are positions in `items`)."""
    ended_at: float | None = None


@dataclass
class OAuthGrant:
    client_id: str
    client_secret: str
    channel_id: str
    access_tokens: set[str] = field(default_factory=set)


class YouTubeDouble(DoubleServer):
    supported_faults: ClassVar[frozenset[Fault]] = frozenset(
        {Fault.HTTP_500, Fault.HTTP_401, Fault.HANG}
    )
    name: ClassVar[str] = "youtube-double"

    def __init__(
        self,
        *,
        api_key: str | None = "test-youtube-key",
        polling_interval_ms: int = 50,
        page_size: int = 500,
        quota_limit: int | None = None,
        port: int = 0,
        fault: Fault | None = None,
    ) -> None:
        """`api_key`: the one accepted key (None: any); `polling_interval_ms`: what pages ask
        the client to wait; `page_size`: items per page (the API's `maxResults`, 500 by default);
        `quota_limit`: units before every call is 403 `quotaExceeded` (None: no limit)."""
        super().__init__(port=port, fault=fault)
        self.youtube_api_key = api_key
        self.polling_interval_ms = polling_interval_ms
        self.page_size = page_size
        self.quota_limit = quota_limit
        self.units_used = 0
        self.chats: dict[str, Chat] = {}
        self.videos: dict[str, str | None] = {}  # video id -> its live chat (None: not live)
        self.grants: dict[str, OAuthGrant] = {}  # refresh token -> grant
        self.inserted: list[dict[str, Any]] = []
        self.pages: list[dict[str, Any]] = []
        """Every `liveChatMessages.list` answer (200) in order, next to `chat_requests`."""
        self._refusals: list[str] = []
        self._refuse_forever: str | None = None
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"{self.url}{API}"

    @property
    def token_url(self) -> str:
        return f"{self.url}/token"

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{API}/videos", self._videos),
            web.get(f"{API}/liveBroadcasts", self._broadcasts),
            web.get(f"{API}/liveChat/messages", self._list),
            web.post(f"{API}/liveChat/messages", self._insert),
            web.post("/token", self._token),
        ]

    # -- scripting ---------------------------------------------------------------------------

    def add_oauth(
        self,
        *,
        channel_id: str,
        client_id: str = "client-1",
        client_secret: str = "secret-1",
        refresh_token: str = "refresh-1",
    ) -> None:
        """Accept `refresh_token` (for that client) as the account of `channel_id`."""
        self.grants[refresh_token] = OAuthGrant(client_id, client_secret, channel_id)

    def scheduled(self, video_id: str) -> None:
        """A broadcast that exists but is not live yet (no active chat)."""
        self.videos.setdefault(video_id, None)

    def go_live(self, video_id: str, *, channel_id: str = "UCbroadcaster00000000000") -> str:
        """Start the broadcast `video_id` (of `channel_id`); returns its live chat id."""
        chat_id = f"Cg0KC{secrets.token_urlsafe(18)}"
        self.chats[chat_id] = Chat(chat_id, video_id, channel_id)
        self.videos[video_id] = chat_id
        self.notify()
        return chat_id

    def end(self, video_id: str) -> None:
        """End the broadcast: a `chatEndedEvent`, then `offlineAt`, then 403 `liveChatEnded`."""
        chat = self._chat_of(video_id)
        self._add(chat, "chatEndedEvent", {}, None)
        chat.ended_at = time.time()
        self.videos[video_id] = None

    def post(
        self,
        video_id: str,
        text: str,
        *,
        author: Author = VIEWER,
        published_at: float | None = None,
    ) -> dict[str, Any]:
        """A viewer's text message; returns the item."""
        return self._add(
            video_id,
            "textMessageEvent",
            {"messageText": text},
            author,
            display=text,
            published_at=published_at,
        )

    def super_chat(
        self, video_id: str, amount: str, comment: str = "", *, author: Author = VIEWER
    ) -> dict[str, Any]:
        details = {
            "amountMicros": "5000000",
            "currency": "USD",
            "amountDisplayString": amount,
            "tier": 2,
        }
        if comment:
            details["userComment"] = comment
        display = f'{amount} from {author.name}: "{comment}"' if comment else amount
        return self._add(video_id, "superChatEvent", details, author, display=display)

    def super_sticker(
        self, video_id: str, amount: str, *, author: Author = VIEWER
    ) -> dict[str, Any]:
        details = {
            "superStickerMetadata": {
                "stickerId": "sticker-1",
                "altText": "Happy cat",
                "language": "en",
            },
            "amountMicros": "2000000",
            "currency": "USD",
            "amountDisplayString": amount,
            "tier": 1,
        }
        return self._add(
            video_id,
            "superStickerEvent",
            details,
            author,
            display=f"Super Sticker of {amount} from {author.name}",
        )

    def new_member(self, video_id: str, level: str, *, author: Author = VIEWER) -> dict[str, Any]:
        details = {"memberLevelName": level, "isUpgrade": False}
        return self._add(
            video_id, "newSponsorEvent", details, author, display=f"Welcome to {level}!"
        )

    def milestone(
        self, video_id: str, months: int, comment: str = "", *, author: Author = VIEWER
    ) -> dict[str, Any]:
        details: dict[str, Any] = {"memberLevelName": "Member", "memberMonth": months}
        if comment:
            details["userComment"] = comment
        return self._add(video_id, "memberMilestoneChatEvent", details, author, display=comment)

    def gift_memberships(
        self, video_id: str, count: int, *, author: Author = VIEWER
    ) -> dict[str, Any]:
        details = {"giftMembershipsCount": count, "giftMembershipsLevelName": "Member"}
        return self._add(
            video_id,
            "membershipGiftingEvent",
            details,
            author,
            display=f"Gifted {count} memberships",
        )

    def delete_message(
        self, video_id: str, message_id: str, *, by: Author = MODERATOR
    ) -> dict[str, Any]:
        """The channel's moderator `by` deletes `message_id`."""
        chat = self._chat_of(video_id)
        chat.deleted.add(message_id)
        return self._add(
            chat, "messageDeletedEvent", {"deletedMessageId": message_id}, by, display_content=False
        )

    def ban(
        self, video_id: str, user: Author, *, seconds: int | None = None, by: Author = MODERATOR
    ) -> dict[str, Any]:
        """The channel's moderator `by` bans `user` (for `seconds`: a timeout)."""
        details: dict[str, Any] = {
            "bannedUserDetails": {
                k: v
                for k, v in user.details().items()
                if k in ("channelId", "channelUrl", "displayName", "profileImageUrl")
            },
            "banType": "temporary" if seconds else "permanent",
        }
        if seconds:
            details["banDurationSeconds"] = seconds
        return self._add(video_id, "userBannedEvent", details, by, display_content=False)

    def refuse(self, reason: str, *, times: int | None = 1) -> None:
        """Answer the next `times` API calls (every one until `heal()` with None) with Google's
        error for `reason`."""
        if reason not in REASONS:
            raise ValueError(f"unknown reason {reason!r}; known: {', '.join(REASONS)}")
        if times is None:
            self._refuse_forever = reason
        else:
            self._refusals.extend([reason] * times)

    def heal(self) -> None:
        super().heal()
        self._refusals.clear()
        self._refuse_forever = None

    def expire_access_tokens(self) -> None:
        """Every access token issued so far stops working (401 until refreshed)."""
        for grant in self.grants.values():
            grant.access_tokens.clear()

    # -- what was asked ----------------------------------------------------------------------

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests_to(f"{API}/liveChat/messages") if r.method == "GET"]

    @property
    def token_requests(self) -> list[RecordedRequest]:
        return self.requests_to("/token")

    # -- internals ---------------------------------------------------------------------------

    def _chat_of(self, video_id: str) -> Chat:
        for chat in self.chats.values():
            if chat.video_id == video_id and chat.ended_at is None:
                return chat
        raise KeyError(f"video {video_id!r} is not live: go_live() first")

    def _add(
        self,
        where: Chat | str,
        kind: str,
        details: dict[str, Any],
        author: Author | None,
        *,
        display: str = "",
        display_content: bool = True,
        published_at: float | None = None,
    ) -> dict[str, Any]:
        """Add an item of `kind` to the chat (or the live chat of the video id `where`), its
        details under the API's field for that kind (`superChatEvent` → `superChatDetails`)."""
        chat = where if isinstance(where, Chat) else self._chat_of(where)
        item_id = f"LCC.{next(self._ids):06d}{secrets.token_hex(4)}"
        author = author or Author(chat.channel_id, "Channel", owner=True)
        snippet: dict[str, Any] = {
            "type": kind,
            "liveChatId": chat.id,
            "authorChannelId": author.channel_id,
            "publishedAt": rfc3339(published_at if published_at is not None else time.time()),
            "hasDisplayContent": display_content,
        }
        if details:
            snippet[f"{kind.removesuffix('Event')}Details"] = details
        if display_content:
            snippet["displayMessage"] = display
        item = {
            "kind": "youtube#liveChatMessage",
            "etag": _etag(),
            "id": item_id,
            "snippet": snippet,
            "authorDetails": author.details(),
        }
        chat.items.append(item)
        self.notify()
        return item

    def _channel_of_bearer(self, entry: RecordedRequest) -> str | None:
        token = entry.bearer
        for grant in self.grants.values():
            if token and token in grant.access_tokens:
                return grant.channel_id
        return None

    async def _refused(
        self, request: web.Request, entry: RecordedRequest, cost: int, *, oauth: bool
    ) -> web.StreamResponse | None:
        """The answer to a fault, a scripted refusal, bad auth or spent quota (None: go on)."""
        if entry.fault is Fault.HANG:
            await self.hang()
            return web.Response(status=503)
        if entry.fault is Fault.HTTP_500:
            return google_error("backendError")
        if entry.fault is Fault.HTTP_401:
            return google_error("authError", "Request had invalid authentication credentials.")
        if entry.bearer is not None:
            if self._channel_of_bearer(entry) is None:
                return google_error("authError", "Request had invalid authentication credentials.")
        elif oauth:
            return google_error("authError", "Login Required.")
        else:
            key = request.query.get("key") or request.headers.get("X-Goog-Api-Key")
            if key is None:
                return google_error(
                    "forbidden", "The request is missing a valid API key."
                )  # real: 403 PERMISSION_DENIED
            if self.youtube_api_key is not None and key != self.youtube_api_key:
                return google_error("keyInvalid")
        self.units_used += cost
        if self.quota_limit is not None and self.units_used > self.quota_limit:
            return google_error("quotaExceeded")
        reason = self._refusals.pop(0) if self._refusals else self._refuse_forever
        if reason is not None:
            return google_error(reason)
        return None

    async def _videos(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if refused := await self._refused(request, entry, COSTS["videos"], oauth=False):
            return refused
        items = []
        for video_id in request.query.get("id", "").split(","):
            if video_id not in self.videos:
                continue
            chat_id = self.videos[video_id]
            details: dict[str, Any] = {"scheduledStartTime": rfc3339(time.time() - 60)}
            if chat_id is not None:
                details |= {
                    "actualStartTime": rfc3339(time.time() - 30),
                    "concurrentViewers": "12",
                    "activeLiveChatId": chat_id,
                }
            items.append(
                {
                    "kind": "youtube#video",
                    "etag": _etag(),
                    "id": video_id,
                    "liveStreamingDetails": details,
                }
            )
        return web.json_response(
            {
                "kind": "youtube#videoListResponse",
                "etag": _etag(),
                "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
            }
        )

    async def _broadcasts(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if refused := await self._refused(request, entry, COSTS["liveBroadcasts"], oauth=True):
            return refused
        filters = [name for name in ("broadcastStatus", "id", "mine") if name in request.query]
        if len(filters) != 1:
            return google_error(
                "incompatibleParameters",
                "Incompatible parameters specified: exactly one of broadcastStatus, id, mine.",
            )
        channel = self._channel_of_bearer(entry)
        status = request.query.get("broadcastStatus", "all")
        items = []
        for chat in self.chats.values():
            live = chat.ended_at is None
            if chat.channel_id != channel or (status == "active" and not live):
                continue
            items.append(
                {
                    "kind": "youtube#liveBroadcast",
                    "etag": _etag(),
                    "id": chat.video_id,
                    "snippet": {
                        "publishedAt": rfc3339(time.time() - 600),
                        "channelId": chat.channel_id,
                        "title": f"Live {chat.video_id}",
                        "description": "",
                        "actualStartTime": rfc3339(time.time() - 30),
                        "liveChatId": chat.id,
                        "isDefaultBroadcast": False,
                    },
                }
            )
        return web.json_response(
            {
                "kind": "youtube#liveBroadcastListResponse",
                "etag": _etag(),
                "items": items,
                "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
            }
        )

    async def _list(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if refused := await self._refused(request, entry, COSTS["list"], oauth=False):
            return refused
        chat = self.chats.get(request.query.get("liveChatId", ""))
        if chat is None:
            return google_error("liveChatNotFound")
        token = request.query.get("pageToken")
        if chat.ended_at is not None and token is not None and _position(token) >= len(chat.items):
            return google_error("liveChatEnded")
        size = min(int(request.query.get("maxResults", self.page_size)), self.page_size)
        start = _position(token) if token else max(len(chat.items) - size, 0)
        served = chat.items[start : start + size]
        end = start + len(served)
        page = [item for item in served if item["id"] not in chat.deleted]
        body: dict[str, Any] = {
            "kind": "youtube#liveChatMessageListResponse",
            "etag": _etag(),
            "pollingIntervalMillis": 0 if end < len(chat.items) else self.polling_interval_ms,
            "pageInfo": {"totalResults": len(page), "resultsPerPage": size},
            "nextPageToken": _token(end),
            "items": page,
        }
        if chat.ended_at is not None:
            body["offlineAt"] = rfc3339(chat.ended_at)
        self.pages.append(body)
        return web.json_response(body)

    async def _insert(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if refused := await self._refused(request, entry, COSTS["insert"], oauth=True):
            return refused
        snippet = (entry.json or {}).get("snippet") or {}
        chat = self.chats.get(snippet.get("liveChatId", ""))
        if chat is None:
            return google_error("liveChatNotFound")
        if chat.ended_at is not None:
            return google_error("liveChatEnded")
        text = (snippet.get("textMessageDetails") or {}).get("messageText", "")
        if snippet.get("type") != "textMessageEvent" or not text or len(text) > 200:
            return google_error(
                "invalidValue",
                "The message text is missing, too long or the type is not textMessageEvent.",
            )
        channel = self._channel_of_bearer(entry) or chat.channel_id
        author = Author(channel, "Livestage Host", owner=channel == chat.channel_id)
        item = self._add(chat, "textMessageEvent", {"messageText": text}, author, display=text)
        self.inserted.append(item)
        return web.json_response(item)

    async def _token(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if entry.fault is Fault.HANG:
            await self.hang()
        if entry.fault is not None:
            return web.json_response({"error": "internal_failure"}, status=500)
        form = await request.post()
        grant = self.grants.get(str(form.get("refresh_token", "")))
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"error": "unsupported_grant_type"}, status=400)
        if grant is None or (form.get("client_id"), form.get("client_secret")) != (
            grant.client_id,
            grant.client_secret,
        ):
            return web.json_response(
                {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                },
                status=400,
            )
        access = f"ya29.{secrets.token_urlsafe(24)}"
        grant.access_tokens.add(access)
        return web.json_response(
            {
                "access_token": access,
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": "https://www.googleapis.com/auth/youtube.force-ssl",
            }
        )


def _token(position: int) -> str:
    return base64.urlsafe_b64encode(f"pos:{position}".encode()).decode().rstrip("=")


def _position(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        return int(raw.removeprefix("pos:"))
    except (ValueError, UnicodeDecodeError):
        return 0


if __name__ == "__main__":
    serve_forever(lambda port: YouTubeDouble(port=port))
