"""Twitch EventSub WebSocket messages in, what the bridge does with them out (pure, no I/O).

Every message Twitch sends on the socket is an envelope `{metadata: {message_id, message_type,
message_timestamp, subscription_type?, subscription_version?}, payload}`; `parse_envelope`
checks it. For a `notification`, `action_of` maps the subscription's event:

| subscription type | becomes |
|---|---|
| `channel.chat.message` | `PlatformMessage` (roles from badges; a cheer: `cheer`, "100 bits") |
| `channel.chat.notification` (sub, resub, sub_gift) | `PlatformMessage`, `subscription`, "Tier 1" |
| `channel.chat.message_delete` | `MessageDeleted(message_id)` |
| `channel.chat.clear_user_messages` (a ban, a timeout) | `UserCleared(user_id)` |

Anything else (other notices such as raids, unknown types) maps to None.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from livestage.schemas import PlatformEvent, PlatformRole

from .source import PlatformMessage

SUBSCRIPTION_TYPES: tuple[str, ...] = (
    "channel.chat.message",
    "channel.chat.message_delete",
    "channel.chat.clear_user_messages",
    "channel.chat.notification",
)
"""What the bridge subscribes to (version 1 each; condition: broadcaster and bot user ids)."""

BADGE_ROLES: dict[str, PlatformRole] = {
    "broadcaster": "broadcaster",
    "lead_moderator": "moderator",
    "moderator": "moderator",
    "vip": "vip",
    "subscriber": "subscriber",
    "founder": "subscriber",
}
"""Chat badge `set_id` → the author's role (a founder is an early subscriber)."""

SUBSCRIPTION_NOTICES: tuple[str, ...] = ("sub", "resub", "sub_gift")
TIERS: dict[str, str] = {"1000": "Tier 1", "2000": "Tier 2", "3000": "Tier 3"}


class MalformedMessage(ValueError):
    """A socket message that is not a Twitch EventSub envelope."""


@dataclass(frozen=True)
class Envelope:
    """One EventSub WebSocket message."""

    message_id: str
    message_type: str
    """session_welcome, session_keepalive, notification, session_reconnect, revocation."""
    timestamp_ms: int
    subscription_type: str
    """Empty for the session messages."""
    payload: dict[str, Any]

    @property
    def session(self) -> dict[str, Any]:
        """`payload.session` of a welcome or a reconnect."""
        session = self.payload.get("session")
        if not isinstance(session, dict) or not isinstance(session.get("id"), str):
            raise MalformedMessage(f"{self.message_type} without payload.session.id")
        return session

    @property
    def event(self) -> dict[str, Any]:
        """`payload.event` of a notification."""
        event = self.payload.get("event")
        if not isinstance(event, dict):
            raise MalformedMessage("notification without payload.event")
        return event


@dataclass(frozen=True)
class MessageDeleted:
    """The channel's moderators deleted one message."""

    message_id: str


@dataclass(frozen=True)
class UserCleared:
    """The channel banned or timed out a user: all their messages go."""

    user_id: str


Action = PlatformMessage | MessageDeleted | UserCleared


def epoch_ms(timestamp: str) -> int:
    """Twitch's RFC 3339 timestamps (nanoseconds, `Z`) as epoch milliseconds."""
    try:
        return int(datetime.fromisoformat(timestamp).timestamp() * 1000)
    except (TypeError, ValueError) as error:
        raise MalformedMessage(f"not an RFC 3339 timestamp: {timestamp!r}") from error


def parse_envelope(raw: str | bytes) -> Envelope:
    """Check and unpack one socket message; `MalformedMessage` when it is not an envelope."""
    try:
        data = json.loads(raw)
    except ValueError as error:
        raise MalformedMessage("not JSON") from error
    metadata = data.get("metadata") if isinstance(data, dict) else None
    payload = data.get("payload") if isinstance(data, dict) else None
    if not isinstance(metadata, dict) or not isinstance(payload, dict):
        raise MalformedMessage("no metadata or payload object")
    message_id, message_type = metadata.get("message_id"), metadata.get("message_type")
    if not isinstance(message_id, str) or not isinstance(message_type, str):
        raise MalformedMessage("metadata without message_id or message_type")
    return Envelope(
        message_id=message_id,
        message_type=message_type,
        timestamp_ms=epoch_ms(metadata.get("message_timestamp", "")),
        subscription_type=str(metadata.get("subscription_type") or ""),
        payload=payload,
    )


def roles_of(badges: Any) -> tuple[PlatformRole, ...]:
    """The roles the chat badges show, each once, in badge order."""
    roles: list[PlatformRole] = []
    for badge in badges if isinstance(badges, list) else []:
        role = BADGE_ROLES.get(badge.get("set_id", "")) if isinstance(badge, dict) else None
        if role is not None and role not in roles:
            roles.append(role)
    return tuple(roles)


def tier_name(sub: dict[str, Any]) -> str:
    """ "Prime", "Tier 1", "Tier 2", "Tier 3" from a notice's `sub`/`resub`/`sub_gift` object."""
    if sub.get("is_prime"):
        return "Prime"
    tier = str(sub.get("sub_tier", ""))
    return TIERS.get(tier, f"Tier {tier}" if tier else "")


def _chat_item(
    data: dict[str, Any],
    published_at_ms: int,
    event: PlatformEvent = "message",
    amount: str = "",
) -> PlatformMessage:
    message = data.get("message") or {}
    return PlatformMessage(
        platform="twitch",
        message_id=str(data["message_id"]),
        user_id=str(data["chatter_user_id"]),
        user_name=str(data.get("chatter_user_name") or data.get("chatter_user_login") or ""),
        text=str(message.get("text") or ""),
        published_at_ms=published_at_ms,
        roles=roles_of(data.get("badges")),
        event=event,
        amount=amount,
    )


def action_of(subscription_type: str, event: dict[str, Any], published_at_ms: int) -> Action | None:
    """What a notification's event means for the bridge (None: nothing to do)."""
    try:
        if subscription_type == "channel.chat.message":
            bits = (event.get("cheer") or {}).get("bits")
            if bits:
                return _chat_item(event, published_at_ms, event="cheer", amount=f"{bits} bits")
            return _chat_item(event, published_at_ms)
        if subscription_type == "channel.chat.notification":
            notice = event.get("notice_type")
            if notice not in SUBSCRIPTION_NOTICES:
                return None
            amount = tier_name(event.get(str(notice)) or {})
            return _chat_item(event, published_at_ms, event="subscription", amount=amount)
        if subscription_type == "channel.chat.message_delete":
            return MessageDeleted(message_id=str(event["message_id"]))
        if subscription_type == "channel.chat.clear_user_messages":
            return UserCleared(user_id=str(event["target_user_id"]))
    except (KeyError, AttributeError) as error:
        raise MalformedMessage(f"{subscription_type} event without {error}") from error
    return None


class RecentIds:
    """The last `size` ids seen, oldest forgotten first (Twitch may deliver a notification
    more than once, e.g. around a `session_reconnect`)."""

    def __init__(self, size: int = 2000) -> None:
        self.size = size
        self._ids: dict[str, None] = {}

    def __contains__(self, item: object) -> bool:
        return item in self._ids

    def add(self, item: str) -> bool:
        """Remember `item`; False when it was already remembered."""
        if item in self._ids:
            return False
        self._ids[item] = None
        if len(self._ids) > self.size:
            del self._ids[next(iter(self._ids))]
        return True
