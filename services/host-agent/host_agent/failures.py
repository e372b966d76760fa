"""Why a production backend failed, as one short reason from a small closed set.

The reason goes into the logs and into `livestage.host.backend_fallbacks{reason}`, so it must
stay a handful of values however the plugins wrap their errors. The plugins nest errors
several deep (`RealtimeModelError(error=APIConnectionError(...))` caused by an aiohttp
handshake error; `APIConnectionError` caused by an `openai.APIStatusError`; see
`tests/doubles/README.md`), so this walks `.error`, `__cause__` and `__context__` and takes the
most specific thing it finds. Pure: duck-typed, no plugin imports.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

REASONS = (
    "http_401",
    "http_403",
    "http_429",
    "http_4xx",
    "http_5xx",
    "auth",
    "quota",
    "timeout",
    "disconnected",
    "connection",
    "no_video",
    "avatar_left",
    "spend_cap",
    "unavailable",
    "error",
)
"""Every reason `failure_reason` (and the job) can give."""

GENERIC = frozenset({"connection", "error"})
"""Reasons that say little: a job prefers a more specific one it saw just before."""

_AUTH_CODES = frozenset({"invalid_api_key", "account_deactivated"})
_QUOTA_CODES = frozenset(
    {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
)


def _chain(error: object, limit: int = 12) -> Iterator[object]:
    """`error` and what it wraps: `.error` (livekit-agents' error events), causes, contexts."""
    seen: set[int] = set()
    todo = [error]
    while todo and len(seen) < limit:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for name in ("error", "__cause__", "__context__"):
            inner = getattr(current, name, None)
            if inner is not None and inner is not current:
                todo.append(inner)


def _status(error: object) -> int | None:
    for name in ("status_code", "status"):
        value = getattr(error, name, None)
        if isinstance(value, int) and 100 <= value <= 599:
            return value
    return None


def _code(error: object) -> str | None:
    # an HTTP error's `code` may be its status (aiohttp's, deprecated): only bodies then
    holders = (
        (getattr(error, "body", None),) if _status(error) else (error, getattr(error, "body", None))
    )
    for holder in holders:
        if holder is None:
            continue
        code = holder.get("code") if isinstance(holder, dict) else getattr(holder, "code", None)
        if isinstance(code, str) and code:
            return code
    return None


def _from_status(status: int) -> str:
    if status in (401, 403, 429):
        return f"http_{status}"
    if status == 408:
        return "timeout"
    return "http_5xx" if status >= 500 else "http_4xx"


def failure_reason(error: object) -> str:
    """One of `REASONS` for an exception or a livekit-agents error event payload."""
    found: list[str] = []
    for item in _chain(error):
        told = getattr(item, "reason", None)
        if isinstance(told, str) and told in REASONS and told not in GENERIC:
            return told
        code = _code(item)
        if code in _QUOTA_CODES:
            return "quota"
        status = _status(item)
        if status is not None and status >= 400:
            return _from_status(status)
        if code in _AUTH_CODES:
            return "auth"
        name = type(item).__name__
        text = str(item).lower()
        if isinstance(item, TimeoutError | asyncio.TimeoutError) or "timeout" in name.lower():
            found.append("timeout")
        elif "timed out" in text:
            found.append("timeout")
        elif "closed unexpectedly" in text or "disconnect" in text or "connection lost" in text:
            found.append("disconnected")
        elif "connection" in name.lower() or "connection" in text:
            found.append("connection")
    for reason in ("timeout", "disconnected", "unavailable", "connection"):
        if reason in found:
            return reason
    return "error"
