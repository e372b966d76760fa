"""Twitch chat (`chat_bridge.twitch`) against the Twitch double (`tests/doubles/twitch.py`),
reached through the client's own URL settings, with real Redis and a recording sink.

The sink here only records what the client hands it (the bridge's real sink, publishing on the
bus, is tested with it end to end elsewhere); it can play a bus that is down.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest
from redis.asyncio import Redis

from chat_bridge.settings import TwitchSettings
from chat_bridge.source import PlatformMessage, ReplyTarget
from chat_bridge.twitch import TwitchChat, from_settings
from chat_bridge.twitch_api import TokenStore, TwitchRefused
from chat_bridge.twitch_events import (
    SUBSCRIPTION_TYPES,
    MalformedMessage,
    action_of,
    epoch_ms,
    parse_envelope,
    roles_of,
)
from livestage.bus import BusUnavailable
from livestage.kv import connect_redis
from livestage.schemas import Platform
from livestage.settings import RedisSettings
from tests.doubles.base import Fault
from tests.doubles.twitch import Chatter, TwitchDouble
from tests.support.waiting import Changed

T = TypeVar("T")

MARTA = Chatter("1001", "Marta")
OLEG = Chatter("1002", "Oleg")
OWNER = Chatter("100200300", "livestage_show")  # the double's broadcaster
VERA = Chatter("1003", "Vera")


@dataclass
class RecordingSink:
    """A `source.Sink` that records; `bus_down_for = N` makes the next N calls raise
    `BusUnavailable` as the real sink does while NATS is away."""

    submitted: list[PlatformMessage] = field(default_factory=list)
    removed_messages: list[str] = field(default_factory=list)
    removed_users: list[str] = field(default_factory=list)
    up: list[bool] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    details: list[str] = field(default_factory=list)
    bus_down_for: int = 0
    calls: int = 0
    changed: Changed = field(default_factory=Changed)

    def _bus(self) -> None:
        self.calls += 1
        if self.bus_down_for:
            self.bus_down_for -= 1
            raise BusUnavailable("test: NATS is away")

    async def submit(self, message: PlatformMessage) -> None:
        self._bus()
        self.submitted.append(message)
        self.changed.notify()

    async def remove_message(self, platform: Platform, message_id: str) -> None:
        self._bus()
        self.removed_messages.append(message_id)
        self.changed.notify()

    async def remove_user(self, platform: Platform, user_id: str) -> None:
        self._bus()
        self.removed_users.append(user_id)
        self.changed.notify()

    def connected(self, platform: Platform, up: bool) -> None:
        assert platform == "twitch"
        self.up.append(up)
        self.changed.notify()

    def problem(self, platform: Platform, outcome: str, detail: str) -> None:
        self.problems.append((platform, outcome))
        self.details.append(detail)
        self.changed.notify()

    @property
    def ids(self) -> list[str]:
        return [m.message_id for m in self.submitted]

    async def wait(self, condition: Callable[[], T | None], within: float = 10.0) -> T:
        return await self.changed.until(condition, within, "the sink")

    async def wait_for(self, *message_ids: str) -> list[PlatformMessage]:
        """Until every one of these messages was submitted; them, in submission order."""
        await self.wait(lambda: set(message_ids) <= set(self.ids))
        return [m for m in self.submitted if m.message_id in message_ids]


@pytest.fixture
async def twitch() -> AsyncIterator[TwitchDouble]:
    async with TwitchDouble() as double:
        yield double


@pytest.fixture
async def redis(redis_server: Any) -> AsyncIterator[Redis]:
    client = connect_redis(RedisSettings(url=redis_server.url))
    yield client
    await client.aclose()


def settings_for(double: TwitchDouble, **overrides: Any) -> TwitchSettings:
    """Settings pointing at the double, with time settings scaled down for a test."""
    fields: dict[str, Any] = {
        name.removeprefix("BRIDGE_TWITCH_").lower(): value for name, value in double.env.items()
    }
    fields |= {"reconnect_initial_s": 0.05, "reconnect_max_s": 0.5, "auth_retry_s": 0.2}
    return TwitchSettings(**(fields | overrides))


@asynccontextmanager
async def running(chat: TwitchChat, sink: RecordingSink) -> AsyncIterator[TwitchChat]:
    """`chat.run(sink, stop)` in a task for the block; stopped (bounded) and closed after it."""
    stop = asyncio.Event()
    task = asyncio.create_task(chat.run(sink, stop))
    try:
        yield chat
    finally:
        stop.set()
        async with asyncio.timeout(15):
            await task
        await chat.aclose()


async def new_session(double: TwitchDouble, old: str | None = None, within: float = 15.0) -> str:
    """Until a session other than `old` has every subscription; its id."""
    return await double.wait_until(
        lambda: (s := double.subscribed_session()) is not None and s != old and s, within
    )


# -- what each event becomes ------------------------------------------------------------------


async def test_messages_roles_cheers_and_subscriptions_reach_the_sink(
    twitch: TwitchDouble, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in twitch.env.items():
        monkeypatch.setenv(name, value)
    chat = from_settings(redis)
    assert chat is not None and chat.platform == "twitch"
    sink = RecordingSink()
    async with running(chat, sink):
        session = await new_session(twitch)
        assert sorted(twitch.created_for(session)) == sorted(SUBSCRIPTION_TYPES)
        subscription = twitch.created[0]
        assert subscription["condition"] == {
            "broadcaster_user_id": twitch.broadcaster_id,
            "user_id": twitch.bot.user_id,
        }
        assert subscription["transport"]["session_id"] == session
        started_ms = time.time() * 1000
        sent = [
            await twitch.chat(MARTA, "hello from Twitch"),
            await twitch.chat(OLEG, "be nice", badges=("moderator", "subscriber", "moderator")),
            await twitch.chat(OWNER, "welcome all", badges=("broadcaster", "partner")),
            await twitch.chat(VERA, "hi", badges=("vip", "founder")),
            await twitch.chat(MARTA, "Cheer100 great show", bits=100),
            await twitch.notice(OLEG, "sub", tier="1000"),
            await twitch.notice(MARTA, "resub", tier="2000", text="three months!", months=3),
            await twitch.notice(VERA, "sub", prime=True),
            await twitch.notice(OLEG, "sub_gift", tier="3000"),
        ]
        await twitch.notice(VERA, "raid")  # a notice that is no chat item for the host
        sent.append(await twitch.chat(VERA, "after the raid"))
        got = await sink.wait_for(*sent)

    assert [m.message_id for m in got] == sent  # in order, the raid left out
    assert {m.platform for m in got} == {"twitch"}
    shapes = [(m.user_id, m.user_name, m.text, m.roles, m.event, m.amount) for m in got]
    assert shapes == [
        ("1001", "Marta", "hello from Twitch", (), "message", ""),
        ("1002", "Oleg", "be nice", ("moderator", "subscriber"), "message", ""),
        ("100200300", "livestage_show", "welcome all", ("broadcaster",), "message", ""),
        ("1003", "Vera", "hi", ("vip", "subscriber"), "message", ""),
        ("1001", "Marta", "Cheer100 great show", (), "cheer", "100 bits"),
        ("1002", "Oleg", "", (), "subscription", "Tier 1"),
        ("1001", "Marta", "three months!", (), "subscription", "Tier 2"),
        ("1003", "Vera", "", (), "subscription", "Prime"),
        ("1002", "Oleg", "", (), "subscription", "Tier 3"),
        ("1003", "Vera", "after the raid", (), "message", ""),
    ]
    for message in got:  # Twitch's own timestamp, for the bridge's lag metric
        assert started_ms - 5_000 < message.published_at_ms < time.time() * 1000 + 5_000
    assert sink.up == [True, False]
    assert sink.problems == []


async def test_deletions_and_cleared_users_become_removals(
    twitch: TwitchDouble, redis: Redis
) -> None:
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        await new_session(twitch)
        oops = await twitch.chat(MARTA, "oops")
        await twitch.delete_message(oops, MARTA)
        await twitch.clear_user(OLEG)  # a ban or a timeout
        await sink.wait(lambda: sink.removed_messages and sink.removed_users)
    assert sink.removed_messages == [oops]
    assert sink.removed_users == [OLEG.user_id]


# -- the socket going wrong ------------------------------------------------------------------


async def test_session_reconnect_mid_stream_loses_none_and_repeats_none(
    twitch: TwitchDouble, redis: Redis
) -> None:
    twitch.reconnect_welcome_delay_s = 0.3  # messages keep coming on the old socket meanwhile
    twitch.redeliver_after_reconnect = 3  # and Twitch sends some again on the new one
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        session = await new_session(twitch)
        sent = [await twitch.chat(MARTA, f"before {n}") for n in range(10)]
        await twitch.reconnect()
        sent += [await twitch.chat(OLEG, f"while moving {n}") for n in range(10)]
        moved = await twitch.wait_until(
            lambda: [s for s in twitch.sockets if s.path.startswith("/ws/reconnect/")]
        )
        sent += [await twitch.chat(VERA, f"after {n}") for n in range(10)]
        await sink.wait_for(*sent)

    assert sorted(sink.ids) == sorted(sent)  # none lost, none twice
    assert moved[0].session_id == session
    assert len(twitch.requests_to("/ws")) == 1  # it followed reconnect_url, no new session
    assert sorted(twitch.created_for(session)) == sorted(SUBSCRIPTION_TYPES)  # carried over
    assert sink.up == [True, False]  # up the whole time until stopped


async def test_a_dropped_socket_reconnects_and_resubscribes(
    twitch: TwitchDouble, redis: Redis
) -> None:
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        first = await new_session(twitch)
        before = await twitch.chat(MARTA, "before the drop")
        await sink.wait_for(before)
        await twitch.drop()
        second = await new_session(twitch, old=first)
        after = await twitch.chat(MARTA, "after the drop")
        await sink.wait_for(after)
    assert sorted(twitch.created_for(second)) == sorted(SUBSCRIPTION_TYPES)
    assert sink.ids == [before, after]
    assert sink.up[:3] == [True, False, True]


async def test_a_missing_keepalive_reconnects(redis: Redis) -> None:
    async with TwitchDouble(keepalive_timeout_seconds=1) as twitch:
        sink = RecordingSink()
        async with running(TwitchChat(settings_for(twitch), redis), sink):
            first = await new_session(twitch)
            twitch.go_silent()  # the socket stays open, nothing comes any more
            second = await new_session(twitch, old=first)
            after = await twitch.chat(MARTA, "on the new session")
            await sink.wait_for(after)
        assert twitch.sockets[0].session_id == first
        assert sorted(twitch.created_for(second)) == sorted(SUBSCRIPTION_TYPES)
        assert sink.up[:3] == [True, False, True]


async def test_a_failing_twitch_is_reported_and_retried_with_backoff(
    twitch: TwitchDouble, redis: Redis
) -> None:
    twitch.fail(Fault.HTTP_500, times=3)
    sink = RecordingSink()
    settings = settings_for(twitch, reconnect_initial_s=0.3, reconnect_max_s=5)
    async with running(TwitchChat(settings, redis), sink):
        await new_session(twitch)
        hello = await twitch.chat(MARTA, "hello after the outage")
        await sink.wait_for(hello)
    assert sink.problems == [("twitch", "unavailable")] * 3  # one report per failure
    assert "500" in sink.details[0]
    starts = [r.received_at for r in twitch.requests_to("/oauth2/validate")]
    waits = [later - earlier for earlier, later in zip(starts, starts[1:], strict=False)]
    # backing off: at least 0.3 s, 0.6 s, 1.2 s apart (plus up to 0.3 s of jitter each)
    assert [w >= least for w, least in zip(waits, (0.3, 0.6, 1.2), strict=True)] == [True] * 3


async def test_a_revocation_is_reported_and_the_chat_followed_again(
    twitch: TwitchDouble, redis: Redis
) -> None:
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        first = await new_session(twitch)
        await twitch.revoke("channel.chat.message", "authorization_revoked")
        await sink.wait(lambda: sink.problems)
        await new_session(twitch, old=first)
        hello = await twitch.chat(MARTA, "still here")
        await sink.wait_for(hello)
    assert sink.problems[0] == ("twitch", "unauthorized")
    assert "channel.chat.message" in sink.details[0]


async def test_an_unknown_channel_is_reported(twitch: TwitchDouble, redis: Redis) -> None:
    sink = RecordingSink()
    chat = TwitchChat(settings_for(twitch, channel="#NoSuchChannel", auth_retry_s=60), redis)
    async with running(chat, sink):
        await sink.wait(lambda: sink.problems)
    assert sink.problems == [("twitch", "unknown_channel")]
    assert "nosuchchannel" in sink.details[0]
    assert twitch.requests_to("/ws") == []


# -- tokens -----------------------------------------------------------------------------------


async def test_an_expired_token_is_refreshed_and_kept_for_the_next_start(
    twitch: TwitchDouble, redis: Redis
) -> None:
    settings = settings_for(twitch)
    twitch.expire_access_tokens()
    sink = RecordingSink()
    async with running(TwitchChat(settings, redis), sink):
        await new_session(twitch)
        hello = await twitch.chat(MARTA, "hello")
        await sink.wait_for(hello)
    assert len(twitch.tokens_issued) == 2
    access, refresh = twitch.tokens_issued[1]
    stored = await redis.hgetall(TokenStore(redis, settings).key)
    assert stored == {b"access_token": access.encode(), b"refresh_token": refresh.encode()}

    # a restart with the same (now stale) settings starts from the kept tokens
    checked = len(twitch.requests_to("/oauth2/validate"))
    async with running(TwitchChat(settings, redis), RecordingSink()):
        await new_session(twitch)
    later = twitch.requests_to("/oauth2/validate")[checked:]
    assert [r.headers["Authorization"] for r in later] == [f"OAuth {access}"]
    assert len(twitch.requests_to("/oauth2/token")) == 1
    assert sink.problems == []


async def test_the_token_is_validated_while_in_use_and_refreshed_when_expired(
    twitch: TwitchDouble, redis: Redis
) -> None:
    settings = settings_for(twitch, validate_every_s=0.2)
    sink = RecordingSink()
    async with running(TwitchChat(settings, redis), sink):
        await new_session(twitch)
        twitch.expire_access_tokens()
        await twitch.wait_until(lambda: len(twitch.tokens_issued) == 2)
        access = twitch.tokens_issued[1][0]
        await twitch.wait_until(
            lambda: (
                twitch.requests_to("/oauth2/validate")[-1].headers["Authorization"]
                == f"OAuth {access}"
            )
        )
    stored = await redis.hget(TokenStore(redis, settings).key, "access_token")
    assert stored == access.encode()
    assert sink.problems == []


async def test_a_401_from_helix_refreshes_the_token(twitch: TwitchDouble, redis: Redis) -> None:
    settings = settings_for(twitch)
    chat = TwitchChat(settings, redis)
    asked = await twitch.chat(MARTA, "a question")  # nobody follows yet: only its id matters
    target = ReplyTarget("twitch", asked, MARTA.user_id, MARTA.name)
    assert await chat.reply(target, "first answer")
    twitch.expire_access_tokens()
    assert await chat.reply(target, "second answer")
    await chat.aclose()
    posts = twitch.requests_to("/helix/chat/messages")
    assert [r.bearer for r in posts] == [
        twitch.tokens_issued[0][0],
        twitch.tokens_issued[0][0],  # 401
        twitch.tokens_issued[1][0],
    ]
    assert [m["message"] for m in twitch.chat_sent] == ["first answer", "second answer"]
    stored = await redis.hget(TokenStore(redis, settings).key, "access_token")
    assert stored == twitch.tokens_issued[1][0].encode()


async def test_a_refused_refresh_is_one_clear_report(twitch: TwitchDouble, redis: Redis) -> None:
    twitch.expire_access_tokens()
    twitch.refuse_refresh = True
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch, auth_retry_s=60), redis), sink):
        await sink.wait(lambda: sink.problems)
    assert sink.problems == [("twitch", "unauthorized")]
    assert "BRIDGE_TWITCH_REFRESH_TOKEN" in sink.details[0]
    assert len(twitch.requests_to("/oauth2/token")) == 1
    assert twitch.requests_to("/ws") == []
    assert sink.up == []


async def test_two_shows_on_one_bot_refresh_its_token_once(
    twitch: TwitchDouble, redis: Redis
) -> None:
    """Every show uses the deployment's bot: one refresh serves all (two would race, each with
    the refresh token the other used up), and a refusal both waited for is asked for once."""
    settings = settings_for(twitch, auth_retry_s=60)
    twitch.expire_access_tokens()
    first, second = TwitchChat(settings, redis), TwitchChat(settings, redis, "22")
    assert first.api.tokens is second.api.tokens
    await asyncio.gather(first.api.validate(), second.api.validate())
    assert len(twitch.requests_to("/oauth2/token")) == 1
    issued = twitch.tokens_issued[1][0]
    assert (await first.api.tokens.current()).access == issued

    twitch.refuse_refresh = True
    failed = await first.api.tokens.current()
    outcomes = await asyncio.gather(
        first.api.refresh(failed), second.api.refresh(failed), return_exceptions=True
    )
    assert [type(o) for o in outcomes] == [TwitchRefused, TwitchRefused]
    assert len(twitch.requests_to("/oauth2/token")) == 2  # the first refresh, then one refusal
    with pytest.raises(TwitchRefused):  # a later retry asks Twitch again
        await second.api.refresh(failed)
    assert len(twitch.requests_to("/oauth2/token")) == 3
    await first.aclose()
    await second.aclose()


async def test_after_refused_refreshes_the_chat_comes_back(
    twitch: TwitchDouble, redis: Redis
) -> None:
    twitch.expire_access_tokens()
    twitch.refuse_refresh = True
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        await sink.wait(lambda: len(sink.problems) >= 2)
        twitch.refuse_refresh = False  # say, Twitch had a bad minute
        await new_session(twitch)
        hello = await twitch.chat(MARTA, "back again")
        await sink.wait_for(hello)
    refreshes = len(twitch.requests_to("/oauth2/token"))
    assert sink.problems == [("twitch", "unauthorized")] * (refreshes - 1)  # one per refusal


# -- the bus ----------------------------------------------------------------------------------


async def test_a_message_the_bus_cannot_take_is_retried_not_lost(
    twitch: TwitchDouble, redis: Redis
) -> None:
    sink = RecordingSink(bus_down_for=3)
    async with running(TwitchChat(settings_for(twitch), redis), sink):
        await new_session(twitch)
        first = await twitch.chat(MARTA, "while NATS is away")
        second = await twitch.chat(OLEG, "and after")
        got = await sink.wait_for(first, second)
    assert [m.message_id for m in got] == [first, second]
    assert sink.calls == 5  # three refusals, then each once


# -- replies ----------------------------------------------------------------------------------


async def test_a_reply_is_one_chat_message_answering_the_comment(
    twitch: TwitchDouble, redis: Redis
) -> None:
    sink = RecordingSink()
    async with running(TwitchChat(settings_for(twitch), redis), sink) as chat:
        await new_session(twitch)
        asked = await twitch.chat(MARTA, "what is on screen?")
        await sink.wait_for(asked)
        target = ReplyTarget("twitch", asked, MARTA.user_id, MARTA.name)
        assert await chat.reply(target, "@Marta a map of Lisbon") is True
        later = await twitch.chat(OLEG, "nice")
        await sink.wait_for(later)
    assert twitch.chat_sent == [
        {
            "broadcaster_id": twitch.broadcaster_id,
            "sender_id": twitch.bot.user_id,
            "message": "@Marta a map of Lisbon",
            "reply_parent_message_id": asked,
        }
    ]
    # Twitch echoes the bot's message into the chat: it is not taken for a viewer's
    assert twitch.bot.user_id not in {m.user_id for m in sink.submitted}
    assert sink.ids == [asked, later]


async def test_replies_over_the_rate_limit_or_dropped_are_false(redis: Redis) -> None:
    async with TwitchDouble(chat_limit=2) as twitch:
        chat = TwitchChat(settings_for(twitch), redis)
        target = ReplyTarget("twitch", "m-1", MARTA.user_id, MARTA.name)
        assert await chat.reply(target, "one") is True
        assert await chat.reply(target, "two" * 300) is True  # cut to Twitch's 500 characters
        assert await chat.reply(target, "three") is False  # 429
        await chat.aclose()
    assert len(twitch.chat_sent) == 2
    assert len(twitch.chat_sent[1]["message"]) == 500
    assert len(twitch.requests_to("/helix/chat/messages")) == 3

    async with TwitchDouble() as twitch:
        chat = TwitchChat(settings_for(twitch), redis)
        twitch.drop_next_chat = "msg_duplicate"
        assert await chat.reply(target, "dropped") is False  # is_sent: false
        assert await chat.reply(target, "sent") is True
        await chat.aclose()
    assert [m["message"] for m in twitch.chat_sent] == ["sent"]


# -- settings ---------------------------------------------------------------------------------


async def test_from_settings(
    twitch: TwitchDouble, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in twitch.env:
        monkeypatch.delenv(name, raising=False)
    assert from_settings(redis) is None  # no channel: Twitch is off
    monkeypatch.setenv("BRIDGE_TWITCH_CHANNEL", "somechannel")
    monkeypatch.setenv("BRIDGE_TWITCH_CLIENT_ID", "abc")
    monkeypatch.setenv("BRIDGE_TWITCH_ACCESS_TOKEN", "tok")
    with pytest.raises(ValueError) as refused:
        from_settings(redis)
    message = str(refused.value)
    assert "BRIDGE_TWITCH_CLIENT_SECRET" in message and "BRIDGE_TWITCH_REFRESH_TOKEN" in message
    assert "BRIDGE_TWITCH_ACCESS_TOKEN" not in message


# -- the pure mapping -------------------------------------------------------------------------


def test_badges_roles_tiers_and_timestamps() -> None:
    badges = [{"set_id": s} for s in ("partner", "lead_moderator", "moderator", "subscriber")]
    assert roles_of(badges) == ("moderator", "subscriber")
    assert roles_of(None) == ()
    assert epoch_ms("2023-07-19T14:56:51.634234626Z") == 1689778611634
    event = {"notice_type": "sub", "chatter_user_id": "1", "message_id": "m", "sub": {}}
    item = action_of("channel.chat.notification", event, 0)
    assert isinstance(item, PlatformMessage) and (item.event, item.amount) == ("subscription", "")
    assert action_of("channel.follow", {}, 0) is None
    with pytest.raises(MalformedMessage):
        action_of("channel.chat.message", {"message_id": "m"}, 0)
    for raw in ("not json", "[]", '{"metadata": {}, "payload": {}}'):
        with pytest.raises(MalformedMessage):
            parse_envelope(raw)
