"""A local double of Twitch for a chat bot: EventSub over WebSocket, Helix and OAuth.

Point a client at it with its three base URLs (`double.env` has them as `BRIDGE_TWITCH_*`
variables, with the channel and credentials it accepts):

| real | double |
|---|---|
| `wss://eventsub.wss.twitch.tv/ws` | `eventsub_url` = `ws://127.0.0.1:P/ws` |
| `https://api.twitch.tv/helix` | `api_url` = `http://127.0.0.1:P/helix` |
| `https://id.twitch.tv/oauth2` | `auth_url` = `http://127.0.0.1:P/oauth2` |

**EventSub WebSocket**, as Twitch documents it: every message is `{metadata: {message_id,
message_type, message_timestamp[, subscription_type, subscription_version]}, payload}`. A new
socket gets `session_welcome` (`payload.session.{id, status, keepalive_timeout_seconds,
reconnect_url, connected_at}`); after `keepalive_timeout_seconds / 2` of silence a
`session_keepalive` (`go_silent()` stops them on the sessions open now); a socket with nothing
subscribed `unused_close_s` after its welcome is closed with 4003; a client that sends anything
is closed with 4001. When a socket closes its session ends and its subscriptions are deleted.
`reconnect()` sends `session_reconnect` with `reconnect_url` = `/ws/reconnect/<session id>`
(a second URL); notifications keep going to the old socket until the new one has its welcome
(after `reconnect_welcome_delay_s`), then the old socket is closed and the subscriptions carry
over; `redeliver_after_reconnect = N` sends the last N notifications again on the new socket
(Twitch may deliver a message more than once). `drop()` aborts every socket's TCP connection
(no close frame). `revoke(type, status)` sends `revocation` and deletes that subscription.
Unlike Twitch (10-600 s), `keepalive_timeout_seconds` may be as short as a test needs.

**Helix**: `GET /users?login=`, `POST /eventsub/subscriptions` (202; checks the bearer token,
`Client-Id`, the scopes, that `condition.user_id` is the token's user and that the session is
connected; 409 for a repeat), `POST /chat/messages` (`{broadcaster_id, sender_id, message,
reply_parent_message_id}`; at most `chat_limit` per `chat_window_s` per sender, else 429;
`drop_next_chat = "code"` answers `is_sent: false`; a sent message also comes back as a
`channel.chat.message` notification, as on Twitch). Errors are Twitch's `{error, status,
message}`.

**OAuth**: `GET /oauth2/validate` (`Authorization: OAuth <token>` → `{client_id, login, scopes,
user_id, expires_in}`, 401 for an unknown or expired token), `POST /oauth2/token`
(`grant_type=refresh_token` → a new access and refresh token; 400 for a bad refresh token or
while `refuse_refresh` is set). `expire_access_tokens()` makes every issued access token
expire.

Tests make the audience act with `chat()`, `delete_message()`, `clear_user()` and `notice()`
(subscriptions). Records: `requests` (every HTTP request and socket upgrade), `sockets`
(each socket: path, session id), `subscriptions` (live, per session), `created` (every
subscription created), `chat_sent` (every message the bot posted), `tokens_issued`.
Faults: `HTTP_500` and `HTTP_401` (Helix, OAuth and the socket upgrade).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.doubles.base import DoubleServer, Fault, RecordedRequest, serve_forever

SUBSCRIPTION_TYPES = frozenset(
    {
        "channel.chat.message",
        "channel.chat.message_delete",
        "channel.chat.clear_user_messages",
        "channel.chat.notification",
    }
)
READ_SCOPE, WRITE_SCOPE = "user:read:chat", "user:write:chat"


def twitch_timestamp() -> str:
    """RFC 3339 with nanoseconds, as Twitch writes them: 2023-07-19T14:56:51.634234626Z."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{secrets.randbelow(1000):03d}Z"


def _id() -> str:
    return secrets.token_hex(16)


@dataclass(frozen=True)
class Chatter:
    """Someone in the channel's chat."""

    user_id: str
    name: str

    @property
    def login(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class SocketRecord:
    path: str
    session_id: str


@dataclass
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class _Session:
    id: str
    socket: _Socket
    welcomed_at: float = 0.0
    moving: bool = False
    keepalives: bool = True
    subscriptions: dict[str, dict[str, Any]] = field(default_factory=dict)
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=50))
    last_sent: float = field(default_factory=time.monotonic)


@dataclass
class _Token:
    user_id: str
    login: str
    scopes: tuple[str, ...]
    expired: bool = False


class TwitchDouble(DoubleServer):
    supported_faults: ClassVar[frozenset[Fault]] = frozenset({Fault.HTTP_500, Fault.HTTP_401})
    name: ClassVar[str] = "twitch-double"

    def __init__(
        self,
        *,
        channel: str = "livestage_show",
        broadcaster_id: str = "100200300",
        bot_login: str = "livestage_bot",
        bot_id: str = "400500600",
        scopes: tuple[str, ...] = (READ_SCOPE, WRITE_SCOPE),
        keepalive_timeout_seconds: float = 10,
        chat_limit: int = 20,
        chat_window_s: float = 30.0,
        unused_close_s: float = 10.0,
        port: int = 0,
        fault: Fault | None = None,
    ) -> None:
        super().__init__(port=port, fault=fault)
        self.channel, self.broadcaster_id = channel, broadcaster_id
        self.bot = Chatter(bot_id, bot_login)
        self.users = {
            channel: {"id": broadcaster_id, "login": channel, "display_name": channel},
            bot_login: {"id": bot_id, "login": bot_login, "display_name": bot_login},
        }
        self.client_id = f"client{_id()[:20]}"
        self.client_secret = f"secret{_id()}"
        self.scopes = scopes
        self.keepalive_timeout_seconds = keepalive_timeout_seconds
        self.chat_limit, self.chat_window_s = chat_limit, chat_window_s
        self.unused_close_s = unused_close_s
        self.reconnect_welcome_delay_s = 0.0
        self.redeliver_after_reconnect = 0
        self.refuse_refresh = False
        self.drop_next_chat: str | None = None
        self._access: dict[str, _Token] = {}
        self._refresh: set[str] = set()
        self.tokens_issued: list[tuple[str, str]] = []
        self.access_token, self.refresh_token = self._issue()
        self.sessions: dict[str, _Session] = {}
        self.sockets: list[SocketRecord] = []
        self.created: list[dict[str, Any]] = []
        self.chat_sent: list[dict[str, Any]] = []
        self._chat_times: deque[float] = deque()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- URLs and settings -------------------------------------------------------------------

    @property
    def eventsub_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def api_url(self) -> str:
        return f"{self.url}/helix"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/oauth2"

    @property
    def env(self) -> dict[str, str]:
        """`BRIDGE_TWITCH_*` for a client of this double (the first tokens it issued)."""
        return {
            "BRIDGE_TWITCH_CHANNEL": self.channel,
            "BRIDGE_TWITCH_CLIENT_ID": self.client_id,
            "BRIDGE_TWITCH_CLIENT_SECRET": self.client_secret,
            "BRIDGE_TWITCH_ACCESS_TOKEN": self.tokens_issued[0][0],
            "BRIDGE_TWITCH_REFRESH_TOKEN": self.tokens_issued[0][1],
            "BRIDGE_TWITCH_EVENTSUB_URL": self.eventsub_url,
            "BRIDGE_TWITCH_API_URL": self.api_url,
            "BRIDGE_TWITCH_AUTH_URL": self.auth_url,
        }

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/ws", self._eventsub),
            web.get("/ws/reconnect/{session_id}", self._eventsub_moved),
            web.get("/oauth2/validate", self._validate),
            web.post("/oauth2/token", self._token),
            web.get("/helix/users", self._users),
            web.post("/helix/eventsub/subscriptions", self._subscribe),
            web.post("/helix/chat/messages", self._chat_message),
        ]

    async def on_stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for session in list(self.sessions.values()):
            with contextlib.suppress(Exception):
                await session.socket.ws.close()

    # -- what tests look at ------------------------------------------------------------------

    def subscribed_session(self) -> str | None:
        """The id of a connected session that has every chat subscription, if there is one."""
        for session in self.sessions.values():
            if SUBSCRIPTION_TYPES <= set(session.subscriptions):
                return session.id
        return None

    def created_for(self, session_id: str) -> list[str]:
        """The subscription types created for a session (repeats included)."""
        return [s["type"] for s in self.created if s["transport"]["session_id"] == session_id]

    # -- the audience ------------------------------------------------------------------------

    async def chat(
        self,
        chatter: Chatter,
        text: str,
        *,
        badges: tuple[str, ...] = (),
        bits: int = 0,
        message_id: str | None = None,
        reply_to: str | None = None,
    ) -> str:
        """`chatter` writes `text` in the channel's chat (`badges`: set ids such as
        "moderator", "subscriber"; `bits`: a cheer); the chat message's id."""
        message_id = message_id or str(uuid.uuid4())
        event: dict[str, Any] = {
            **self._broadcaster(),
            "chatter_user_id": chatter.user_id,
            "chatter_user_login": chatter.login,
            "chatter_user_name": chatter.name,
            "message_id": message_id,
            "message": {
                "text": text,
                "fragments": [
                    {
                        "type": "text",
                        "text": text,
                        "cheermote": None,
                        "emote": None,
                        "mention": None,
                    }
                ],
            },
            "color": "#1E90FF",
            "badges": [{"set_id": b, "id": "1", "info": ""} for b in badges],
            "message_type": "text",
            "cheer": {"bits": bits} if bits else None,
            "reply": {"parent_message_id": reply_to} if reply_to else None,
            "channel_points_custom_reward_id": None,
            "source_broadcaster_user_id": None,
            "source_broadcaster_user_login": None,
            "source_broadcaster_user_name": None,
            "source_message_id": None,
            "source_badges": None,
        }
        await self.send_notification("channel.chat.message", event)
        return message_id

    async def delete_message(self, message_id: str, chatter: Chatter) -> None:
        """A moderator deletes one message."""
        event = {**self._broadcaster(), **self._target(chatter), "message_id": message_id}
        await self.send_notification("channel.chat.message_delete", event)

    async def clear_user(self, chatter: Chatter) -> None:
        """A moderator bans or times out `chatter` (Twitch clears their messages)."""
        event = {**self._broadcaster(), **self._target(chatter)}
        await self.send_notification("channel.chat.clear_user_messages", event)

    async def notice(
        self,
        chatter: Chatter,
        notice_type: str,
        *,
        tier: str = "1000",
        prime: bool = False,
        text: str = "",
        months: int = 1,
    ) -> str:
        """A `channel.chat.notification` (`sub`, `resub`, `sub_gift`, or any other notice type,
        e.g. `raid`) from `chatter`; its message id."""
        message_id = str(uuid.uuid4())
        details: dict[str, Any] = {"sub_tier": tier, "is_prime": prime, "duration_months": 1}
        if notice_type == "resub":
            details |= {"cumulative_months": months, "streak_months": None, "is_gift": False}
        if notice_type == "sub_gift":
            details |= {
                "cumulative_total": None,
                "recipient_user_id": "999",
                "recipient_user_name": "Lucky",
                "recipient_user_login": "lucky",
                "community_gift_id": None,
            }
        event: dict[str, Any] = {
            **self._broadcaster(),
            "chatter_user_id": chatter.user_id,
            "chatter_user_login": chatter.login,
            "chatter_user_name": chatter.name,
            "chatter_is_anonymous": False,
            "color": "",
            "badges": [],
            "system_message": f"{chatter.name} did a {notice_type}",
            "message_id": message_id,
            "message": {"text": text, "fragments": []},
            "notice_type": notice_type,
        }
        for kind in ("sub", "resub", "sub_gift", "community_sub_gift", "raid", "announcement"):
            event[kind] = details if kind == notice_type else None
        await self.send_notification("channel.chat.notification", event)
        return message_id

    async def send_notification(self, subscription_type: str, event: dict[str, Any]) -> int:
        """Deliver a notification to every session subscribed to it; how many got it."""
        delivered = 0
        for session in list(self.sessions.values()):
            subscription = session.subscriptions.get(subscription_type)
            if subscription is None:
                continue
            envelope = {
                "metadata": self._metadata("notification", subscription_type),
                "payload": {"subscription": subscription, "event": event},
            }
            text = json.dumps(envelope)
            session.recent.append(text)
            if await self._send(session, session.socket, text):
                delivered += 1
        return delivered

    # -- Twitch misbehaving (as it may) ------------------------------------------------------

    async def reconnect(self) -> None:
        """`session_reconnect` on every session: move to `/ws/reconnect/<id>`."""
        for session in list(self.sessions.values()):
            session.moving = True
            payload = {
                "session": {
                    "id": session.id,
                    "status": "reconnecting",
                    "keepalive_timeout_seconds": None,
                    "reconnect_url": f"ws://127.0.0.1:{self.port}/ws/reconnect/{session.id}",
                    "connected_at": twitch_timestamp(),
                }
            }
            message = {"metadata": self._metadata("session_reconnect"), "payload": payload}
            await self._send(session, session.socket, json.dumps(message))

    def go_silent(self) -> None:
        """The sessions open now get no more keepalives (sessions opened later do)."""
        for session in self.sessions.values():
            session.keepalives = False

    async def drop(self) -> None:
        """Cut every socket's TCP connection, no close frame (a network failure)."""
        for session in list(self.sessions.values()):
            transport = session.socket.request.transport
            if transport is not None:
                transport.abort()

    async def revoke(self, subscription_type: str, status: str = "authorization_revoked") -> None:
        """Twitch revokes a subscription (`authorization_revoked`, `user_removed`,
        `version_removed`)."""
        for session in list(self.sessions.values()):
            subscription = session.subscriptions.pop(subscription_type, None)
            if subscription is None:
                continue
            revoked = {**subscription, "status": status}
            metadata = self._metadata("revocation", subscription_type)
            message = {"metadata": metadata, "payload": {"subscription": revoked}}
            await self._send(session, session.socket, json.dumps(message))
        self.notify()

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires (validate and Helix answer 401)."""
        for token in self._access.values():
            token.expired = True

    def token_is_valid(self, access_token: str) -> bool:
        token = self._access.get(access_token)
        return token is not None and not token.expired

    # -- EventSub WebSocket ------------------------------------------------------------------

    async def _eventsub(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if recorded.fault is not None:
            return self._error(500 if recorded.fault is Fault.HTTP_500 else 401, "")
        socket = await self._accept(request)
        session = _Session(id=f"AgoQ{_id()}", socket=socket)
        self.sessions[session.id] = session
        self._start(self._keepalive(session))
        try:
            await self._welcome(session, socket, request.path)
            await self._read(socket)
        finally:
            if session.socket is socket and self.sessions.get(session.id) is session:
                del self.sessions[session.id]  # its subscriptions go with it
                self.notify()
        return socket.ws

    async def _eventsub_moved(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        session = self.sessions.get(request.match_info["session_id"])
        socket = await self._accept(request)
        if session is None or not session.moving:
            await socket.ws.close(code=4007, message=b"invalid reconnect")
            return socket.ws
        if self.reconnect_welcome_delay_s:
            await asyncio.sleep(self.reconnect_welcome_delay_s)
        old, session.socket, session.moving = session.socket, socket, False
        try:
            await self._welcome(session, socket, request.path)
            redeliver = self.redeliver_after_reconnect
            for text in list(session.recent)[-redeliver:] if redeliver else []:
                await self._send(session, socket, text)
            await old.ws.close()
            await self._read(socket)
        finally:
            if session.socket is socket and self.sessions.get(session.id) is session:
                del self.sessions[session.id]
                self.notify()
        return socket.ws

    async def _accept(self, request: web.Request) -> _Socket:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        return _Socket(ws=ws, request=request)

    async def _welcome(self, session: _Session, socket: _Socket, path: str) -> None:
        payload = {
            "session": {
                "id": session.id,
                "status": "connected",
                "keepalive_timeout_seconds": self.keepalive_timeout_seconds,
                "reconnect_url": None,
                "recovery_url": None,
                "connected_at": twitch_timestamp(),
            }
        }
        message = {"metadata": self._metadata("session_welcome"), "payload": payload}
        await self._send(session, socket, json.dumps(message))
        session.welcomed_at = time.monotonic()
        self.sockets.append(SocketRecord(path=path, session_id=session.id))
        self.notify()

    async def _read(self, socket: _Socket) -> None:
        async for message in socket.ws:
            if message.type in (WSMsgType.TEXT, WSMsgType.BINARY):
                # Twitch: "the client sent inbound traffic" (anything but a pong)
                await socket.ws.close(code=4001, message=b"client sent inbound traffic")

    async def _keepalive(self, session: _Session) -> None:
        while self.sessions.get(session.id) is session:
            interval = self.keepalive_timeout_seconds / 2
            await asyncio.sleep(max(0.0, session.last_sent + interval - time.monotonic()))
            if self.sessions.get(session.id) is not session:
                return
            idle = time.monotonic() - session.welcomed_at
            if not session.subscriptions and session.welcomed_at and idle > self.unused_close_s:
                await session.socket.ws.close(code=4003, message=b"connection unused")
                return
            if session.keepalives and time.monotonic() - session.last_sent >= interval:
                message = {"metadata": self._metadata("session_keepalive"), "payload": {}}
                await self._send(session, session.socket, json.dumps(message))
            elif not session.keepalives:
                session.last_sent = time.monotonic()  # check again one interval later

    async def _send(self, session: _Session, socket: _Socket, text: str) -> bool:
        async with socket.lock:
            if socket.ws.closed:
                return False
            try:
                await socket.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return False
        session.last_sent = time.monotonic()
        return True

    # -- OAuth -------------------------------------------------------------------------------

    async def _validate(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if recorded.fault is Fault.HTTP_500:
            return self._error(500, "")
        auth = recorded.headers.get("Authorization", "")
        token = self._access.get(auth[6:]) if auth.startswith("OAuth ") else None
        if recorded.fault is Fault.HTTP_401 or token is None or token.expired:
            return web.json_response({"status": 401, "message": "invalid access token"}, status=401)
        return web.json_response(
            {
                "client_id": self.client_id,
                "login": token.login,
                "scopes": list(token.scopes),
                "user_id": token.user_id,
                "expires_in": 14400,
            }
        )

    async def _token(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if recorded.fault is Fault.HTTP_500:
            return self._error(500, "")
        form = dict(parse_qsl(recorded.body.decode()))
        if form.get("client_id") != self.client_id:
            return web.json_response({"status": 400, "message": "invalid client"}, status=400)
        if form.get("client_secret") != self.client_secret:
            return web.json_response(
                {"status": 403, "message": "invalid client secret"}, status=403
            )
        if form.get("grant_type") != "refresh_token":
            return web.json_response({"status": 400, "message": "unsupported grant"}, status=400)
        refresh = str(form.get("refresh_token", ""))
        if self.refuse_refresh or refresh not in self._refresh:
            return web.json_response(
                {"status": 400, "message": "Invalid refresh token"}, status=400
            )
        self._refresh.discard(refresh)
        access, new_refresh = self._issue()
        return web.json_response(
            {
                "access_token": access,
                "refresh_token": new_refresh,
                "expires_in": 14400,
                "scope": list(self.scopes),
                "token_type": "bearer",
            }
        )

    def _issue(self) -> tuple[str, str]:
        access, refresh = f"access{_id()}", f"refresh{_id()}"
        self._access[access] = _Token(self.bot.user_id, self.bot.login, self.scopes)
        self._refresh.add(refresh)
        self.tokens_issued.append((access, refresh))
        return access, refresh

    # -- Helix -------------------------------------------------------------------------------

    def _helix_refusal(self, recorded: RecordedRequest) -> tuple[web.Response | None, _Token]:
        """(an error response or None, the caller's token)."""
        token = self._access.get(recorded.bearer or "")
        if recorded.fault is Fault.HTTP_500:
            return self._error(500, ""), _Token("", "", ())
        if recorded.fault is Fault.HTTP_401 or token is None or token.expired:
            return self._error(401, "Invalid OAuth token"), _Token("", "", ())
        if recorded.headers.get("Client-Id") != self.client_id:
            return self._error(401, "Client ID and OAuth token do not match"), token
        return None, token

    async def _users(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal, _ = self._helix_refusal(recorded)
        if refusal is not None:
            return refusal
        logins = request.query.getall("login", [])
        found = [
            {**self.users[login], "type": "", "broadcaster_type": "", "description": ""}
            for login in logins
            if login in self.users
        ]
        return web.json_response({"data": found})

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal, token = self._helix_refusal(recorded)
        if refusal is not None:
            return refusal
        body = recorded.json or {}
        kind, condition = body.get("type"), body.get("condition") or {}
        transport = body.get("transport") or {}
        if kind not in SUBSCRIPTION_TYPES or body.get("version") != "1":
            return self._error(400, f"unknown subscription type or version: {kind}")
        if condition.get("broadcaster_user_id") != self.broadcaster_id or not condition.get(
            "user_id"
        ):
            return self._error(400, "condition: broadcaster_user_id and user_id are required")
        if condition["user_id"] != token.user_id or READ_SCOPE not in token.scopes:
            return self._error(403, "subscription missing proper authorization")
        session = self.sessions.get(str(transport.get("session_id")))
        if transport.get("method") != "websocket" or session is None or not session.welcomed_at:
            return self._error(
                400, "websocket transport session does not exist or has already disconnected"
            )
        if kind in session.subscriptions:
            return self._error(409, "subscription already exists")
        subscription = {
            "id": str(uuid.uuid4()),
            "status": "enabled",
            "type": kind,
            "version": "1",
            "condition": condition,
            "created_at": twitch_timestamp(),
            "transport": {
                "method": "websocket",
                "session_id": session.id,
                "connected_at": twitch_timestamp(),
            },
            "cost": 0,
        }
        session.subscriptions[kind] = subscription
        self.created.append(subscription)
        self.notify()
        total = sum(len(s.subscriptions) for s in self.sessions.values())
        return web.json_response(
            {"data": [subscription], "total": total, "total_cost": 0, "max_total_cost": 10},
            status=202,
        )

    async def _chat_message(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal, token = self._helix_refusal(recorded)
        if refusal is not None:
            return refusal
        body = recorded.json or {}
        if WRITE_SCOPE not in token.scopes:
            return self._error(401, f"Missing scope: {WRITE_SCOPE}")
        if body.get("broadcaster_id") != self.broadcaster_id:
            return self._error(400, "The ID in broadcaster_id is not valid")
        if body.get("sender_id") != token.user_id:
            return self._error(403, "The sender is not the user in the access token")
        message = str(body.get("message") or "")
        if not message or len(message) > 500:
            return self._error(400, "The message is empty or longer than 500 characters")
        now = time.monotonic()
        while self._chat_times and self._chat_times[0] <= now - self.chat_window_s:
            self._chat_times.popleft()
        if len(self._chat_times) >= self.chat_limit:
            response = self._error(429, "Too Many Requests")
            response.headers["Ratelimit-Limit"] = str(self.chat_limit)
            response.headers["Ratelimit-Remaining"] = "0"
            return response
        self._chat_times.append(now)
        if self.drop_next_chat:
            code, self.drop_next_chat = self.drop_next_chat, None
            dropped = {"code": code, "message": "Your message was not sent."}
            return web.json_response(
                {"data": [{"message_id": "", "is_sent": False, "drop_reason": dropped}]}
            )
        self.chat_sent.append(body)
        self.notify()
        message_id = await self.chat(
            self.bot, message, reply_to=body.get("reply_parent_message_id") or None
        )
        return web.json_response(
            {"data": [{"message_id": message_id, "is_sent": True, "drop_reason": None}]}
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _broadcaster(self) -> dict[str, str]:
        return {
            "broadcaster_user_id": self.broadcaster_id,
            "broadcaster_user_login": self.channel,
            "broadcaster_user_name": self.channel,
        }

    @staticmethod
    def _target(chatter: Chatter) -> dict[str, str]:
        return {
            "target_user_id": chatter.user_id,
            "target_user_login": chatter.login,
            "target_user_name": chatter.name,
        }

    @staticmethod
    def _metadata(message_type: str, subscription_type: str | None = None) -> dict[str, str]:
        metadata = {
            "message_id": str(uuid.uuid4()),
            "message_type": message_type,
            "message_timestamp": twitch_timestamp(),
        }
        if subscription_type:
            metadata |= {"subscription_type": subscription_type, "subscription_version": "1"}
        return metadata

    @staticmethod
    def _error(status: int, message: str) -> web.Response:
        reasons = {
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            409: "Conflict",
            429: "Too Many Requests",
            500: "Internal Server Error",
        }
        body = {"error": reasons.get(status, "Error"), "status": status, "message": message}
        return web.json_response(body, status=status)

    def _start(self, work: Any) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


if __name__ == "__main__":
    serve_forever(lambda port: TwitchDouble(port=port))
