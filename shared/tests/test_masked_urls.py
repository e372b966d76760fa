"""URLs with credentials are logged masked (`livestage.settings.mask_url`).

NATS_URL and REDIS_URL carry a user and password when the servers want auth. The table checks
the masking itself; the bus tests run a real nats-server that wants a password and read every
log record and error the bus produces, with the right password (it connects: the URL reaches the
client unmasked), a wrong one and a closed port.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Iterator

import pytest

from livestage.bus import Bus
from livestage.settings import NatsSettings, mask_url
from tests.support.infra import AuthNatsServer, free_ports
from tests.support.waiting import until


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("nats://user:hunter2@127.0.0.1:4222", "nats://user:***@127.0.0.1:4222"),
        (
            "nats://a:pass-one@h1:4222, nats://b:pass-two@h2:4222",
            "nats://a:***@h1:4222, nats://b:***@h2:4222",
        ),
        ("redis://:hunter2@redis:6379/0", "redis://:***@redis:6379/0"),
        ("rediss://default:hunter2@redis:6380/0", "rediss://default:***@redis:6380/0"),
        ("nats://s3cr3t-token@nats:4222", "nats://***@nats:4222"),
        ("redis://redis:6379/0?password=hunter2&db=1", "redis://redis:6379/0?password=***&db=1"),
        ("https://x.test/search?q=cats&api_key=hunter2#top", "https://x.test/search?q=cats&api_key=***#top"),
        (
            "cannot connect to NATS at nats://u:hunter2@h:4222: ConnectionRefusedError(111)",
            "cannot connect to NATS at nats://u:***@h:4222: ConnectionRefusedError(111)",
        ),
        # nothing to mask: unchanged
        ("nats://127.0.0.1:4222", "nats://127.0.0.1:4222"),
        ("http://livekit:7880/twirp", "http://livekit:7880/twirp"),
        ("mail me at someone@example.com", "mail me at someone@example.com"),
        ("https://x.test/users/@ada", "https://x.test/users/@ada"),
    ],
)  # fmt: skip
def test_mask_url(text: str, masked: str) -> None:
    assert mask_url(text) == masked
    assert "hunter2" not in mask_url(text) and "s3cr3t" not in mask_url(text)
    assert mask_url(mask_url(text)) == mask_url(text)


@pytest.fixture(scope="module")
def auth_nats() -> Iterator[AuthNatsServer]:
    with AuthNatsServer() as server:
        yield server


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


async def test_the_bus_connects_with_credentials_in_the_url(auth_nats: AuthNatsServer) -> None:
    bus = await Bus.connect(NatsSettings(url=auth_nats.auth_url), "mask-test")
    try:
        assert bus.connected
    finally:
        await bus.close()


async def log_of_connecting(url: str, caplog: pytest.LogCaptureFixture, awaited: str) -> str:
    """What the bus logs while it tries `url` (it retries: a service waits for NATS), up to the
    first record that contains `awaited`."""
    with caplog.at_level(logging.DEBUG):
        connecting = asyncio.create_task(Bus.connect(NatsSettings(url=url), "mask-test"))
        try:
            await until(lambda: awaited in logged(caplog).lower(), 15, f"a log of {awaited!r}")
        finally:
            connecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await connecting
    return logged(caplog)


async def test_a_refused_password_is_never_logged(
    auth_nats: AuthNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    url = f"nats://{auth_nats.user}:{wrong}@127.0.0.1:{auth_nats.port}"
    log = await log_of_connecting(url, caplog, "authorization violation")
    assert wrong not in log
    # ... while the log still says where it tried
    assert f"nats://{auth_nats.user}:***@127.0.0.1:{auth_nats.port}" in log


async def test_an_unreachable_server_is_named_without_its_password(
    caplog: pytest.LogCaptureFixture,
) -> None:
    (closed_port,), _ = free_ports(tcp=1)
    password = secrets.token_urlsafe(12)
    url = f"nats://livestage:{password}@127.0.0.1:{closed_port},nats://{password}@127.0.0.1:{closed_port}"
    log = await log_of_connecting(url, caplog, "connect call failed")
    assert password not in log
    assert f"nats://livestage:***@127.0.0.1:{closed_port},nats://***@127.0.0.1:{closed_port}" in log
