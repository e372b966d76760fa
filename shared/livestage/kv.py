"""Redis connections as every service makes them.

A pooled connection goes stale when Redis restarts; without retries the first command after a
restart fails even though Redis is back. `redis_options()` retries connection errors a few times
with a short backoff, so a restart costs a retry, not a failed request.
"""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from livestage.settings import RedisSettings


def redis_options(
    *, timeout_s: float = 5.0, connect_timeout_s: float = 2.0, retries: int = 3
) -> dict[str, Any]:
    """Keyword options for `redis.asyncio.Redis.from_url` (also accepted by `limits`).

    `timeout_s` bounds each command's wait for an answer (a Redis that accepts and never answers
    raises `redis.exceptions.TimeoutError` after it), `connect_timeout_s` each connect; a
    failed command is retried `retries` times, so the worst case is about
    `(retries + 1) * timeout_s`.
    """
    return {
        "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries),
        "retry_on_error": [ConnectionError, TimeoutError],
        "socket_connect_timeout": connect_timeout_s,
        "socket_timeout": timeout_s,
    }


def connect_redis(
    settings: RedisSettings,
    *,
    timeout_s: float = 5.0,
    connect_timeout_s: float = 2.0,
    retries: int = 3,
    max_connections: int = 100,
) -> Redis:
    """A pooled async Redis client for `settings.url` (connects lazily); the timeouts and
    retries are those of `redis_options`.

    The pool holds at most `max_connections` and makes a caller *wait* (up to `timeout_s`) for a
    free one: redis-py's default pool instead fails at once with "Too many connections" when
    more than 100 commands are in flight, which a rush of requests reaches easily.
    """
    options = redis_options(
        timeout_s=timeout_s, connect_timeout_s=connect_timeout_s, retries=retries
    )
    pool = BlockingConnectionPool.from_url(
        settings.url, max_connections=max_connections, timeout=timeout_s, **options
    )
    client: Redis = Redis.from_pool(pool)
    return client
