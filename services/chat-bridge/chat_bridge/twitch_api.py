"""Twitch's HTTP side for the bridge: the bot's tokens (validated, refreshed, kept in Redis) and
the Helix calls (users, EventSub subscriptions, chat messages).

Tokens: the bot account's user access token and refresh token come from settings; once a
refresh has happened the newer pair is kept in Redis (a hash under
`livestage:bridge:twitch:tokens:<fingerprint of client id and the configured refresh token>`),
so a restart uses it, and configuring a different refresh token starts afresh. Every show the
bridge follows uses the same bot: one `BotTokens` per credentials (and Redis client) in the
process holds the current pair, so one refresh serves them all (two shows that each refreshed
would race, each with the refresh token the other just used up). `start()`
validates the token (`GET <auth>/validate`, which also gives the bot's user id); a 401 there or
from Helix refreshes it (`POST <auth>/token`, grant_type=refresh_token) and tries once more. A
refresh Twitch refuses raises `TwitchRefused` (outcome `unauthorized`): nothing will work
until an operator gives new tokens, so the caller waits long before trying again.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .settings import TwitchSettings

log = logging.getLogger(__name__)

READ_SCOPE = "user:read:chat"
WRITE_SCOPE = "user:write:chat"
CHAT_MESSAGE_MAX_CHARS = 500
"""Twitch refuses longer chat messages."""
TOKEN_KEY_PREFIX = "livestage:bridge:twitch:tokens:"


class TwitchRefused(Exception):
    """Twitch refused what was configured (credentials, scopes, channel): retrying soon will
    not help. `outcome` is what the sink's problem report says."""

    def __init__(self, outcome: str, detail: str) -> None:
        super().__init__(detail)
        self.outcome = outcome


class TwitchUnavailable(Exception):
    """Twitch did not answer as it should (connection error, 5xx, 429, a malformed body):
    worth retrying with backoff."""


@dataclass(frozen=True)
class Tokens:
    access: str
    refresh: str


@dataclass(frozen=True)
class Identity:
    """Who the bridge is on Twitch and whose chat it follows."""

    bot_user_id: str
    bot_login: str
    broadcaster_user_id: str
    scopes: frozenset[str]


class TokenStore:
    """The newest tokens in Redis, keyed by the configured credentials."""

    def __init__(self, redis: Redis, settings: TwitchSettings) -> None:
        configured = settings.refresh_token.get_secret_value() if settings.refresh_token else ""
        fingerprint = hashlib.sha256(f"{settings.client_id}:{configured}".encode()).hexdigest()
        self.redis = redis
        self.key = TOKEN_KEY_PREFIX + fingerprint[:16]

    async def load(self) -> Tokens | None:
        try:
            access, refresh = await self.redis.hmget(self.key, ["access_token", "refresh_token"])
        except RedisError as error:
            log.warning("twitch: could not read the kept tokens (%s); using the configured", error)
            return None
        if not access or not refresh:
            return None
        return Tokens(access=_text(access), refresh=_text(refresh))

    async def save(self, tokens: Tokens) -> None:
        mapping: dict[str | bytes, str] = {
            "access_token": tokens.access,
            "refresh_token": tokens.refresh,
        }
        try:
            await self.redis.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
        except RedisError as error:
            log.error(
                "twitch: could not keep the refreshed tokens in Redis (%s): a restart will "
                "refresh again from the configured ones",
                error,
            )


def _json(response: httpx.Response, what: str) -> dict[str, Any]:
    """The JSON object a call answered; `TwitchUnavailable` for an error status or no object."""
    if response.status_code >= 300:
        raise TwitchUnavailable(f"{what}: {response.status_code} {_detail(response)}")
    try:
        body = response.json()
    except ValueError as error:
        raise TwitchUnavailable(f"{what}: not JSON") from error
    if not isinstance(body, dict):
        raise TwitchUnavailable(f"{what}: not a JSON object")
    return body


_SHARED: dict[tuple[str, int], tuple[weakref.ref[Redis], weakref.ref[BotTokens]]] = {}


class BotTokens:
    """The bot's current tokens for every `TwitchApi` in the process with these credentials.

    A refresh happens once however many shows saw the 401 (`refresh(failed)`: a caller whose
    failed pair is no longer current finds the new one), and a refusal is remembered for the
    pair Twitch refused, so the shows that were waiting for that answer raise it too without
    asking Twitch once more (a later retry asks again)."""

    def __init__(self, redis: Redis, settings: TwitchSettings) -> None:
        if not (settings.client_secret and settings.access_token and settings.refresh_token):
            raise ValueError("BotTokens needs the client secret, access and refresh tokens")
        self.settings = settings
        self.store = TokenStore(redis, settings)
        self.configured = Tokens(
            access=settings.access_token.get_secret_value(),
            refresh=settings.refresh_token.get_secret_value(),
        )
        self._client_secret = settings.client_secret.get_secret_value()
        self._tokens: Tokens | None = None
        self._refused: tuple[Tokens, TwitchRefused] | None = None
        self._refusals = 0
        self._refreshing = asyncio.Lock()

    @classmethod
    def shared(cls, redis: Redis, settings: TwitchSettings) -> BotTokens:
        """The process's one instance for these credentials and this Redis client."""
        key = (TokenStore(redis, settings).key, id(redis))
        kept = _SHARED.get(key)
        if kept is not None and kept[0]() is redis and (tokens := kept[1]()) is not None:
            return tokens
        tokens = cls(redis, settings)
        _SHARED[key] = (weakref.ref(redis), weakref.ref(tokens))
        return tokens

    async def current(self) -> Tokens:
        if self._tokens is None:
            self._tokens = await self.store.load() or self.configured
        return self._tokens

    async def refresh(self, failed: Tokens, call: Callable[..., Awaitable[httpx.Response]]) -> None:
        """Trade the refresh token for new tokens (once, however many callers saw the 401).
        `call(method, url, **options)` makes the request (the caller's HTTP client)."""
        refusals = self._refusals
        async with self._refreshing:
            if self._tokens is not None and self._tokens != failed:
                return  # another caller refreshed already
            if self._refusals != refusals and self._refused and self._refused[0] == failed:
                raise self._refused[1]  # refused while this caller waited
            response = await call(
                "POST",
                f"{self.settings.auth_url}/token",
                data={
                    "grant_type": "refresh_token",
                    "refresh_token": failed.refresh,
                    "client_id": self.settings.client_id,
                    "client_secret": self._client_secret,
                },
            )
            if response.status_code in (400, 401, 403):
                refused = TwitchRefused(
                    "unauthorized",
                    f"Twitch refused to refresh the bot's token ({response.status_code} "
                    f"{_detail(response)}); issue new tokens and set BRIDGE_TWITCH_ACCESS_TOKEN "
                    "and BRIDGE_TWITCH_REFRESH_TOKEN",
                )
                self._refused = (failed, refused)
                self._refusals += 1
                raise refused
            body = _json(response, "token refresh")
            try:
                tokens = Tokens(str(body["access_token"]), str(body["refresh_token"]))
            except KeyError as error:
                raise TwitchUnavailable(f"token refresh answered without {error}") from error
            self._tokens = tokens
            self._refused = None
            await self.store.save(tokens)
            log.info("twitch: refreshed the bot's access token (kept in Redis)")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _detail(response: httpx.Response) -> str:
    """Twitch's error message (`{error, status, message}`), or the start of the body."""
    try:
        body = response.json()
        return str(body.get("message") or body.get("error") or body)
    except ValueError:
        return response.text[:200]


class TwitchApi:
    """The bot's tokens and the Helix calls the bridge makes."""

    def __init__(
        self, settings: TwitchSettings, redis: Redis, broadcaster_id: str | None = None
    ) -> None:
        """`broadcaster_id`: the channel's user id (a show's `platformChat.twitchChannelId`);
        None: look up `settings.channel` (the login name) once."""
        self.settings = settings
        self.channel = settings.channel.strip().lstrip("#").lower() or f"id {broadcaster_id}"
        self.tokens = BotTokens.shared(redis, settings)
        self._starting = asyncio.Lock()
        self.identity: Identity | None = None
        self._broadcaster_user_id: str | None = broadcaster_id
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))

    async def aclose(self) -> None:
        await self.http.aclose()

    # -- tokens ------------------------------------------------------------------------------

    async def _current(self) -> Tokens:
        return await self.tokens.current()

    async def start(self) -> Identity:
        """Validate the token (refreshing it if need be; Twitch asks for a validation at each
        start and hourly) and look the channel up (once). Raises `TwitchRefused` or
        `TwitchUnavailable`."""
        async with self._starting:
            validated = await self.validate()
            if self._broadcaster_user_id is None:
                self._broadcaster_user_id = await self.user_id(self.channel)
            identity = Identity(
                bot_user_id=str(validated["user_id"]),
                bot_login=str(validated.get("login", "")),
                broadcaster_user_id=self._broadcaster_user_id,
                scopes=frozenset(validated.get("scopes") or ()),
            )
            if identity != self.identity:
                log.info("twitch: signed in as %s, following #%s", identity.bot_login, self.channel)
            self.identity = identity
            return identity

    async def ready(self) -> Identity:
        """The identity `start()` found, starting first if it has not run yet."""
        return self.identity or await self.start()

    async def validate(self) -> dict[str, Any]:
        """`GET <auth>/validate` (refreshing once on a 401): the token's user, scopes, expiry."""
        tokens = await self._current()
        response = await self._validate(tokens)
        if response.status_code == 401:
            await self.refresh(tokens)
            response = await self._validate(await self._current())
        if response.status_code == 401:
            raise TwitchRefused("unauthorized", f"Twitch refused the token: {_detail(response)}")
        body = _json(response, "token validation")
        if body.get("client_id") != self.settings.client_id:
            raise TwitchRefused(
                "unauthorized",
                "the access token belongs to another application than BRIDGE_TWITCH_CLIENT_ID; "
                "issue the tokens with that application's client id",
            )
        if READ_SCOPE not in (body.get("scopes") or ()):
            raise TwitchRefused(
                "unauthorized",
                f"the bot's token lacks the scope {READ_SCOPE}; issue a new one with "
                f"{READ_SCOPE} {WRITE_SCOPE}",
            )
        return body

    async def _validate(self, tokens: Tokens) -> httpx.Response:
        headers = {"Authorization": f"OAuth {tokens.access}"}
        return await self._call("GET", f"{self.settings.auth_url}/validate", headers=headers)

    async def refresh(self, failed: Tokens) -> None:
        """Trade the refresh token for new tokens (`BotTokens.refresh`: once for every show)."""
        await self.tokens.refresh(failed, self._call)

    # -- Helix -------------------------------------------------------------------------------

    async def helix(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, str] | None = None,
        json: dict[str, Any] | None = None,
    ) -> httpx.Response:
        """One Helix call with the bot's token; a 401 refreshes the token and tries once more.
        Any other status is the caller's to read."""
        for attempt in range(2):
            tokens = await self._current()
            response = await self._call(
                method,
                f"{self.settings.api_url}{path}",
                params=params,
                json=json,
                headers={
                    "Authorization": f"Bearer {tokens.access}",
                    "Client-Id": self.settings.client_id,
                },
            )
            if response.status_code != 401 or attempt == 1:
                break
            await self.refresh(tokens)
        if response.status_code == 401:
            raise TwitchRefused("unauthorized", f"Helix {path}: {_detail(response)}")
        return response

    async def user_id(self, login: str) -> str:
        """The user id of a channel, by its login (`GET /users?login=`)."""
        response = await self.helix("GET", "/users", params={"login": login})
        users = _json(response, "GET /users").get("data") or []
        if not users:
            raise TwitchRefused(
                "unknown_channel",
                f"Twitch has no channel {login!r}; check BRIDGE_TWITCH_CHANNEL (the login name)",
            )
        return str(users[0]["id"])

    async def subscribe(self, subscription_type: str, session_id: str) -> None:
        """`POST /eventsub/subscriptions` for this session (a 409, already there, is fine)."""
        identity = await self.ready()
        response = await self.helix(
            "POST",
            "/eventsub/subscriptions",
            json={
                "type": subscription_type,
                "version": "1",
                "condition": {
                    "broadcaster_user_id": identity.broadcaster_user_id,
                    "user_id": identity.bot_user_id,
                },
                "transport": {"method": "websocket", "session_id": session_id},
            },
        )
        if response.status_code == 403:
            raise TwitchRefused(
                "unauthorized",
                f"Twitch refused the {subscription_type} subscription: {_detail(response)}",
            )
        if response.status_code not in (202, 409):
            raise TwitchUnavailable(
                f"subscribing to {subscription_type}: {response.status_code} {_detail(response)}"
            )

    async def send_chat(self, text: str, reply_parent_message_id: str) -> str | None:
        """`POST /chat/messages` as the bot; the new message's id, or None when Twitch did not
        send it (rate limit, dropped; logged)."""
        identity = await self.ready()
        if len(text) > CHAT_MESSAGE_MAX_CHARS:
            text = text[: CHAT_MESSAGE_MAX_CHARS - 1] + "…"
        response = await self.helix(
            "POST",
            "/chat/messages",
            json={
                "broadcaster_id": identity.broadcaster_user_id,
                "sender_id": identity.bot_user_id,
                "message": text,
                "reply_parent_message_id": reply_parent_message_id,
            },
        )
        if response.status_code == 429:
            log.warning("twitch: reply not sent, over Twitch's chat rate limit")
            return None
        if response.status_code != 200:
            log.warning("twitch: reply refused: %s %s", response.status_code, _detail(response))
            return None
        sent = (_json(response, "POST /chat/messages").get("data") or [{}])[0]
        if not sent.get("is_sent"):
            log.warning("twitch: reply dropped by Twitch: %s", sent.get("drop_reason"))
            return None
        return str(sent.get("message_id", ""))

    # -- plumbing ----------------------------------------------------------------------------

    async def _call(self, method: str, url: str, **options: Any) -> httpx.Response:
        try:
            response = await self.http.request(method, url, **options)
        except httpx.HTTPError as error:
            raise TwitchUnavailable(f"{method} {url}: {type(error).__name__} {error}") from error
        if response.status_code >= 500:
            raise TwitchUnavailable(f"{method} {url}: {response.status_code} {_detail(response)}")
        return response
