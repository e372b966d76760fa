"""Token requests on the edge: what a viewer rush costs, with and without the host-state cache.

Starts NATS, Redis and livekit-server on 127.0.0.1, puts a counting TCP proxy
(`tests/support/tcp_double.py`) in front of LiveKit's server API, and runs one edge in-process
per variant. For each: the first request (cache miss: decide, dispatch), then `SEQUENTIAL`
requests one after another and a rush of `RUSH` concurrent requests from new visitors. Reports
latency percentiles and LiveKit API calls per token request.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import uuid
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from livestage.settings import LiveKitSettings, NatsSettings, RedisSettings
from tests.support.infra import LiveKitServer, NatsServer, RedisServer
from tests.support.services import free_port
from tests.support.tcp_double import TcpDouble
from token_service.app import create_app, server_config
from token_service.settings import EdgeSettings

SEQUENTIAL = 100
RUSH = 200
PROFILE = {"displayName": "Bench", "avatar": "fox"}


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


async def _variant(
    name: str, cache_ttl_s: float, nats: NatsServer, redis: RedisServer, livekit: LiveKitServer
) -> dict[str, Any]:
    async with TcpDouble(target=("127.0.0.1", livekit.port)) as proxy:
        port = free_port()
        edge = EdgeSettings(
            host="127.0.0.1",
            port=port,
            host_cache_ttl_s=cache_ttl_s,
            rate_token_per_ip="1000000/minute",
            rate_token_per_visitor="1000000/minute",
        )
        app = create_app(
            edge=edge,
            livekit=LiveKitSettings(
                url=livekit.url,
                api_url=proxy.url,
                api_key=livekit.api_key,
                api_secret=SecretStr(livekit.api_secret),
                room=f"bench-{uuid.uuid4().hex[:8]}",
                agent_name="bench-host",
            ),
            nats=NatsSettings(url=nats.url),
            redis=RedisSettings(url=redis.url),
        )
        server = uvicorn.Server(server_config(app, edge, log_level="warning"))
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 - uvicorn has no event for it
            await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                started = time.perf_counter()
                first = await client.post("/api/livekit-token", json=PROFILE)
                first_s = time.perf_counter() - started
                assert first.status_code == 200, first.text

                calls_before = len(proxy.requests)
                sequential: list[float] = []
                for _ in range(SEQUENTIAL):
                    started = time.perf_counter()
                    response = await client.post("/api/livekit-token", json=PROFILE)
                    sequential.append(time.perf_counter() - started)
                    assert response.status_code == 200, response.text
                sequential_calls = len(proxy.requests) - calls_before

            limits = httpx.Limits(max_connections=RUSH)
            async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as rush_client:
                calls_before = len(proxy.requests)

                async def one() -> float:
                    rush_client.cookies.clear()
                    started = time.perf_counter()
                    response = await rush_client.post("/api/livekit-token", json=PROFILE)
                    assert response.status_code == 200, response.text
                    return time.perf_counter() - started

                rush_started = time.perf_counter()
                rush = await asyncio.gather(*[one() for _ in range(RUSH)])
                rush_wall = time.perf_counter() - rush_started
                rush_calls = len(proxy.requests) - calls_before
        finally:
            server.should_exit = True
            await asyncio.wait_for(task, 15)
    return {
        "variant": name,
        "host_cache_ttl_s": cache_ttl_s,
        "first_request_ms": round(first_s * 1000, 1),
        "sequential": {
            "requests": SEQUENTIAL,
            **_ms(sequential),
            "livekit_calls_per_request": round(sequential_calls / SEQUENTIAL, 2),
        },
        "rush": {
            "requests": RUSH,
            **_ms(rush),
            "wall_s": round(rush_wall, 2),
            "livekit_calls": rush_calls,
        },
    }


async def run() -> dict[str, Any]:
    with NatsServer() as nats, RedisServer() as redis, LiveKitServer() as livekit:
        cached = await _variant("cache on (default 5 s)", 5.0, nats, redis, livekit)
        uncached = await _variant("cache off (1 ms TTL)", 0.001, nats, redis, livekit)
    return {
        "sequential_requests": SEQUENTIAL,
        "rush_requests": RUSH,
        "variants": [cached, uncached],
    }
