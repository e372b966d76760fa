"""Twitch chat for the show: EventSub over WebSocket in, Helix chat messages out.

Why not twitchio: twitchio 3.x reads its EventSub socket URL and its Helix and OAuth base URLs
from module constants, not from options, so a test double could only be reached by patching
the library. The protocol is small; this module speaks it with `websockets` (the socket),
`httpx` (Helix and OAuth, `twitch_api`) and `tenacity` (backoff), and every URL is a setting.

One session (`TwitchChat._follow`):

1. validate the bot's token (refreshing it when Twitch says 401) and look the channel up;
2. connect to `BRIDGE_TWITCH_EVENTSUB_URL`, wait for `session_welcome`, then create the
   subscriptions (`twitch_events.SUBSCRIPTION_TYPES`) for its session id (Twitch closes a
   socket with nothing subscribed after about 10 s);
3. read notifications (`twitch_events.action_of`), dropping repeats (by EventSub message id)
   and the bot's own messages, and queue them for the sink;
4. any message resets the keepalive clock; silence past `keepalive_timeout_seconds` (plus a
   margin) means the socket is dead: reconnect;
5. `session_reconnect`: open `reconnect_url` and keep reading the old socket until the new one's
   welcome (the subscriptions move with the session, nothing is resubscribed);
6. `revocation`: report it, and start over after `BRIDGE_TWITCH_AUTH_RETRY_S`.

A lost socket after a session was up reconnects at once (EventSub does not replay what was sent
while nobody listened); failures before a session is up back off exponentially with jitter
(`BRIDGE_TWITCH_RECONNECT_INITIAL_S` .. `_MAX_S`), credentials or a channel Twitch refuses wait
`BRIDGE_TWITCH_AUTH_RETRY_S`, and each failure is one `sink.problem` report. A queue between the
socket and the sink keeps the socket read (and its keepalives seen) while the sink is slow; a
chat item the bus cannot take is retried for `BRIDGE_TWITCH_SUBMIT_RETRY_S`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import websockets
from redis.asyncio import Redis
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_delay,
    wait_exponential_jitter,
)
from websockets.asyncio.client import ClientConnection, connect

from livestage.bus import BusUnavailable
from livestage.schemas import Platform

from .settings import TwitchSettings
from .source import PlatformMessage, ReplyTarget, Sink
from .twitch_api import Identity, TwitchApi, TwitchRefused, TwitchUnavailable
from .twitch_events import (
    SUBSCRIPTION_TYPES,
    Action,
    Envelope,
    MalformedMessage,
    MessageDeleted,
    RecentIds,
    UserCleared,
    action_of,
    parse_envelope,
)

log = logging.getLogger(__name__)

WELCOME_TIMEOUT_S = 10.0
"""How long a new socket may take to connect and send its welcome."""
KEEPALIVE_MARGIN = 0.5
"""Silence allowed past `keepalive_timeout_seconds`, as a fraction of it (at least 1 s)."""
OLD_SOCKET_GRACE_S = 30.0
"""After a `session_reconnect`, how long the old socket is kept for Twitch to close it."""
DRAIN_S = 5.0
"""At stop, how long queued chat items may take to reach the sink."""

_Inbox = asyncio.Queue[tuple["_Socket | None", str | bytes | None]]


class _Socket:
    """One EventSub socket: connects, puts each message it receives in the session's inbox,
    then `(self, None)` when it is closed or could not connect (`closed_reason` says why)."""

    def __init__(self, url: str, inbox: _Inbox) -> None:
        self.url = url
        self.closed_reason = "not connected"
        self._ws: ClientConnection | None = None
        self._task = asyncio.create_task(self._read(inbox), name=f"twitch-eventsub {url}")

    async def _read(self, inbox: _Inbox) -> None:
        try:
            # ping_interval=None: Twitch closes a socket the client sends anything on (4001);
            # its keepalive messages are the liveness check.
            async with connect(
                self.url, open_timeout=WELCOME_TIMEOUT_S, ping_interval=None, close_timeout=2
            ) as ws:
                self._ws = ws
                async for raw in ws:
                    inbox.put_nowait((self, raw))
            self.closed_reason = f"closed by Twitch ({ws.close_code} {ws.close_reason})".strip()
        except websockets.ConnectionClosed as closed:
            self.closed_reason = f"dropped ({closed})"
        except (OSError, TimeoutError, websockets.WebSocketException) as error:
            self.closed_reason = f"could not connect to {self.url}: {type(error).__name__} {error}"
        finally:
            inbox.put_nowait((self, None))

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class _SessionLost(Exception):
    """The socket of a session that was up went away: reconnect at once."""


class TwitchChat:
    """The show's Twitch chat (a `source.PlatformChat`)."""

    platform: Platform = "twitch"

    def __init__(
        self, settings: TwitchSettings, redis: Redis, broadcaster_id: str | None = None
    ) -> None:
        self.settings = settings
        self.api = TwitchApi(settings, redis, broadcaster_id)
        self._seen = RecentIds()
        self._sent = RecentIds()
        self._up = False
        self._closing: set[asyncio.Task[None]] = set()
        self._backoff = wait_exponential_jitter(
            initial=settings.reconnect_initial_s,
            max=settings.reconnect_max_s,
            jitter=settings.reconnect_initial_s,
        )

    # -- PlatformChat ------------------------------------------------------------------------

    async def run(self, sink: Sink, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[Action] = asyncio.Queue()
        deliverer = asyncio.create_task(self._deliver(sink, queue), name="twitch-deliver")
        validator = asyncio.create_task(self._keep_validated(sink), name="twitch-validate")

        async def pause(seconds: float) -> None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), seconds)

        def failed(state: RetryCallState) -> None:
            self._report(sink, state.outcome.exception() if state.outcome else None)

        try:
            while not stop.is_set():
                try:
                    async for attempt in AsyncRetrying(
                        retry=retry_if_not_exception_type(_SessionLost),
                        wait=self._wait,
                        sleep=pause,
                        before_sleep=failed,
                        reraise=True,
                    ):
                        with attempt:
                            await self._follow(sink, queue, stop)
                except _SessionLost as lost:
                    log.warning("twitch: %s; reconnecting", lost)
        finally:
            self._set_up(sink, False)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(queue.join(), DRAIN_S)
            for task in (deliverer, validator):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    def replies_off(self) -> str:
        return ""  # the bot's token is required to follow the chat at all

    async def reply(self, target: ReplyTarget, text: str) -> bool:
        try:
            sent = await self.api.send_chat(text, target.message_id)
        except (TwitchRefused, TwitchUnavailable) as error:
            log.warning("twitch: reply to message %s not sent: %s", target.message_id, error)
            return False
        if sent is None:
            return False
        self._sent.add(sent)
        return True

    async def aclose(self) -> None:
        await self.api.aclose()

    # -- one session -------------------------------------------------------------------------

    async def _follow(self, sink: Sink, queue: asyncio.Queue[Action], stop: asyncio.Event) -> None:
        """One EventSub session until `stop` (returns); raises `_SessionLost` when its socket
        goes after it was up, other errors when it never came up."""
        if stop.is_set():
            return
        identity = await self.api.start()
        inbox: _Inbox = asyncio.Queue()
        loop = asyncio.get_running_loop()
        watch = asyncio.create_task(stop.wait())
        watch.add_done_callback(lambda _: inbox.put_nowait((None, None)))
        current = _Socket(self.settings.eventsub_url, inbox)
        moving: _Socket | None = None
        sockets = [current]
        subscribed = False
        deadline = loop.time() + WELCOME_TIMEOUT_S
        silence_s = WELCOME_TIMEOUT_S
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        socket, raw = await inbox.get()
                except TimeoutError:
                    if not subscribed:
                        raise TwitchUnavailable(
                            f"no session_welcome within {WELCOME_TIMEOUT_S:.0f} s"
                        ) from None
                    raise _SessionLost(f"no message for {silence_s:.0f} s") from None
                if socket is None:
                    return  # stop
                if raw is None:
                    if socket is current and not subscribed:
                        raise TwitchUnavailable(f"EventSub socket {socket.closed_reason}")
                    if socket is current or socket is moving:
                        raise _SessionLost(f"EventSub socket {socket.closed_reason}")
                    continue  # an old socket after a session_reconnect
                try:
                    envelope = parse_envelope(raw)
                except MalformedMessage as error:
                    log.warning("twitch: ignoring a socket message: %s", error)
                    continue
                kind = envelope.message_type
                if socket is current:
                    deadline = loop.time() + silence_s
                if kind == "session_welcome" and socket is moving:
                    current, moving = moving, None
                    silence_s = self._silence_s(envelope.session)
                    deadline = loop.time() + silence_s
                    log.info("twitch: moved to reconnect_url, session %s", envelope.session["id"])
                elif kind == "session_welcome" and socket is current and not subscribed:
                    silence_s = self._silence_s(envelope.session)
                    for subscription_type in SUBSCRIPTION_TYPES:
                        await self.api.subscribe(subscription_type, envelope.session["id"])
                    subscribed = True
                    deadline = loop.time() + silence_s
                    self._set_up(sink, True)
                    log.info(
                        "twitch: following #%s (session %s)",
                        self.api.channel,
                        envelope.session["id"],
                    )
                elif kind == "session_reconnect" and socket is current and moving is None:
                    moving = _Socket(str(envelope.session.get("reconnect_url")), inbox)
                    sockets.append(moving)
                    loop.call_later(OLD_SOCKET_GRACE_S, self._retire, socket)
                elif kind == "notification":
                    self._take(envelope, identity, queue)
                elif kind == "revocation":
                    self._revoked(envelope.payload.get("subscription") or {})
        finally:
            watch.cancel()
            await asyncio.gather(*(s.close() for s in sockets))
            if subscribed:
                self._set_up(sink, False)

    def _take(self, envelope: Envelope, identity: Identity, queue: asyncio.Queue[Action]) -> None:
        """Queue a notification's action for the sink, once."""
        if not self._seen.add(envelope.message_id):
            return
        try:
            action = action_of(envelope.subscription_type, envelope.event, envelope.timestamp_ms)
        except MalformedMessage as error:
            log.warning("twitch: ignoring a notification: %s", error)
            return
        if isinstance(action, PlatformMessage) and self._is_own(action, identity):
            return
        if action is not None:
            queue.put_nowait(action)

    def _is_own(self, message: PlatformMessage, identity: Identity) -> bool:
        """The bot's own replies come back as chat messages: never submit them."""
        if message.message_id in self._sent:
            return True
        bot, broadcaster = identity.bot_user_id, identity.broadcaster_user_id
        # when the bot is the broadcaster's own account only its replies are its own
        return message.user_id == bot and bot != broadcaster

    @staticmethod
    def _revoked(subscription: dict[str, Any]) -> None:
        status = str(subscription.get("status", ""))
        what = f"Twitch revoked the {subscription.get('type', '?')} subscription ({status})"
        if status == "authorization_revoked":
            raise TwitchRefused(
                "unauthorized", f"{what}: the bot's authorization was withdrawn; issue new tokens"
            )
        raise TwitchRefused("revoked", what)

    @staticmethod
    def _silence_s(session: dict[str, Any]) -> float:
        keepalive = float(session.get("keepalive_timeout_seconds") or WELCOME_TIMEOUT_S)
        return keepalive + max(1.0, keepalive * KEEPALIVE_MARGIN)

    def _retire(self, socket: _Socket) -> None:
        task = asyncio.create_task(socket.close())
        self._closing.add(task)  # held until done (the loop keeps only a weak reference)
        task.add_done_callback(self._closing.discard)

    async def _keep_validated(self, sink: Sink) -> None:
        """Validate the token every `validate_every_s` (refreshing it when it expired)."""
        while True:
            await asyncio.sleep(self.settings.validate_every_s)
            try:
                await self.api.validate()
            except TwitchRefused as refused:
                sink.problem(self.platform, refused.outcome, str(refused))
            except TwitchUnavailable as error:
                log.warning("twitch: the periodic token validation failed: %s", error)

    # -- reporting ---------------------------------------------------------------------------

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, TwitchRefused):
            return self.settings.auth_retry_s
        return float(self._backoff(state))

    def _report(self, sink: Sink, error: BaseException | None) -> None:
        self._set_up(sink, False)
        if isinstance(error, TwitchRefused):
            sink.problem(self.platform, error.outcome, str(error))
        elif isinstance(error, TwitchUnavailable):
            sink.problem(self.platform, "unavailable", str(error))
        else:
            log.error("twitch: unexpected failure; retrying", exc_info=error)
            sink.problem(self.platform, "unavailable", f"{type(error).__name__}: {error}")

    def _set_up(self, sink: Sink, up: bool) -> None:
        if up != self._up:
            self._up = up
            sink.connected(self.platform, up)

    # -- to the sink -------------------------------------------------------------------------

    async def _deliver(self, sink: Sink, queue: asyncio.Queue[Action]) -> None:
        """Hand each queued action to the sink in order, retrying while the bus is down."""
        while True:
            action = await queue.get()
            try:
                async for attempt in AsyncRetrying(
                    retry=retry_if_exception_type(BusUnavailable),
                    stop=stop_after_delay(self.settings.submit_retry_s),
                    wait=wait_exponential_jitter(initial=0.1, max=5.0, jitter=0.1),
                    reraise=True,
                ):
                    with attempt:
                        await self._hand(sink, action)
            except BusUnavailable as error:
                log.error(
                    "twitch: gave up %s after %.0f s: the bus did not take it (%s)",
                    action,
                    self.settings.submit_retry_s,
                    error,
                )
            except Exception:
                log.exception("twitch: the bridge failed on %s", action)
            finally:
                queue.task_done()

    async def _hand(self, sink: Sink, action: Action) -> None:
        if isinstance(action, MessageDeleted):
            await sink.remove_message(self.platform, action.message_id)
        elif isinstance(action, UserCleared):
            await sink.remove_user(self.platform, action.user_id)
        else:
            await sink.submit(action)


def from_settings(
    redis: Redis,
    *,
    settings: TwitchSettings | None = None,
    broadcaster_id: str | None = None,
) -> TwitchChat | None:
    """The Twitch client `BRIDGE_TWITCH_*` asks for (or `settings` with `broadcaster_id`, a
    show's channel by its user id); None when no channel is set. A channel without its
    credentials is a `ValueError` naming what is missing."""
    settings = settings if settings is not None else TwitchSettings()
    if not settings.channel.strip() and not broadcaster_id:
        return None
    secrets = {
        "BRIDGE_TWITCH_CLIENT_SECRET": settings.client_secret,
        "BRIDGE_TWITCH_ACCESS_TOKEN": settings.access_token,
        "BRIDGE_TWITCH_REFRESH_TOKEN": settings.refresh_token,
    }
    missing = ["BRIDGE_TWITCH_CLIENT_ID"] if not settings.client_id.strip() else []
    missing += [name for name, value in secrets.items() if not (value and value.get_secret_value())]
    if missing:
        raise ValueError(
            f"{'BRIDGE_TWITCH_CHANNEL' if not broadcaster_id else 'a Twitch channel'} is set "
            f"but {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not: Twitch chat needs the application's "
            "client id and secret and the bot account's access and refresh tokens (README, "
            "Going live: Twitch)"
        )
    return TwitchChat(settings, redis, broadcaster_id)
