"""Moderation checks, one file each behind `base.Check`, chosen by name (`MODERATION_CHECKS`) in
`CHECKS`, the family's `livestage.registry.Registry`: a name no check has, or one listed twice,
is refused with the valid names.

| name | rejects | strike |
|---|---|---|
| banned | an operator banned the visitor | no |
| muted | the visitor is muted after too many strikes | no |
| empty | nothing visible (only marks or blank fillers) | no |
| zalgo | letters under stacked combining marks | no |
| blocklist | our list file (+ allowlist), every normalized spelling | yes |
| wordlist | better-profanity's word list (+ allowlist), every normalized spelling | yes |
| classifier | alt-profanity-check's model at or above the threshold | yes |
| links | a link to a host not in the allowlist setting | yes |
| flood | more than N messages in the window from one visitor | yes |
| duplicate | the same text again from one visitor within the window | no |
| length | too many characters, or a word too long | no |
| caps | mostly capital letters | no |
| repeat | one character over and over | no |
| openai | OpenAI's moderation endpoint flagged it (or failed, when fail-closed) | yes |
| room_rate | the room already approved N messages in this second (every instance counted) | no |
"""

from __future__ import annotations

from collections.abc import Sequence

from livestage.registry import Registry, RegistryError, UnknownBackend
from moderation.checks.banned import Banned
from moderation.checks.base import Check, Context, OpenAIResult, RecentMessage, Verdict
from moderation.checks.blocklist import Blocklist
from moderation.checks.caps import Caps
from moderation.checks.classifier import Classifier
from moderation.checks.duplicate import Duplicate
from moderation.checks.empty import Empty
from moderation.checks.flood import Flood
from moderation.checks.length import Length
from moderation.checks.links import Links
from moderation.checks.muted import Muted
from moderation.checks.openai_moderation import OpenAIModeration
from moderation.checks.repeat import Repeat
from moderation.checks.room_rate import RoomRate
from moderation.checks.wordlist import Wordlist
from moderation.checks.zalgo import Zalgo
from moderation.settings import ModerationSettings

CHECKS: Registry[Check] = Registry(
    "check",
    setting="MODERATION_CHECKS",
    members=(
        Banned,
        Muted,
        Empty,
        Zalgo,
        Blocklist,
        Wordlist,
        Classifier,
        Links,
        Flood,
        Duplicate,
        Length,
        Caps,
        Repeat,
        OpenAIModeration,
        RoomRate,
    ),
)


def build_checks(names: Sequence[str], settings: ModerationSettings) -> list[Check]:
    """The checks named, in that order, built from the settings (lists and models load here).

    A name no check has raises `UnknownBackend`, a name listed twice `RegistryError`."""
    return [CHECKS.create(name, settings) for name in CHECKS.check_unique(names)]


__all__ = [
    "CHECKS",
    "Check",
    "Context",
    "OpenAIResult",
    "RecentMessage",
    "RegistryError",
    "UnknownBackend",
    "Verdict",
    "build_checks",
]
