"""The stage lease per room (`stage_producer.lease`) on a real nats-server: one holder at a time,
a lapsed lease moves, a lost renewal is noticed, a release hands over at once."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from livestage.bus import Bus
from stage_producer.lease import RoomLeases, lease_bucket
from tests.support.waiting import until

TTL_S = 1.0
RENEW_S = 0.3


async def _pair(bus: Bus, ttl_s: float = TTL_S) -> tuple[RoomLeases, RoomLeases, list[str]]:
    bucket = "test-leases-" + uuid.uuid4().hex[:8]
    kv = await lease_bucket(bus.js, ttl_s, bucket)
    changes: list[str] = []
    first = RoomLeases(
        kv, ttl_s=ttl_s, renew_s=RENEW_S, holder="a", on_change=lambda: changes.append("a")
    )
    second = RoomLeases(
        kv, ttl_s=ttl_s, renew_s=RENEW_S, holder="b", on_change=lambda: changes.append("b")
    )
    return first, second, changes


async def test_one_holder_per_room_and_a_release_hands_it_over(bus: Bus) -> None:
    first, second, changes = await _pair(bus)
    room = "lease-" + uuid.uuid4().hex[:8]
    first.want({room})
    second.want({room})
    await first.round()
    await second.round()
    assert first.holds(room) and not second.holds(room)
    assert changes == ["a"]
    entry = await first.kv.get(room)
    assert entry.value == b"a"

    await first.round()  # a renewal keeps it
    await second.round()
    assert first.holds(room) and not second.holds(room)

    first.want(set())  # nobody watches here any more: released, not left to lapse
    await first.round()
    assert not first.holds(room)
    await second.round()
    assert second.holds(room)
    assert (await second.kv.get(room)).value == b"b"


async def test_a_replica_tells_a_room_held_elsewhere_from_its_own_or_a_free_one(bus: Bus) -> None:
    first, second, _ = await _pair(bus)
    room = "lease-" + uuid.uuid4().hex[:8]
    assert not await first.held_elsewhere(room) and not await second.held_elsewhere(room)
    first.want({room})
    second.want({room})
    await first.round()
    await second.round()
    assert not await first.held_elsewhere(room)  # its own
    assert await second.held_elsewhere(room)
    first.want(set())
    await first.round()  # released: nobody holds it
    assert not await second.held_elsewhere(room)


async def test_a_holder_that_stops_renewing_loses_the_room_within_its_ttl(bus: Bus) -> None:
    first, second, changes = await _pair(bus)
    room = "lease-" + uuid.uuid4().hex[:8]
    first.want({room})
    second.want({room})
    await first.round()
    assert first.holds(room)
    taken_at = asyncio.get_running_loop().time()

    async def second_takes() -> bool:
        await second.round()
        return second.holds(room)

    # `first` stalls (as a killed process would): `second` takes the room once the key lapses.
    while not await second_takes():
        assert asyncio.get_running_loop().time() - taken_at < TTL_S + 5, "the lease never moved"
        await asyncio.sleep(RENEW_S)
    assert asyncio.get_running_loop().time() - taken_at >= TTL_S * 0.5  # not before it lapsed

    # The stalled holder's next renewal finds another revision: it drops the room at once.
    await first.round()
    assert not first.holds(room)
    assert changes == ["a", "b", "a"]
    assert (await second.kv.get(room)).value == b"b"


async def test_run_keeps_the_lease_past_its_ttl_and_releases_it_on_stop(bus: Bus) -> None:
    first, second, _ = await _pair(bus)
    room = "lease-" + uuid.uuid4().hex[:8]
    first.want({room})
    second.want({room})
    stop = asyncio.Event()
    running = asyncio.create_task(first.run(stop))
    try:
        await until(lambda: first.holds(room), 10, "the first replica to take the room")
        await asyncio.sleep(TTL_S * 2.5)  # longer than the TTL: only renewals keep it
        await second.round()
        assert first.holds(room) and not second.holds(room)
    finally:
        stop.set()
        await asyncio.wait_for(running, 10)
    assert not first.holds(room)
    await second.round()
    assert second.holds(room)


async def test_the_bucket_takes_the_ttl_of_the_latest_replica(bus: Bus) -> None:
    bucket = "test-leases-" + uuid.uuid4().hex[:8]
    await lease_bucket(bus.js, 5.0, bucket)
    await lease_bucket(bus.js, 3.0, bucket)
    info = await bus.js.stream_info(f"KV_{bucket}")
    assert info.config.max_age == 3.0


def test_a_renew_interval_at_or_above_the_ttl_is_refused() -> None:
    with pytest.raises(ValueError, match="renew interval"):
        RoomLeases(None, ttl_s=2, renew_s=2)  # type: ignore[arg-type]
