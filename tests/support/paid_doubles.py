"""The production host backends (OpenAI Realtime voice, Anam avatar) against their doubles, for a
host worker in a test (`tests/support/host_worker.py`):

    async with paid_worker(livekit_server, nats_server, redis_server.url) as (worker, realtime,
                                                                             anam):
        ...     # or realtime_and_anam() and realtime_anam_services() for a worker of one's own

The Realtime double says what a `say` asks for verbatim (so captions and `host.spoken` carry the
operator's words) and `REPLY` to everything else.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import SecretStr

from host_agent.settings import CostSettings, LocalAvatarSettings
from livestage.settings import AnamSettings, OpenAISettings, RedisSettings
from tests.doubles.anam import AnamDouble, AvatarConfig
from tests.doubles.openai_realtime import OpenAIRealtimeDouble, ReplyContext
from tests.support.host_worker import HostWorker, running_worker

REPLY = "Great question Ada, we are watching the night sky tonight."
OPENAI_KEY, ANAM_KEY = "test-openai-key", "test-anam-key"
FAST = {
    "connect_timeout_s": 1.0,
    "connect_retries": 1,
    "retry_interval_s": 0.1,
    "remote_avatar_start_timeout_s": 2.0,
    "remote_avatar_join_timeout_s": 4.0,
    "viewer_wait_s": 8.0,
}
"""Short connection timeouts (`HOST_*`): each fallback takes a second or two."""
SMALL_AVATAR = LocalAvatarSettings(width=192, height=192, fps=15)


def verbatim_say(otherwise: str) -> Callable[[ReplyContext], str]:
    """A Realtime double's reply: what a `say` asks for, verbatim; `otherwise` to all else."""
    marker = "and nothing else: "

    def reply(ctx: ReplyContext) -> str:
        if ctx.instructions and marker in ctx.instructions:
            return ctx.instructions.split(marker, 1)[1]
        return otherwise

    return reply


realtime_reply = verbatim_say(REPLY)
"""The double says what a `say` asks for verbatim, and `REPLY` to everything else."""


@contextlib.asynccontextmanager
async def realtime_and_anam() -> AsyncIterator[tuple[OpenAIRealtimeDouble, AnamDouble]]:
    """The OpenAI Realtime double (answering with `realtime_reply`) and the Anam double (a
    small avatar, to spare the CPU), running."""
    async with (
        OpenAIRealtimeDouble(api_key=OPENAI_KEY) as realtime,
        AnamDouble(
            api_key=ANAM_KEY, avatar_config=AvatarConfig(width=320, height=240, fps=15)
        ) as anam,
    ):
        realtime.config.reply = realtime_reply
        yield realtime, anam


def realtime_anam_services(
    realtime: OpenAIRealtimeDouble, anam: AnamDouble, redis_url: str, **cost: Any
) -> dict[str, Any]:
    """A worker's `services` (see `worker_config`) for voice `openai-realtime` and avatar `anam`
    on these doubles; `cost` sets `CostSettings` fields (e.g. `daily_cap_usd`)."""
    return {
        "redis": RedisSettings(url=redis_url),
        "local_avatar": SMALL_AVATAR,
        "cost": CostSettings(**{"check_interval_s": 1.0, **cost}),
        "openai": OpenAISettings(api_key=SecretStr(OPENAI_KEY), base_url=realtime.base_url),
        "anam": AnamSettings(
            api_key=SecretStr(ANAM_KEY), api_url=anam.url, avatar_id="cara-avatar-id"
        ),
    }


@contextlib.asynccontextmanager
async def paid_worker(
    livekit: Any, nats: Any, redis_url: str, *, cost: dict[str, Any] | None = None, **host: Any
) -> AsyncIterator[tuple[HostWorker, OpenAIRealtimeDouble, AnamDouble]]:
    """A registered host worker on voice `openai-realtime` and avatar `anam`, both on their
    doubles (`realtime_and_anam`), with `FAST` timeouts; `host` adds `HOST_*` settings, `cost`
    `CostSettings` fields."""
    async with realtime_and_anam() as (realtime, anam):
        services = realtime_anam_services(realtime, anam, redis_url, **(cost or {}))
        async with running_worker(
            livekit,
            nats,
            services=services,
            voice="openai-realtime",
            avatar="anam",
            **(FAST | host),
        ) as worker:
            yield worker, realtime, anam
