"""A `livestage.bus.Bus` for tests, on a test NATS server (the root conftest's `bus` fixture).

async with connected_bus(nats_server, "my-test") as bus:   # streams declared, closed after
    await bus.publish(subjects.chat_approved(room), message)
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from livestage.bus import Bus
from livestage.settings import NatsSettings


@contextlib.asynccontextmanager
async def connected_bus(nats: Any, name: str = "tests") -> AsyncIterator[Bus]:
    """A Bus on `nats` (a `NatsServer` or a nats:// URL) with every stream declared."""
    url = nats if isinstance(nats, str) else nats.url
    bus = await Bus.connect(NatsSettings(url=url), name)
    try:
        await bus.ensure_streams()
        yield bus
    finally:
        await bus.close()
