"""`python -m stage_producer` as a real process: it serves its asset server, follows NATS, and
stops cleanly on SIGTERM (closing its browser, proxy and server)."""

from __future__ import annotations

from pathlib import Path

from tests.support.identities import viewer_identity
from tests.support.services import (
    end_service,
    free_port,
    start_service,
    start_service_until,
    start_stage_producer,
    stop_service,
    wait_http_ok,
)


def test_the_service_starts_serves_and_stops(nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # Its asset server answers before NATS is connected (the browser starts first): wait for
    # the connection line, not only for /healthz, before stopping it.
    port = free_port()
    env = {
        "NATS_URL": nats_server.url,
        "STAGE_HTTP_PORT": str(port),
        "STAGE_ASSET_DIR": str(tmp_path),
    }
    process = start_service_until("stage_producer", env, "stage-producer connected to NATS")
    try:
        wait_http_ok(f"http://127.0.0.1:{port}/healthz", process)
    finally:
        output = end_service(process)
    assert process.returncode == 0, output
    assert "topics=keywords search=sources backdrops=procedural" in output


def test_a_bad_sources_file_stops_the_service_with_the_reason(nats_server, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "sources.yaml"
    bad.write_text("topics:\n  - name: X\n    sources:\n      - url: ftp://x/\n")
    process = start_service(
        "stage_producer",
        {"NATS_URL": nats_server.url, "STAGE_SOURCES_FILE": str(bad), "STAGE_HTTP_PORT": "0"},
    )
    output, _ = process.communicate(timeout=30)
    assert process.returncode != 0
    assert f"sources file {bad}: topics.0.sources.0.url" in output


async def test_with_a_room_on_the_go_it_stops_within_a_procfile_runner_s_patience(  # type: ignore[no-untyped-def]
    fresh_nats, tmp_path: Path
) -> None:
    """As at `make run`'s Ctrl-C: a viewer's room has its loop running, the command consumer is
    fetching, and NATS stops at the same moment as the service is asked to. It must still end
    within the 5 s honcho gives before SIGKILL (cancelling a fetch while NATS goes away could be
    lost in nats-py; the consumer stops on an event instead)."""
    nats_server = fresh_nats()
    import asyncio
    import subprocess
    import uuid

    from livestage import subjects
    from livestage.bus import Bus
    from livestage.schemas import PresenceEvent, new_id, now_ms
    from livestage.settings import NatsSettings

    process, port = start_stage_producer(nats_server, tmp_path, LIVESTAGE_LOG_LEVEL="DEBUG")
    room = "room-" + uuid.uuid4().hex[:10]
    bus = await Bus.connect(NatsSettings(url=nats_server.url), "test-stage-stop")
    await bus.ensure_streams()  # a fresh NATS: the service may not have declared them yet
    try:
        await asyncio.to_thread(wait_http_ok, f"http://127.0.0.1:{port}/healthz", process)
        joined = PresenceEvent(
            id=new_id(), room=room, event="participant_joined",
            identity=viewer_identity(),
            participant_kind="standard", created_at=now_ms(),
        )  # fmt: skip
        await bus.publish(subjects.room_presence(room), joined)
        visuals: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_visual(msg) -> None:  # type: ignore[no-untyped-def]
            await visuals.put(msg.data)

        sub = await bus.nc.subscribe(subjects.stage_visual(room), cb=on_visual)
        async with asyncio.timeout(60):
            await visuals.get()  # the room's loop is running: it published a visual
        await sub.unsubscribe()
    finally:
        await bus.close()
        nats_server.stop()
        try:
            output = await asyncio.to_thread(stop_service, process, 5)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(f"still running 5 s after SIGTERM:\n{output[-12000:]}") from None
    assert process.returncode == 0, output[-3000:]
