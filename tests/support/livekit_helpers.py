"""Small helpers for tests that talk to a real LiveKit server (see ``infra.LiveKitServer``).

    token = mint_token(livekit_server, "viewer_abc_0011aabb", "room-1", can_publish=False)
    async with joined(livekit_server, token) as room:
        ...

Every wait here is bounded: each helper takes ``within`` (seconds) and raises ``TimeoutError``
when it runs out (to wait for a condition, use ``tests.support.waiting``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any, Protocol

import numpy as np
from livekit import api, rtc

DEFAULT_TIMEOUT = 15.0


class LiveKitEndpoint(Protocol):
    """What the helpers need of a server: ``infra.LiveKitServer`` has it."""

    url: str
    http_url: str
    api_key: str
    api_secret: str


def mint_token(
    server: LiveKitEndpoint,
    identity: str,
    room: str,
    *,
    name: str | None = None,
    metadata: str | None = None,
    attributes: dict[str, str] | None = None,
    ttl: timedelta = timedelta(hours=1),
    **grants: Any,
) -> str:
    """A join token for ``room`` signed with the server's key.

    ``grants`` are ``api.VideoGrants`` fields (``can_publish=False``, ``can_publish_data=False``,
    ``hidden=True``, ...); ``room_join=True`` is implied.
    """
    grants.setdefault("room_join", True)
    token = (
        api.AccessToken(server.api_key, server.api_secret)
        .with_identity(identity)
        .with_name(name or identity)
        .with_ttl(ttl)
        .with_grants(api.VideoGrants(room=room, **grants))
    )
    if metadata is not None:
        token = token.with_metadata(metadata)
    if attributes:
        token = token.with_attributes(attributes)
    return token.to_jwt()


def server_api(server: LiveKitEndpoint) -> api.LiveKitAPI:
    """A server-API client; use as ``async with server_api(server) as lk: ...``."""
    return api.LiveKitAPI(server.http_url, server.api_key, server.api_secret)


async def dispatch_jobs(lk: api.LiveKitAPI, room: str, agent_name: str) -> list[list[str]]:
    """Each of `agent_name`'s dispatches in `room`, as its jobs' participant identities
    (LiveKit lists a job a few seconds after it handed it out)."""
    listed = await lk.agent_dispatch.list_dispatch(room)
    return [
        [job.state.participant_identity for job in d.state.jobs]
        for d in listed
        if d.agent_name == agent_name
    ]


async def join(
    server: LiveKitEndpoint | str,
    token: str,
    *,
    options: rtc.RoomOptions | None = None,
    within: float = DEFAULT_TIMEOUT,
) -> rtc.Room:
    """Connect a new ``rtc.Room`` (a client, as a browser would be) and return it, connected.

    ``server`` is a ``LiveKitServer`` or a ws:// URL. No special RTC options are needed for
    media on 127.0.0.1: the server config does that work (see ``infra.LiveKitServer``).
    """
    url = server if isinstance(server, str) else server.url
    room = rtc.Room()
    try:
        async with asyncio.timeout(within):
            await room.connect(url, token, options or rtc.RoomOptions())
    except BaseException:
        await leave(room)
        raise
    return room


async def leave(room: rtc.Room, within: float = 10.0) -> None:
    """Disconnect, bounded; a hung disconnect must not hang the test session."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            await room.disconnect()


@contextlib.asynccontextmanager
async def joined(
    server: LiveKitEndpoint | str, token: str, **kwargs: Any
) -> AsyncIterator[rtc.Room]:
    """``join()`` as an async context manager that always disconnects."""
    room = await join(server, token, **kwargs)
    try:
        yield room
    finally:
        await leave(room)


async def wait_for_event(
    emitter: rtc.EventEmitter[Any],
    event: str,
    predicate: Callable[..., bool] = lambda *args: True,
    within: float = DEFAULT_TIMEOUT,
) -> tuple[Any, ...]:
    """Wait (bounded) for the next ``event`` whose arguments satisfy ``predicate``.

    Register it *before* doing what triggers the event, e.g. with ``asyncio.create_task``.
    Returns the event's arguments as a tuple.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[tuple[Any, ...]] = loop.create_future()

    def handler(*args: Any) -> None:
        if not future.done() and predicate(*args):
            future.set_result(args)

    emitter.on(event, handler)
    try:
        async with asyncio.timeout(within):
            return await future
    finally:
        emitter.off(event, handler)


# --------------------------------------------------------------------------------------------
# generated media


async def feed_sine(
    source: rtc.AudioSource, *, frequency: float = 440.0, amplitude: float = 0.5
) -> None:
    """Feed a sine wave into ``source`` forever, 10 ms frames (run it as a task; cancel it).

    ``capture_frame`` waits while the source's queue is full, so this paces itself in real time.
    """
    rate, channels = source.sample_rate, source.num_channels
    per_frame = rate // 100
    n = 0
    while True:
        t = (np.arange(per_frame) + n * per_frame) / rate
        mono = (amplitude * 32767 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
        samples = np.repeat(mono, channels) if channels > 1 else mono
        await source.capture_frame(rtc.AudioFrame(samples.tobytes(), rate, channels, per_frame))
        n += 1


async def feed_solid_color(
    source: rtc.VideoSource, width: int, height: int, rgb: tuple[int, int, int], fps: float = 30
) -> None:
    """Feed frames of one solid colour into ``source`` forever (run it as a task; cancel it)."""
    rgba = np.empty((height, width, 4), dtype=np.uint8)
    rgba[:, :] = (*rgb, 255)
    data = rgba.tobytes()
    while True:
        source.capture_frame(rtc.VideoFrame(width, height, rtc.VideoBufferType.RGBA, data))
        await asyncio.sleep(1 / fps)


def rms_int16(frame: rtc.AudioFrame) -> float:
    """Root mean square of an int16 audio frame (0 = silence, 32767 = full-scale square)."""
    samples = np.frombuffer(frame.data, dtype=np.int16).astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if samples.size else 0.0
