"""The real-infrastructure fixtures are really up, and a crashed NATS keeps its JetStream data."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path

import nats
import pytest
import redis.asyncio as aioredis
from livekit import api
from nats.js.api import StorageType, StreamConfig

from tests.support.infra import (
    BinaryNotFoundError,
    LiveKitServer,
    NatsServer,
    RedisServer,
    ServerStartError,
    http_get,
)
from tests.support.livekit_helpers import server_api


async def test_nats_jetstream_is_up(nats_server: NatsServer) -> None:
    assert nats_server.url.startswith("nats://127.0.0.1:")
    nc = await nats.connect(nats_server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        info = await nc.jetstream().account_info()
        assert info.limits is not None
        assert nc.connected_url is not None and nc.connected_url.hostname == "127.0.0.1"
    finally:
        await nc.close()


async def test_redis_is_up(redis_server: RedisServer) -> None:
    assert redis_server.url.startswith("redis://127.0.0.1:")
    client = aioredis.from_url(redis_server.url, socket_timeout=5)
    try:
        assert await client.ping() is True
        key = f"test:{uuid.uuid4().hex}"
        await client.set(key, "value", ex=60)
        assert await client.get(key) == b"value"
    finally:
        await client.aclose()


async def test_livekit_api_is_up(livekit_server: LiveKitServer) -> None:
    assert livekit_server.url.startswith("ws://127.0.0.1:")
    assert http_get(livekit_server.port, "/") == (200, b"OK")
    async with server_api(livekit_server) as lk:
        rooms = await lk.room.list_rooms(api.ListRoomsRequest())
    assert isinstance(rooms, api.ListRoomsResponse)


@pytest.mark.filterwarnings("ignore:The HMAC key is .* below the minimum recommended length")
async def test_livekit_rejects_a_wrong_secret(livekit_server: LiveKitServer) -> None:
    """The server really uses its generated keys (not the --dev defaults)."""
    wrong = api.LiveKitAPI(livekit_server.http_url, livekit_server.api_key, "x" * 48)
    devkey = api.LiveKitAPI(livekit_server.http_url, "devkey", "secret")
    try:
        for client in (wrong, devkey):
            with pytest.raises(api.TwirpError) as err:
                await client.room.list_rooms(api.ListRoomsRequest())
            assert err.value.status == 401
    finally:
        await wrong.aclose()
        await devkey.aclose()


async def test_nats_kill_and_restart_keeps_jetstream_data(
    fresh_nats: Callable[..., NatsServer],
) -> None:
    server = fresh_nats()
    port, store_dir = server.port, server.store_dir

    nc = await nats.connect(server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=5)
        await js.add_stream(
            StreamConfig(name="CRASHTEST", subjects=["crash.>"], storage=StorageType.FILE)
        )
        for i in range(3):
            ack = await js.publish(f"crash.{i}", f"message {i}".encode())
            assert ack.seq == i + 1
    finally:
        await nc.close()

    server.kill()  # SIGKILL: no graceful shutdown, no final flush
    assert not server.running
    server.restart()
    assert (server.port, server.store_dir) == (port, store_dir)

    nc = await nats.connect(server.url, connect_timeout=5, max_reconnect_attempts=0)
    try:
        js = nc.jetstream(timeout=5)
        # JetStream may still be recovering the stream right after startup
        async with asyncio.timeout(15):
            while True:
                try:
                    info = await js.stream_info("CRASHTEST")
                    break
                except nats.js.errors.NotFoundError:
                    await asyncio.sleep(0.1)
        assert info.state.messages == 3
        msg = await js.get_msg("CRASHTEST", seq=2)
        assert (msg.subject, msg.data) == ("crash.1", b"message 1")
    finally:
        await nc.close()


async def test_redis_persistence_survives_a_kill(fresh_redis: Callable[..., RedisServer]) -> None:
    server = fresh_redis(persistence=True)
    client = aioredis.from_url(server.url, socket_timeout=5)
    try:
        await client.set("kept", "yes")
    finally:
        await client.aclose()
    server.kill()
    server.restart()
    client = aioredis.from_url(server.url, socket_timeout=5)
    try:
        assert await client.get("kept") == b"yes"
    finally:
        await client.aclose()


async def test_livekit_restart_keeps_url_and_keys(
    fresh_livekit: Callable[..., LiveKitServer],
) -> None:
    server = fresh_livekit()
    url, key = server.url, server.api_key
    server.kill()
    server.restart()
    assert (server.url, server.api_key) == (url, key)
    async with server_api(server) as lk:
        await lk.room.list_rooms(api.ListRoomsRequest())


def test_missing_binary_says_how_to_get_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIVEKIT_SERVER_BIN", "/nonexistent/livekit-server")
    with pytest.raises(BinaryNotFoundError, match="make bootstrap"):
        LiveKitServer()


def test_startup_failure_includes_the_log_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a "server" that prints something and exits at once
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\necho 'fatal: something went wrong' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setenv("NATS_SERVER_BIN", str(fake))
    server = NatsServer(startup_timeout=5)
    try:
        with pytest.raises(ServerStartError, match="(?s)exited with code 3.*something went wrong"):
            server.start()
    finally:
        server.cleanup()


def test_a_first_start_whose_port_was_taken_meanwhile_moves_to_fresh_ports() -> None:
    """`free_ports` closes the ports it found before the server binds them; another process can
    take one in between (a full run hit it). The first start then retries on fresh ports."""
    import socket

    from tests.support.infra import AuthNatsServer, LiveKitServer

    for server in (LiveKitServer(), AuthNatsServer()):
        taken = server.port
        with socket.socket() as blocker:
            blocker.bind(("127.0.0.1", taken))
            blocker.listen()
            with server:
                assert server.running and server.port != taken
                assert str(server.port) in server.url
        if isinstance(server, AuthNatsServer):
            assert server.auth_url.endswith(f":{server.port}")
