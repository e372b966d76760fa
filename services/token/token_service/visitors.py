"""Visitors: a server-issued, signed id in an HttpOnly cookie, and the opaque tag others see.

A browser's first token request gets a fresh visitor id (128 random bits) in the cookie
`livestage_visitor` (HttpOnly, SameSite=Strict, Path=/api, Secure on https): the page's scripts
cannot read it and other sites' requests do not carry it. The cookie value is
`v1.<id>.<signature>`; a value that does not verify counts as no cookie (a new visitor).

The visitor id itself never leaves the edge: identities carry the visitor *tag*, a keyed hash of
the id (16 lowercase hex characters, `livestage.identity`). Rate limits and bans key on the tag,
so a new token (re-minting) is the same visitor, and the tag tells other viewers nothing they
could use to follow or impersonate someone.

Both derive from one key: `TOKEN_VISITOR_KEY`, or `livestage.keys.derived_key("visitor")`.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from livestage import keys

COOKIE_NAME = "livestage_visitor"
COOKIE_PATH = "/api"
_VERSION = "v1"
_ID = re.compile(r"[A-Za-z0-9_-]{22}")
_SIGNATURE_HEX = 32  # 128 bits of HMAC-SHA256 are plenty for a cookie
TAG_HEX = 16


@dataclass(frozen=True)
class Visitor:
    id: str
    tag: str
    new: bool  # issued by this request: the response must set the cookie


class VisitorIds:
    """Issue, verify and tag visitor ids with one key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def tag(self, visitor_id: str) -> str:
        return keys.sign(self._key, f"tag:{visitor_id}")[:TAG_HEX]

    def cookie_value(self, visitor_id: str) -> str:
        signature = keys.sign(self._key, f"id:{visitor_id}")[:_SIGNATURE_HEX]
        return f"{_VERSION}.{visitor_id}.{signature}"

    def from_cookie(self, value: str | None) -> str | None:
        """The visitor id in a cookie value, or None when it is missing, malformed or forged."""
        if not value:
            return None
        parts = value.split(".")
        if len(parts) != 3 or parts[0] != _VERSION or not _ID.fullmatch(parts[1]):
            return None
        expected = self.cookie_value(parts[1])
        if not secrets.compare_digest(expected.encode(), value.encode()):
            return None
        return parts[1]

    def resolve(self, cookie: str | None) -> Visitor:
        """The visitor behind a request's cookie, or a new one."""
        visitor_id = self.from_cookie(cookie)
        if visitor_id is not None:
            return Visitor(visitor_id, self.tag(visitor_id), new=False)
        fresh = secrets.token_urlsafe(16)
        return Visitor(fresh, self.tag(fresh), new=True)
