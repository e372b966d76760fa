"""The edge's only way to the LiveKit server API: every call bounded, every failure classified.

`livekit-api`'s Twirp client passes `timeout=None` to aiohttp on every request, which overrides
the session's timeout and means "wait forever": a LiveKit that accepts a connection and never
answers would hang the request (and outlive the dispatch lock). So each call here runs under
`asyncio.timeout(TOKEN_LIVEKIT_TIMEOUT_S)`, and the aiohttp session has its own connect limits.

Failures become one of three errors, which `errors.py` turns into responses:

- `LiveKitUnavailable` (timeout, connection refused, 5xx): 503 + Retry-After, worth a retry;
- `LiveKitRefusedCredentials` (401/403): the edge's key or secret is wrong. Logged as an error
  every time and answered 500 without Retry-After: retrying cannot help, an operator must fix
  the configuration;
- `LiveKitRejected` (any other 4xx): LiveKit refused what we asked; 502 with its message.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

import aiohttp
from livekit import api
from livekit.protocol.models import ParticipantInfo

from livestage.identity import is_viewer_identity
from livestage.settings import mask_url

log = logging.getLogger(__name__)

T = TypeVar("T")


class LiveKitError(Exception):
    """Base of the classified LiveKit failures; the message says what happened."""


class LiveKitUnavailable(LiveKitError):
    """LiveKit did not answer in time, or answered with a server error: try again later."""


class LiveKitRefusedCredentials(LiveKitError):
    """LiveKit refused the edge's API key or secret (401/403): a configuration error."""


class LiveKitRejected(LiveKitError):
    """LiveKit refused the request itself (another 4xx)."""


class LiveKitGateway:
    """A `LiveKitAPI` with its own session, whose calls go through `call()`."""

    def __init__(self, url: str, api_key: str, api_secret: str, *, timeout_s: float) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._credentials = (api_key, api_secret)
        self._api: api.LiveKitAPI | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def client(self) -> api.LiveKitAPI:
        """Created on first use: aiohttp wants a running event loop."""
        if self._api is None:
            # The session's timeout only covers calls that do not pass their own; livekit-api
            # passes timeout=None (= none at all), hence asyncio.timeout in call().
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=self.timeout_s, sock_connect=self.timeout_s, sock_read=self.timeout_s
                )
            )
            self._api = api.LiveKitAPI(self.url, *self._credentials, session=self._session)
        return self._api

    async def call(self, what: str, make: Callable[[api.LiveKitAPI], Awaitable[T]]) -> T:
        """Run one API call (`make(lkapi)`) within the timeout; raise a classified error."""
        try:
            async with asyncio.timeout(self.timeout_s):
                return await make(self.client)
        except TimeoutError as error:
            raise LiveKitUnavailable(
                f"LiveKit did not answer {what} within {self.timeout_s:g} s"
            ) from error
        except api.TwirpError as error:
            raise classify(what, error.status, error.code, error.message) from error
        except (aiohttp.ClientError, OSError) as error:
            log.warning(
                "LiveKit unreachable for %s at %s: %s",
                what,
                mask_url(self.url),
                mask_url(repr(error)),
            )
            raise LiveKitUnavailable(f"LiveKit unreachable for {what}") from error

    async def count_viewers(self, room: str) -> int:
        """Viewer participants in `room` now (viewer identities, agents excluded); 0 when
        LiveKit has no such room."""

        async def listed(lk: api.LiveKitAPI) -> api.ListParticipantsResponse:
            return await lk.room.list_participants(api.ListParticipantsRequest(room=room))

        try:
            participants = (await self.call("list_participants", listed)).participants
        except LiveKitRejected:  # no such room (yet): nobody in it
            return 0
        return sum(
            1
            for p in participants
            if p.kind != ParticipantInfo.Kind.AGENT and is_viewer_identity(p.identity)
        )

    async def send_to_room(self, room: str, topic: str, data: bytes) -> None:
        """Send one reliable data packet to everyone in `room` on `topic` (the pages hear it).
        A room that does not exist is not an error: nobody is there to tell."""

        async def send(lk: api.LiveKitAPI) -> None:
            # livekit-server does not answer SendData for a room it does not have (no not_found:
            # the call waits until our timeout), so ask first.
            listed = await lk.room.list_rooms(api.ListRoomsRequest(names=[room]))
            if not listed.rooms:
                return
            request = api.SendDataRequest(
                room=room, data=data, kind=api.DataPacket.Kind.RELIABLE, topic=topic
            )
            try:
                await lk.room.send_data(request)
            except api.TwirpError as error:
                if error.code != "not_found":
                    raise

        await self.call(f"send to room {room}", send)

    async def aclose(self) -> None:
        if self._api is not None:
            await self._api.aclose()
        if self._session is not None:
            await self._session.close()  # LiveKitAPI leaves a session it was given open


def classify(what: str, status: int, code: str, message: str) -> LiveKitError:
    """The error class for a LiveKit HTTP answer (pure, so each case is easy to test)."""
    detail = f"{what}: HTTP {status} {code}" + (f" ({message})" if message else "")
    if status in (401, 403) or code in ("unauthenticated", "permission_denied"):
        log.error(
            "LiveKit refused the edge's credentials on %s. Check LIVEKIT_API_KEY and "
            "LIVEKIT_API_SECRET: they must be a key/secret pair of the server at LIVEKIT_URL "
            "(or LIVEKIT_API_URL).",
            detail,
        )
        return LiveKitRefusedCredentials(
            f"LiveKit refused the edge's API credentials ({detail}): the edge is misconfigured "
            "(LIVEKIT_API_KEY / LIVEKIT_API_SECRET); retrying will not help"
        )
    if status >= 500 or code in ("unavailable", "deadline_exceeded", "internal"):
        return LiveKitUnavailable(f"LiveKit failed {detail}")
    return LiveKitRejected(f"LiveKit rejected {detail}")
