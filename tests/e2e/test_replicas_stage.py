"""Two stage producers, one show: exactly one runs the room's loop (the lease holder), and when
it is SIGKILLed the other takes the room within the issue's 10 s and publishes its visuals; an
operator's pin on the holder holds on the other replica after the SIGKILL."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from livestage import subjects
from livestage.bus import Bus, Observed
from livestage.schemas import PresenceEvent, StageCommand, StageVisual, new_id, now_ms
from stage_producer.lease import LEASE_BUCKET
from stage_producer.pins import PIN_BUCKET
from tests.support.bus import connected_bus
from tests.support.identities import viewer_identity
from tests.support.services import end_service, free_port, start_service_until
from tests.support.waiting import until

LEASE_MOVE_BOUND_S = 10.0  # the bound for the lease to reach the surviving replica


def _start(nats_url: str, asset_dir: Path) -> subprocess.Popen[str]:
    env = {
        "NATS_URL": nats_url,
        "STAGE_HTTP_PORT": str(free_port()),
        "STAGE_ASSET_DIR": str(asset_dir),
        "STAGE_CHECK_INTERVAL_S": "0.5",
        "STAGE_INTERVAL_S": "600",  # one visual per loop start: who publishes is who runs it
        "STAGE_BACKDROP_EVERY": "1",  # procedural backdrops: no page capture needed
        "STAGE_BACKDROP_WIDTH": "320",
        "STAGE_BACKDROP_HEIGHT": "180",
        "STAGE_LEASE_TTL_S": "6",
        "STAGE_LEASE_RENEW_S": "2",
    }
    return start_service_until("stage_producer", env, "stage-producer ready", new_session=True)


def _published(process: subprocess.Popen[str], room: str) -> bool:
    return any(f"room {room}: published" in line for line in process.lines)  # type: ignore[attr-defined]


@dataclass
class ShowOnTwo:
    """Two stage-producer replicas, a viewer in `room` and the first visual its holder
    published; `visuals` keeps every visual of the room from then on."""

    bus: Bus
    kv: KeyValue
    replicas: list[subprocess.Popen[str]]
    visuals: list[StageVisual]
    holder: str  # the lease's value when the first visual came
    first: subprocess.Popen[str]  # the holder
    second: subprocess.Popen[str]


@contextlib.asynccontextmanager
async def _show_on_two(
    nats_server: Any, room: str, asset_dirs: tuple[Path, Path], name: str
) -> AsyncIterator[ShowOnTwo]:
    replicas = list(
        await asyncio.gather(
            *(asyncio.to_thread(_start, nats_server.url, folder) for folder in asset_dirs)
        )
    )
    visuals: list[StageVisual] = []

    async def on_visual(observed: Observed[StageVisual]) -> None:
        visuals.append(observed.model)

    async with connected_bus(nats_server, name) as bus:
        watch = await bus.watch(
            subjects.stage_visual(room), StageVisual, on_visual, start=time.time() - 1
        )
        try:
            kv = await bus.js.key_value(LEASE_BUCKET)
            joined = PresenceEvent(
                id=new_id(), room=room, event="participant_joined",
                identity=viewer_identity(), participant_kind="standard", created_at=now_ms(),
            )  # fmt: skip
            await bus.publish(subjects.room_presence(room), joined)
            await until(lambda: visuals, 60, "a visual from the lease holder")
            holder = (await kv.get(room)).value.decode()
            by_pid = {process.pid: process for process in replicas}
            pid = int(holder.split(":")[1])
            assert pid in by_pid, f"the lease names {holder}, not one of the two replicas"
            first = by_pid[pid]
            second = next(p for p in replicas if p is not first)
            yield ShowOnTwo(bus, kv, replicas, visuals, holder, first, second)
        finally:
            await watch.stop()
            for process in replicas:
                if process.poll() is None:
                    output = await asyncio.to_thread(end_service, process)
                    assert process.returncode == 0, output[-3000:]


async def test_one_replica_runs_a_show_and_the_other_takes_it_within_10_s_of_a_sigkill(  # type: ignore[no-untyped-def]
    nats_server, tmp_path: Path
) -> None:
    room = "replicas-stage-" + uuid.uuid4().hex[:8]
    folders = (tmp_path / "a", tmp_path / "b")
    async with _show_on_two(nats_server, room, folders, "test-replicas-stage") as show:
        kv, visuals, holder = show.kv, show.visuals, show.holder
        first, second = show.first, show.second
        # its log line is read by another thread: it may come a moment after the visual
        await until(lambda: _published(first, room), 10, "the holder's 'published' line")
        assert not _published(second, room), "both replicas ran the show's loop"

        os.killpg(first.pid, signal.SIGKILL)  # the replica and its Chromium, as a crash
        killed_at = time.monotonic()
        await asyncio.to_thread(first.wait, 10)

        async def new_holder() -> str | None:
            try:
                value = (await kv.get(room)).value.decode()
            except Exception:  # noqa: BLE001 - lapsed and not yet taken
                return None
            return value if value != holder else None

        taken_by = None
        while taken_by is None and time.monotonic() - killed_at < 30:
            taken_by = await new_holder()
            await asyncio.sleep(0.1)
        moved_after_s = time.monotonic() - killed_at
        assert taken_by is not None, "the lease never moved:\n" + "".join(second.lines)  # type: ignore[attr-defined]
        assert int(taken_by.split(":")[1]) == second.pid
        print(f"stage lease moved {moved_after_s:.2f} s after the SIGKILL")
        assert moved_after_s <= LEASE_MOVE_BOUND_S

        # And the survivor now runs the show (publishing takes a capture's time on top).
        await until(lambda: _published(second, room), 60, "a visual from the new holder")
        assert visuals[-1].room == room


def _logged(process: subprocess.Popen[str], text: str) -> bool:
    return any(text in line for line in process.lines)  # type: ignore[attr-defined]


async def test_a_pin_holds_on_the_other_replica_after_the_holder_is_sigkilled(  # type: ignore[no-untyped-def]
    nats_server, tmp_path: Path
) -> None:
    room = "replicas-pin-" + uuid.uuid4().hex[:8]
    shared_assets = tmp_path / "assets"  # replicas share the asset folder, as deployed
    folders = (shared_assets, shared_assets)
    async with _show_on_two(nats_server, room, folders, "test-replicas-pin") as show:
        bus, visuals, first, second = show.bus, show.visuals, show.first, show.second
        pinned = visuals[0]
        pin = StageCommand(
            id=new_id(), room=room, action="pin", visual_id=pinned.id, created_at=now_ms()
        )
        await bus.publish(subjects.stage_command(room), pin)
        await until(lambda: _logged(first, f"room {room}: pinned {pinned.id}"), 30, "the pin")
        pins = await bus.js.key_value(PIN_BUCKET)
        assert StageVisual.from_json((await pins.get(room)).value).id == pinned.id

        shown_before = len(visuals)
        os.killpg(first.pid, signal.SIGKILL)
        await asyncio.to_thread(first.wait, 10)
        # the survivor takes the room and puts the pinned visual (re-signed) back on screen
        await until(lambda: len(visuals) > shown_before, 60, "a visual from the new holder")
        held = visuals[shown_before]
        assert held.title == pinned.title and held.kind == pinned.kind
        assert held.url.split("?")[0] == pinned.url.split("?")[0]
        assert _logged(second, f"room {room}: the operator's pin ({pinned.id}) holds here")

        # unpinned on the survivor: the stored pin is lifted
        unpin = StageCommand(id=new_id(), room=room, action="unpin", created_at=now_ms())
        await bus.publish(subjects.stage_command(room), unpin)
        await until(lambda: _logged(second, f"room {room}: unpinned"), 30, "the unpin")
        try:
            entry = await pins.get(room)
            assert not entry.value, "the pin was not lifted"
        except KeyNotFoundError:
            pass
