"""Redis connections as every service makes them.

A pooled connection goes stale when Redis restarts; without retries the first command after a
restart fails even though Redis is back. `redis_options()` retries connection errors a few times
with a short backoff, so a restart costs a retry, not a failed request.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from livestage.settings import RedisSettings


def redis_options() -> dict[str, Any]:
    """Keyword options for `redis.asyncio.Redis.from_url` (also accepted by `limits`)."""
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), 3),
        "retry_on_error": [ConnectionError, TimeoutError],
        "socket_connect_timeout": 2.0,
        "socket_timeout": 5.0,
    }


def connect_redis(settings: RedisSettings) -> Redis:
    """A pooled async Redis client for `settings.url` (connects lazily)."""
    client: Redis = Redis.from_url(settings.url, **redis_options())
    return client
