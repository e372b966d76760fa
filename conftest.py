"""Fixtures for real infrastructure, shared by every test suite in the repo.

Session-wide servers (started once, on first use; stopped at the end of the run):

    nats_server      NatsServer     .url  nats://127.0.0.1:PORT, JetStream on, .store_dir
    redis_server     RedisServer    .url  redis://127.0.0.1:PORT/0
    livekit_server   LiveKitServer  .url  ws://127.0.0.1:PORT, .http_url, .api_key, .api_secret

Tests that share these must not assume an empty server: use unique room names, stream names,
subjects and keys (e.g. with ``uuid4().hex``).

Factories for a brand-new server that the test owns and may ``kill()``/``restart()``; every
server made is stopped and deleted after the test:

    def test_crash(fresh_nats):
        nats = fresh_nats()                   # started and ready
        redis = fresh_redis(persistence=True) # kwargs go to the constructor
        lk = fresh_livekit(webhook_urls=["http://127.0.0.1:9999/webhook"])

`bus` is a `livestage.bus.Bus` on `nats_server` with the streams declared, one per test.
`browser` is Debian's Chromium through Playwright (`tests/support/browser.py`), one per test.

A missing server binary is an error, never a skip; the message says how to get it.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.support.infra import LiveKitServer, NatsServer, RedisServer, ServerProcess

# Tests only ever talk to 127.0.0.1. A proxy from the environment would carry that traffic
# elsewhere (aiohttp, httpx and the LiveKit client's signalling socket all honour these).
for _var in ("http_proxy", "https_proxy", "all_proxy", "ws_proxy", "wss_proxy"):
    os.environ.pop(_var, None)
    os.environ.pop(_var.upper(), None)
os.environ["no_proxy"] = os.environ["NO_PROXY"] = "127.0.0.1,localhost,::1"

S = TypeVar("S", bound=ServerProcess)


@pytest.fixture(scope="session")
def nats_server() -> Iterator[NatsServer]:
    with NatsServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="session")
def livekit_server() -> Iterator[LiveKitServer]:
    with LiveKitServer() as server:
        yield server


def _factory(cls: type[S]) -> Iterator[Callable[..., S]]:
    made: list[S] = []

    def make(**kwargs: Any) -> S:
        server = cls(**kwargs)
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.cleanup()


@pytest.fixture
async def bus(nats_server: NatsServer) -> AsyncIterator[Any]:
    """A `livestage.bus.Bus` on the session's NATS, streams declared (`tests/support/bus.py`)."""
    from tests.support.bus import connected_bus

    async with connected_bus(nats_server) as connected:
        yield connected


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium through Playwright (`tests/support/browser.py`), closed after the test."""
    from tests.support.browser import launched_chromium

    async with launched_chromium() as launched:
        yield launched


@pytest.fixture
def fresh_nats() -> Iterator[Callable[..., NatsServer]]:
    yield from _factory(NatsServer)


@pytest.fixture
def fresh_redis() -> Iterator[Callable[..., RedisServer]]:
    yield from _factory(RedisServer)


@pytest.fixture
def fresh_livekit() -> Iterator[Callable[..., LiveKitServer]]:
    yield from _factory(LiveKitServer)


# The LiveKit client's native library (livekit-rtc's FFI) can panic in its own tokio threads
# while the interpreter tears down ("panic in a function that cannot unwind", SIGABRT), which
# turned a run whose every test passed into exit status 134. Once pytest has reported and every
# other plugin has finished, leave with the session's own status instead of running that
# teardown. Session-scoped servers are stopped by then (fixture finalizers run before this).
_exit_status: int | None = None


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if _exit_status is None or os.environ.get("LIVESTAGE_PYTEST_NORMAL_EXIT"):
        return
    import logging
    import sys

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_status)
