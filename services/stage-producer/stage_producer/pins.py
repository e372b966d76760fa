"""An operator's pin, kept where the next holder of the room's lease reads it (NATS KV).

The pin lives in the running loop's plan (`planner.RoomPlan.pin`); that plan is in the memory of
the replica holding the room's lease. So that a pin survives the room moving to another replica
(the holder SIGKILLed, or stopped), every pin is also written to the KV bucket `stage-pins`
(key: the room, value: the pinned `StageVisual`): on pin and on an operator's capture or
backdrop that replaces the pinned visual; deleted on unpin and when the show ends or is deleted.
A replica that starts a room's loop reads it first: the pinned visual (re-signed) is back on
screen and the plan holds it, as on the replica that died.

The bucket is file-backed, one value per key, no expiry: a pin holds until an operator or the
show's end lifts it. This service has no Redis, like the stage leases. NATS not answering is
logged and the pin stays in the local plan only (as before this bucket).
"""

from __future__ import annotations

import logging

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import ValidationError

from livestage.schemas import StageVisual

log = logging.getLogger(__name__)

PIN_BUCKET = "stage-pins"

_UNANSWERED = (nats.errors.Error, TimeoutError, OSError)


async def pin_bucket(js: JetStreamContext, bucket: str = PIN_BUCKET) -> KeyValue:
    """The pin bucket, created if needed."""
    config = KeyValueConfig(
        bucket=bucket,
        history=1,
        storage=StorageType.FILE,
        description="stage producer: the visual an operator pinned, per room",
    )
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        return await js.key_value(bucket)


class Pins:
    """Each room's pinned visual in the bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def save(self, visual: StageVisual) -> None:
        try:
            await self.kv.put(visual.room, visual.to_json())
        except _UNANSWERED as error:
            log.warning("room %s: the pin is kept on this replica only: %r", visual.room, error)

    async def clear(self, room: str) -> None:
        try:
            await self.kv.delete(room)
        except KeyNotFoundError:
            pass
        except _UNANSWERED as error:
            log.warning("room %s: could not lift the stored pin: %r", room, error)

    async def load(self, room: str) -> StageVisual | None:
        """The room's pinned visual; None when there is none (or NATS does not answer)."""
        try:
            entry = await self.kv.get(room)
        except KeyNotFoundError:  # also a deleted (lifted) pin
            return None
        except _UNANSWERED as error:
            log.warning("room %s: could not read the stored pin: %r", room, error)
            return None
        if not entry.value:
            return None
        try:
            return StageVisual.from_json(entry.value)
        except ValidationError:
            log.error("room %s: the stored pin is not a visual; ignored", room)
            return None
