"""NATS KV buckets whose keys lapse: leases and liveness keys (`ttl_bucket`).

A key's last write expires `ttl_s` after it was made (the bucket's max age), so a holder that
stops writing (a SIGKILLed process) lets it lapse without anyone deleting it. With
`marker_ttl_s`, nats-server (2.11+) leaves a marker when a key lapses, which a watcher sees as a
`PURGE` (the reason `MaxAge`): others learn of the lapse as it happens, not by polling.
"""

from __future__ import annotations

import logging

from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import BadRequestError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)


async def ttl_bucket(
    js: JetStreamContext,
    bucket: str,
    ttl_s: float,
    *,
    description: str,
    marker_ttl_s: float | None = None,
) -> KeyValue:
    """The bucket (in memory, one value per key), created, or its TTL brought to `ttl_s` when it
    exists with another (every replica should use the same; the latest one started wins).

    Raises `nats.js.errors.KeyValueLimitMarkerTTLNotSupportedError` when `marker_ttl_s` is asked
    of a nats-server older than 2.11."""
    config = KeyValueConfig(
        bucket=bucket,
        history=1,
        ttl=ttl_s,
        storage=StorageType.MEMORY,
        description=description,
        limit_marker_ttl=marker_ttl_s,
    )
    try:
        return await js.create_key_value(config)
    except BadRequestError:
        kv = await js.key_value(bucket)
        stream = (await js.stream_info(f"KV_{bucket}")).config
        stream.max_age = ttl_s
        stream.duplicate_window = min(ttl_s, stream.duplicate_window or ttl_s)
        await js.update_stream(stream)
        log.warning("bucket %s existed with another TTL: its TTL is now %s s", bucket, ttl_s)
        return kv
