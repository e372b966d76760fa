"""Pure decisions of chat-bridge: a platform's chat item becomes a `ChatMessage`, a host turn
becomes a reply for the platform (data in, data out, no I/O; `publish` and `replies` act).

A platform item becomes a viewer line like page chat, with its `source`:

- `id` is the first 32 hex characters of sha256("<platform>:<message id>"): the same item always
  gets the same id (JetStream's de-duplication, chat-history's and the pages' own), and the
  platform's deletions can name it without any lookup.
- `author_identity` is `<platform>:<user id>` (`livestage.identity.platform_identity`).
- `author_name` is the platform's display name cleaned like a page name (`livestage.text`, at
  most MAX_NAME_CHARS); a name with nothing visible left, or one that passes for the host or the
  show's staff (`livestage.display_names`, as the edge refuses at token time), becomes
  "<Platform> viewer". The channel's own broadcaster and moderators keep their names.
- `body` is the text cleaned and cut to MAX_CHAT_CHARS; an event with no text (a new member,
  a Super Chat without a comment) gets a short line saying what happened ("sent a Super Chat
  of $5.00", "became a member").
- `avatar` is the platform's name: the page draws its badge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import cache
from typing import Final

from livestage.display_names import Impersonation
from livestage.identity import platform_identity
from livestage.schemas import (
    MAX_CHAT_CHARS,
    MAX_NAME_CHARS,
    PLATFORM_NAMES,
    ChatMessage,
    ChatSource,
    Platform,
    PlatformRole,
)
from livestage.text import clean_text, shorten

from .source import PlatformMessage, ReplyTarget

MAX_AMOUNT_CHARS: Final = 32
TRUSTED_ROLES: Final = frozenset({"broadcaster", "moderator"})
"""Roles whose names are kept even when they read like staff: the channel chose them."""
REPLY_MAX_CHARS: Final[dict[str, int]] = {"twitch": 500, "youtube": 200}
"""The longest chat message each platform accepts."""
MAX_TARGET_NAME_CHARS: Final = 64


class Unpublishable(ValueError):
    """A platform item with nothing Livestage can show (no text, a malformed id)."""


def chat_id(platform: Platform, message_id: str) -> str:
    """The Livestage message id of a platform message (stable, 32 hex)."""
    return hashlib.sha256(f"{platform}:{message_id}".encode()).hexdigest()[:32]


def dedupe_id(platform: Platform, message_id: str) -> str:
    """The JetStream de-duplication id of a platform message: `<platform>:<message id>`."""
    return f"{platform}:{message_id}"


def fallback_name(platform: Platform) -> str:
    return f"{PLATFORM_NAMES[platform]} viewer"


@cache
def _impersonation() -> Impersonation:
    return Impersonation()


def _cut(text: str, max_chars: int) -> str:
    return clean_text(text[:max_chars])  # a cut can leave a trailing space or split a sequence


def display_name(platform: Platform, raw: str, roles: Iterable[PlatformRole] = ()) -> str:
    """The name shown for a platform author (see the module docstring)."""
    name = _cut(clean_text(raw), MAX_NAME_CHARS)
    if not name:
        return fallback_name(platform)
    if TRUSTED_ROLES.isdisjoint(roles) and _impersonation().match(name) is not None:
        return fallback_name(platform)
    return name


def event_line(message: PlatformMessage, amount: str) -> str:
    """What an item without text says happened."""
    match message.event:
        case "super_chat":
            return f"sent a Super Chat of {amount}" if amount else "sent a Super Chat"
        case "membership":
            return f"became a member ({amount})" if amount else "became a member"
        case "subscription":
            return f"subscribed ({amount})" if amount else "subscribed"
        case "cheer":
            return f"cheered {amount}" if amount else "cheered"
        case _:
            return ""


def body_of(message: PlatformMessage, amount: str) -> str:
    text = clean_text(message.text)
    if not text:
        text = event_line(message, amount)
    return _cut(text, MAX_CHAT_CHARS)


def to_chat_message(message: PlatformMessage, room: str, created_at: int) -> ChatMessage:
    """The viewer line for `message` in `room`; Unpublishable when there is nothing to show."""
    amount = _cut(clean_text(message.amount), MAX_AMOUNT_CHARS)
    body = body_of(message, amount)
    if not body:
        raise Unpublishable(f"{message.event} with no text")
    try:
        identity = platform_identity(message.platform, message.user_id)
        source = ChatSource(
            platform=message.platform,
            user_id=message.user_id,
            message_id=message.message_id,
            roles=list(dict.fromkeys(message.roles)),
            event=message.event,
            amount=amount,
        )
        return ChatMessage(
            id=chat_id(message.platform, message.message_id),
            room=room,
            author_identity=identity,
            author_name=display_name(message.platform, message.user_name, message.roles),
            avatar=message.platform,
            body=body,
            kind="viewer",
            created_at=created_at,
            source=source,
        )
    except ValueError as error:  # pydantic's ValidationError is one
        raise Unpublishable(str(error)) from error


def reply_target(message: PlatformMessage) -> ReplyTarget:
    """What a reply to `message` needs: its ids and the author's own platform name."""
    return ReplyTarget(
        platform=message.platform,
        message_id=message.message_id,
        user_id=message.user_id,
        user_name=_cut(clean_text(message.user_name), MAX_TARGET_NAME_CHARS),
    )


def reply_text(platform: Platform, spoken: str, names: Iterable[str]) -> str:
    """A text version of what the host said for `platform`'s chat, addressed to `names`
    ("@Marta ..."), cut at a word boundary to the platform's limit; "" when nothing was said."""
    said = clean_text(spoken)
    if not said:
        return ""
    handles = [name if name.startswith("@") else f"@{name}" for name in dict.fromkeys(names)]
    prefix = " ".join(handle for handle in handles if len(handle) > 1)
    limit = REPLY_MAX_CHARS[platform]
    if prefix:
        prefix = shorten(prefix, limit // 4) + " "
    return clean_text(prefix + shorten(said, limit - len(prefix)))
