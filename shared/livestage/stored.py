"""Reading what a JetStream stream holds, once, through an ephemeral pull consumer.

`read_stored(js, subject, config)` yields every message stored on `subject` from where
`config` starts (its deliver policy; no acks), in order, then unsubscribes. Used by
`Bus.history` and by the dead-letter listing (`livestage.deadletter`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig

log = logging.getLogger(__name__)


async def read_stored(
    js: JetStreamContext, subject: str, config: ConsumerConfig, *, stream: str | None = None
) -> AsyncIterator[Msg]:
    """Every message on `subject` from `config`'s start up to what was stored when called."""
    config.ack_policy = AckPolicy.NONE
    config.inactive_threshold = config.inactive_threshold or 5.0
    subscription = await js.pull_subscribe(subject, durable=None, stream=stream, config=config)
    try:
        pending = (await subscription.consumer_info()).num_pending or 0
        while pending > 0:
            try:
                msgs = await subscription.fetch(min(pending, 256), timeout=2.0)
            except (TimeoutError, nats.errors.TimeoutError):
                break
            pending -= len(msgs)
            for msg in msgs:
                yield msg
    finally:
        try:
            await subscription.unsubscribe()
        except (nats.errors.Error, OSError) as error:
            log.debug("unsubscribe after reading %s: %r", subject, error)
