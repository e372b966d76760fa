"""Identities, bans (real Redis), derived keys and metric names."""

from __future__ import annotations

import uuid

import pytest
from pydantic import SecretStr

from livestage import identity, keys, metrics
from livestage.bans import Ban, BanStore
from livestage.kv import connect_redis
from livestage.schemas import now_ms
from livestage.settings import RedisSettings


def test_viewer_identity_round_trips_and_refuses_bad_parts() -> None:
    made = identity.viewer_identity("0123456789abcdef", "a1b2c3d4")
    assert made == "viewer_0123456789abcdef_a1b2c3d4"
    assert identity.visitor_tag_of(made) == "0123456789abcdef"
    assert identity.is_viewer_identity(made)
    for tag, suffix in [
        ("UPPER1234", "a1b2c3d4"),
        ("ab_cd1234", "a1b2c3d4"),
        ("abc", "a1b2c3d4"),
        ("0123456789abcdef", "xyz"),
    ]:
        with pytest.raises(ValueError):
            identity.viewer_identity(tag, suffix)
    assert identity.visitor_tag_of("avatar-host") is None
    assert identity.visitor_tag_of("viewer_0123456789abcdef_a1b2c3d4_x") is None
    assert not identity.is_viewer_identity("avatar-host")


def test_platform_identity_round_trips_and_is_never_a_viewer() -> None:
    assert identity.platform_identity("twitch", "12345") == "twitch:12345"
    assert identity.platform_of("youtube:UC_x-9") == ("youtube", "UC_x-9")
    assert identity.platform_of("viewer_abcdef12_0123abcd") is None
    assert identity.platform_of("mastodon:1") is None
    assert not identity.is_viewer_identity(identity.platform_identity("youtube", "UCabc"))
    bad = (("twitch", ""), ("twitch", "a b"), ("irc", "1"), ("twitch", "x" * 65))
    for platform, user_id in bad:
        with pytest.raises(ValueError):
            identity.platform_identity(platform, user_id)


def test_derived_keys_differ_per_label_and_an_explicit_key_wins(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LIVEKIT_API_SECRET", "s" * 40)
    assets, visitors = keys.derived_key("assets"), keys.derived_key("visitors")
    assert assets != visitors and len(assets) == 32
    assert keys.derived_key("assets", SecretStr("explicit-key")) == b"explicit-key"
    signature = keys.sign(assets, "/media/x.jpg:123")
    assert keys.verify(assets, "/media/x.jpg:123", signature)
    assert not keys.verify(assets, "/media/x.jpg:124", signature)
    assert not keys.verify(visitors, "/media/x.jpg:123", signature)


async def test_bans_in_redis_expire_and_list(redis_server) -> None:  # type: ignore[no-untyped-def]
    redis = connect_redis(RedisSettings(url=redis_server.url))
    store = BanStore(redis)
    room = "bans-" + uuid.uuid4().hex[:8]
    now = now_ms()
    try:
        assert await store.get(room, "aaaaaaaaaaaaaaaa") is None
        await store.ban(room, Ban("aaaaaaaaaaaaaaaa", reason="spam", created_at=now))
        await store.ban(room, Ban("bbbbbbbbbbbbbbbb", created_at=now + 1, expires_at=now - 1))
        await store.ban(room, Ban("cccccccccccccccc", created_at=now + 2, expires_at=now + 60_000))
        banned = await store.get(room, "aaaaaaaaaaaaaaaa")
        assert banned is not None and banned.reason == "spam"
        assert await store.get(room, "bbbbbbbbbbbbbbbb") is None  # expired
        assert [ban.visitor_tag for ban in await store.list(room)] == [
            "cccccccccccccccc",
            "aaaaaaaaaaaaaaaa",
        ]
        assert await store.get("other-room", "aaaaaaaaaaaaaaaa") is None
        assert await store.unban(room, "aaaaaaaaaaaaaaaa")
        assert not await store.unban(room, "aaaaaaaaaaaaaaaa")
        assert await store.get(room, "aaaaaaaaaaaaaaaa") is None
    finally:
        await redis.aclose()


def test_metric_names_are_unique_and_prometheus_names_follow_the_exporter() -> None:
    names = [spec.name for spec in metrics.ALL]
    assert len(names) == len(set(names))
    assert all(name.startswith("livestage.") for name in names)
    assert metrics.prometheus_name(metrics.CHAT_SUBMITTED) == "livestage_chat_submitted_total"
    assert (
        metrics.prometheus_name(metrics.CHAT_DELIVERY_LATENCY)
        == "livestage_chat_delivery_latency_milliseconds"
    )
    assert (
        metrics.prometheus_name(metrics.HOST_SPEAKING_TIME)
        == "livestage_host_speaking_time_seconds_total"
    )
    assert metrics.prometheus_name(metrics.VIEWERS) == "livestage_viewers"
    with pytest.raises(TypeError):
        metrics.histogram(metrics.CHAT_SUBMITTED)
