"""The LiveKit side of chat-history: data packets to a room or one participant, removals.

Every server-API call has an explicit timeout (`HISTORY_SEND_TIMEOUT_S`). A room that does not
exist has nobody to deliver to: LiveKit answers such a send only after its own ~3 s wait, with a
503, so a room not seen alive recently is checked with `list_rooms` (about a millisecond)
before sending, and a failed send is followed by the same check. The check always runs after the
message is in Redis, so a viewer who joins later reads it from history: skipping the send
loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import aiohttp
from livekit import api

from livestage.schemas import WireModel
from livestage.settings import LiveKitSettings

from .decisions import participants_of_visitor

log = logging.getLogger(__name__)

ROOM_ALIVE_TRUST_S = 30.0
"""How long a room seen alive is assumed alive without asking again (a wrong guess costs one
timed-out send, then the check)."""
ROOM_TOKEN_TTL = timedelta(hours=1)
ROOM_TOKEN_REFRESH_S = 30 * 60.0
"""A room's admin token is reused for half its life: livekit-api signs a fresh JWT for every
call otherwise, which was half of chat-history's CPU per message."""


class DeliveryFailed(RuntimeError):
    """LiveKit did not take a packet for a room that exists (it will be retried)."""


_API_ERRORS = (api.TwirpError, aiohttp.ClientError, TimeoutError)


class RoomGateway:
    """Sends chat packets into LiveKit rooms through the server API."""

    def __init__(self, livekit: LiveKitSettings, topic: str, timeout_s: float) -> None:
        self.topic = topic
        self.timeout_s = timeout_s
        self.livekit = livekit
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
        # Key and secret: for ListRooms (not room-scoped); every room call uses `_room_api`.
        self.api = api.LiveKitAPI(
            livekit.http_url,
            livekit.api_key,
            livekit.api_secret.get_secret_value(),
            session=self._session,
        )
        self._alive_at: dict[str, float] = {}
        self._room_apis: dict[str, tuple[api.LiveKitAPI, float]] = {}

    async def aclose(self) -> None:
        await self._session.close()

    def _room_api(self, room: str) -> api.LiveKitAPI:
        """A client whose calls carry a reused room-admin token for `room`."""
        cached = self._room_apis.get(room)
        now = time.monotonic()
        if cached is not None and now - cached[1] < ROOM_TOKEN_REFRESH_S:
            return cached[0]
        token = (
            api.AccessToken(self.livekit.api_key, self.livekit.api_secret.get_secret_value())
            .with_ttl(ROOM_TOKEN_TTL)
            .with_grants(api.VideoGrants(room_admin=True, room=room))
            .to_jwt()
        )
        client = api.LiveKitAPI(self.livekit.http_url, token=token, session=self._session)
        self._room_apis[room] = (client, now)
        return client

    async def room_exists(self, room: str) -> bool:
        async with asyncio.timeout(self.timeout_s):
            listed = await self.api.room.list_rooms(api.ListRoomsRequest(names=[room]))
        exists = any(item.name == room for item in listed.rooms)
        if exists:
            self._alive_at[room] = time.monotonic()
        else:
            self._alive_at.pop(room, None)
        return exists

    def _seen_alive(self, room: str) -> bool:
        seen = self._alive_at.get(room)
        return seen is not None and time.monotonic() - seen < ROOM_ALIVE_TRUST_S

    async def send(
        self, room: str, packet: WireModel | bytes, destinations: list[str] | None = None
    ) -> bool:
        """Send `packet` (a model, or its JSON) reliably on the chat topic; False when the room
        does not exist.

        Raises DeliveryFailed when the room exists but LiveKit did not take the packet.
        """
        try:
            if not self._seen_alive(room) and not await self.room_exists(room):
                return False
            async with asyncio.timeout(self.timeout_s):
                await self._room_api(room).room.send_data(
                    api.SendDataRequest(
                        room=room,
                        data=packet if isinstance(packet, bytes) else packet.to_json(),
                        kind=api.DataPacket.Kind.RELIABLE,
                        topic=self.topic,
                        destination_identities=destinations or [],
                    )
                )
        except _API_ERRORS as error:
            try:
                if not await self.room_exists(room):
                    return False  # it closed meanwhile: nobody to deliver to
            except _API_ERRORS:
                pass
            raise DeliveryFailed(f"LiveKit send to room {room!r} failed: {error!r}") from error
        self._alive_at[room] = time.monotonic()
        return True

    async def remove_visitor(self, room: str, visitor_tag: str) -> list[str]:
        """Remove every participant of `room` that belongs to the visitor; their identities."""
        try:
            async with asyncio.timeout(self.timeout_s):
                listed = await self._room_api(room).room.list_participants(
                    api.ListParticipantsRequest(room=room)
                )
        except _API_ERRORS as error:
            raise DeliveryFailed(f"LiveKit participants of {room!r}: {error!r}") from error
        targets = participants_of_visitor((p.identity for p in listed.participants), visitor_tag)
        removed: list[str] = []
        for identity in targets:
            try:
                async with asyncio.timeout(self.timeout_s):
                    await self._room_api(room).room.remove_participant(
                        api.RoomParticipantIdentity(room=room, identity=identity)
                    )
            except api.TwirpError as error:
                if error.code == api.TwirpErrorCode.NOT_FOUND:
                    continue  # left by itself meanwhile
                raise DeliveryFailed(f"LiveKit remove {identity!r}: {error!r}") from error
            except (aiohttp.ClientError, TimeoutError) as error:
                raise DeliveryFailed(f"LiveKit remove {identity!r}: {error!r}") from error
            removed.append(identity)
        return removed
