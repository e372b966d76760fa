"""Network bans in `livestage.bans` against real Redis: what covers a network, and how
re-banning, unbanning and expiry keep the network index true."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from livestage.bans import Ban, BanStore, network_ban_expiry
from livestage.kv import connect_redis
from livestage.schemas import now_ms
from livestage.settings import RedisSettings

TROLL, OTHER = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"
NET, NET2 = "203.0.113.7", "2001:db8:5:6::/64"


@pytest.fixture
async def store(redis_server) -> AsyncIterator[BanStore]:  # type: ignore[no-untyped-def]
    redis: Redis = connect_redis(RedisSettings(url=redis_server.url))
    yield BanStore(redis)
    await redis.aclose()


def room() -> str:
    return "netbans-" + uuid.uuid4().hex[:8]


def network_ban(tag: str, network: str, *, expires_at: int = 0, for_ms: int = 60_000) -> Ban:
    now = now_ms()
    return Ban(
        tag,
        created_at=now,
        expires_at=expires_at,
        scope="network",
        network=network,
        network_expires_at=now + for_ms,
    )


def test_the_network_part_never_outlasts_the_ban_nor_the_cap() -> None:
    assert network_ban_expiry(1_000, 0, 60) == 61_000  # permanent ban: the cap
    assert network_ban_expiry(1_000, 11_000, 60) == 11_000  # shorter ban: with the ban
    assert network_ban_expiry(1_000, 500_000, 60) == 61_000  # longer ban: the cap


def test_covers_only_its_own_network_while_both_parts_are_active() -> None:
    ban = network_ban(TROLL, NET)
    now = now_ms()
    assert ban.covers_network(NET, now)
    assert not ban.covers_network("203.0.113.8", now)
    assert not ban.covers_network(NET, ban.network_expires_at)
    assert not Ban(TROLL, scope="visitor", network=NET, network_expires_at=now + 1).covers_network(
        NET, now
    )


def test_a_stored_ban_from_a_newer_writer_still_loads() -> None:
    raw = json.dumps({"visitor_tag": TROLL, "reason": "spam", "colour": "red"})
    assert Ban.from_json(raw) == Ban(TROLL, reason="spam")


async def test_the_visitors_ban_comes_first_then_the_network(store: BanStore) -> None:
    where = room()
    await store.ban(where, network_ban(TROLL, NET))
    own = await store.refusal(where, TROLL, "192.0.2.1")
    assert own is not None and not own.by_network and own.until_ms == 0
    by_network = await store.refusal(where, None, NET)
    assert by_network is not None and by_network.by_network
    assert by_network.until_ms == by_network.ban.network_expires_at
    assert await store.refusal(where, OTHER, "192.0.2.1") is None
    assert await store.refusal("other-room", None, NET) is None


async def test_re_banning_unbanning_and_expiry_keep_the_network_index_true(
    store: BanStore,
) -> None:
    where = room()
    await store.ban(where, network_ban(TROLL, NET))
    await store.ban(where, Ban(TROLL, created_at=now_ms()))  # now a visitor ban only
    assert await store.refusal(where, None, NET) is None
    assert await store.redis.hget(f"livestage:bans:{where}:networks", NET) is None

    await store.ban(where, network_ban(TROLL, NET))
    await store.ban(where, network_ban(OTHER, NET2))
    assert await store.unban(where, TROLL)
    assert await store.refusal(where, None, NET) is None  # lifted with the ban
    assert await store.refusal(where, None, NET2) is not None  # the other one stays

    # A ban past its expiry: the network is free again and the entry is gone.
    await store.ban(where, network_ban(TROLL, NET, expires_at=now_ms() - 1))
    assert await store.refusal(where, None, NET) is None
    assert await store.redis.hget(f"livestage:bans:{where}:networks", NET) is None
    # A network part past its expiry, the visitor part still in force.
    await store.ban(where, network_ban(TROLL, NET, for_ms=-1))
    assert await store.refusal(where, None, NET) is None
    assert await store.refusal(where, TROLL, NET) is not None


async def test_the_last_network_of_a_visitor_is_noted_and_forgotten(store: BanStore) -> None:
    where = room()
    assert await store.network_of(where, TROLL) is None
    await store.note_network(where, TROLL, NET, ttl_s=60)
    await store.note_network(where, TROLL, NET2, ttl_s=60)
    assert await store.network_of(where, TROLL) == NET2
    assert 0 < await store.redis.ttl(f"livestage:bans:{where}:seen:{TROLL}") <= 60
