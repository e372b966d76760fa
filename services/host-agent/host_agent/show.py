"""The show a host job hosts: its configuration (`livestage.shows`) over the deployment's settings.

At dispatch the worker reads the room's `ShowConfig` from Redis (at most `SHOW_READ_TIMEOUT_S`)
and gives the job its own `JobConfig` (`for_show`); the worker's config is never changed, so jobs
of other shows in the same process keep theirs. What a show overrides, for its jobs only:

- `persona` over HOST_PERSONA_FILE (`<persona>.yaml/.toml` in HOST_PERSONA_DIR; no such file:
  the default persona, with a WARNING);
- `voice` over HOST_VOICE and `avatar` over HOST_AVATAR (one that cannot start here, e.g. anam
  without ANAM_API_KEY, falls back by the existing rules: logged, a `fallback` job event);
- `dailyCapUsd` over HOST_COST_DAILY_CAP_USD (the cap written to `spend_cap_key(room)`).

Null fields, no record, or Redis away (logged once, WARNING) mean the deployment's settings. A
running job follows `room.config.<room>`: a new persona applies at once (like the `persona`
control command); backends and the cap apply from the room's next job.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from pathlib import Path

from host_agent.config import JobConfig
from host_agent.persona import PersonaError, find_persona
from livestage.kv import connect_redis
from livestage.schemas import ShowConfig
from livestage.shows import ShowStore

log = logging.getLogger(__name__)

SHOW_READ_TIMEOUT_S = 2.0
"""How long a job waits for its show's record before going on with the deployment's settings."""


async def read_show(config: JobConfig, room: str) -> ShowConfig | None:
    """The room's show configuration; None (logged) when there is none or Redis does not answer."""
    redis = connect_redis(config.redis, timeout_s=SHOW_READ_TIMEOUT_S, retries=0)
    store = ShowStore(redis, default_room=config.livekit.room)
    try:
        async with asyncio.timeout(SHOW_READ_TIMEOUT_S):
            show = await store.config(room)
    except Exception as error:  # noqa: BLE001 - Redis or its timeout: the settings, logged
        log.warning(
            "room %s: show configuration unknown (%r); the deployment's settings apply",
            room,
            error,
        )
        return None
    finally:
        await redis.aclose()
    if show is None:
        log.info("room %s: no show configuration; the deployment's settings apply", room)
    return show


def for_show(config: JobConfig, show: ShowConfig | None) -> JobConfig:
    """The job's config: `config` with the show's backends and daily cap (persona: see
    `persona_file`). The worker's `config` is not changed."""
    if show is None:
        return config
    host = config.host.model_copy(
        update={
            "voice": show.voice or config.host.voice,
            "avatar": show.avatar or config.host.avatar,
        }
    )
    cost = config.cost
    if show.daily_cap_usd is not None:
        cost = cost.model_copy(update={"daily_cap_usd": show.daily_cap_usd})
    return dataclasses.replace(config, host=host, cost=cost, show=show)


def persona_file(config: JobConfig, room: str) -> Path:
    """The persona file of the job's show: `<persona>` in HOST_PERSONA_DIR, else (none named, or
    no such file: a WARNING) HOST_PERSONA_FILE."""
    name = config.show.persona if config.show is not None else None
    if name is None:
        return config.host.persona_file
    try:
        return find_persona(config.host.persona_dir, name)
    except PersonaError as error:
        log.warning(
            "room %s: the show's persona cannot be used (%s); the default persona", room, error
        )
        return config.host.persona_file
