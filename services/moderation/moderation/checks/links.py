"""`links`: a link whose host is not in `MODERATION_LINK_ALLOWED_HOSTS` (subdomains included).

Found in the message as typed (never in the look-alike-folded text: `yоutube.com` with a Cyrillic
`о` is another host and must not pass as YouTube): `scheme://...`, `www.`..., bare `host.tld`
for common top-level domains, and `example dot com` / `example[.]com` / `example(.)com`, which is
always rejected (nobody disguises a link they may post).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Self
from urllib.parse import urlsplit

from livestage.schemas import ChatMessage
from moderation.checks.base import Check, Context, Verdict
from moderation.settings import ModerationSettings

# Top-level domains that mark a bare `name.tld` as a link on their own...
STRONG_TLDS = (
    "com net org edu gov info biz xyz top site online app dev page link click live stream club "
    "shop store tech space fun lol wtf io gg tv ly co ru cn uk"
)
# ...and country codes that also end ordinary words run together after a full stop ("fun.it
# was", "oh.no"): these count as a link only with a path, a port, a query or a subdomain.
# Left out on purpose: ones that are also file extensions people type (py, sh, rs, md, pl, ts).
WEAK_TLDS = (
    "me to cc ws la fm am gl ai gd tk ml ga cf gq pw su de fr jp br in it nl es eu us ca au ch "
    "se no be at dk fi cz pt gr hu ro ie nz za mx ar kr tw hk sg ua kz tr ir id vn th my ph"
)


def _alternatives(words: str) -> str:
    return "(?:" + "|".join(sorted(words.split(), key=len, reverse=True)) + ")"


_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_DOTS = "[.\u3002\uff0e\uff61]"  # full stop and its ideographic/fullwidth/halfwidth look-alikes
_REST = r"[^\s<>\"']"
_END = r"(?![\w-])"

SCHEME_URL = re.compile(rf"\b[a-z][a-z0-9+.-]{{1,15}}://{_REST}+", re.IGNORECASE)
WWW_URL = re.compile(rf"\bwww\d{{0,3}}{_DOTS}{_REST}+", re.IGNORECASE)
BARE_HOST = re.compile(
    rf"(?<![\w@.-])(?:"
    rf"(?:{_LABEL}{_DOTS})+{_alternatives(STRONG_TLDS)}{_END}(?:[/:?#]{_REST}*)?"
    rf"|(?:{_LABEL}{_DOTS}){{2,}}{_alternatives(WEAK_TLDS)}{_END}(?:[/:?#]{_REST}*)?"
    rf"|{_LABEL}{_DOTS}{_alternatives(WEAK_TLDS)}{_END}[/:?#]{_REST}*"
    rf")",
    re.IGNORECASE,
)
DISGUISED = re.compile(
    rf"\b(?P<label>{_LABEL})\s*(?:\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\s+dot\s+)"
    rf"{_alternatives(STRONG_TLDS + ' ' + WEAK_TLDS)}\b",
    re.IGNORECASE,
)
_NOT_A_NAME = frozenset({"the", "a", "an", "this", "that"})  # "the dot com bubble"


def host_of(url: str) -> str | None:
    """The lower-case host of a link (with or without a scheme), None if it has none."""
    if "://" not in url:
        url = "http://" + url
    url = re.sub(_DOTS, ".", url)
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def links_in(text: str) -> Iterator[str | None]:
    """The host of every link in `text`; None for a link whose host cannot be trusted."""
    taken: list[tuple[int, int]] = []
    for pattern in (SCHEME_URL, WWW_URL, BARE_HOST):
        for match in pattern.finditer(text):
            if any(start <= match.start() < end for start, end in taken):
                continue  # part of a link already found
            taken.append(match.span())
            yield host_of(match.group())
    for match in DISGUISED.finditer(text):
        if match.group("label").lower() not in _NOT_A_NAME:
            yield None


def host_allowed(host: str | None, allowed: tuple[str, ...]) -> bool:
    if host is None:
        return False
    return any(host == entry or host.endswith("." + entry) for entry in allowed)


class Links(Check):
    name = "links"

    def __init__(self, allowed_hosts: tuple[str, ...] = ()) -> None:
        self.allowed_hosts = allowed_hosts

    @classmethod
    def from_settings(cls, settings: ModerationSettings) -> Self:
        return cls(tuple(settings.link_allowed_hosts))

    def check(self, message: ChatMessage, context: Context) -> Verdict | None:
        if all(host_allowed(host, self.allowed_hosts) for host in links_in(message.body)):
            return None
        if self.allowed_hosts:
            return self.reject(
                "Links are only allowed to " + ", ".join(self.allowed_hosts) + ".", strike=True
            )
        return self.reject("Links are not allowed in chat.", strike=True)
