"""Participant identities for tests, always made by `livestage.identity` (never by hand).

viewer_identity()           # a fresh visitor: its own tag and suffix
viewer_identity(tag)        # another tab of visitor `tag` (same tag, a fresh suffix)
named_viewer("Ada")         # the same well-formed identity for the same name, every time
preview_identity()          # the console's preview: watches, is no audience
"""

from __future__ import annotations

import hashlib
import secrets

from livestage import identity


def viewer_identity(tag: str | None = None) -> str:
    """A well-formed viewer identity with a fresh suffix: of visitor `tag`, or of a new one."""
    return identity.viewer_identity(tag or secrets.token_hex(8), secrets.token_hex(4))


def named_viewer(name: str) -> str:
    """The viewer identity of `name` (any text): stable, so "the same viewer again" needs no
    hand-written identity."""
    digest = hashlib.sha256(name.encode()).hexdigest()
    return identity.viewer_identity(digest[:16], digest[16:24])


def preview_identity(tag: str | None = None) -> str:
    """A well-formed console preview identity (no audience), of visitor `tag` or a new one."""
    return identity.preview_identity(tag or secrets.token_hex(8), secrets.token_hex(4))
