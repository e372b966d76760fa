"""The operator's domain lists (`STAGE_ALLOWED_DOMAINS`, `STAGE_BLOCKED_DOMAINS`): pure checks.

Shared by the stage producer (which enforces them) and the edge (which refuses an operator's
capture URL at once, `capture_refusal`); the settings are `livestage.settings.StageDomainSettings`.

An entry matches its own host and every host under it (a suffix match on whole labels):
`example.org` matches `example.org` and `a.example.org`, never `badexample.org`. Entries are
host names (`*.example.org` and a trailing dot are accepted and mean the same), or an IP
address, which matches only itself. Internationalised names are compared in their ASCII form.

- **Blocked** domains are refused for everything the capture browser loads: the page, every
  redirect, every subresource (they are part of the egress policy, `egress.EgressPolicy`), and
  search results naming them are dropped. Nobody bypasses them, not even an operator.
- **Allowed** domains, when the list is set, are the only places the stage shows pages from:
  every search result and the page a capture ends on (after redirects) must be under one.
  Subresources (fonts, CDNs) are not held to it. An operator's own capture may show a page
  outside it (the operator chose it), never one on the blocklist.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from .egress import EgressPolicy, Refusal, blocked_by, host_matches, parse_host

__all__ = [
    "DomainLists",
    "blocked_by",
    "capture_refusal",
    "host_matches",
    "normalize_domain",
    "normalize_domains",
]


def normalize_domain(entry: str) -> str:
    """An entry as it is compared: lowercase ASCII, no wildcard or trailing dot.

    Raises ValueError (with what to write instead) for a URL, a path or an empty entry."""
    text = entry.strip().lower()
    if "://" in text or "/" in text or "@" in text:
        raise ValueError(f"{entry!r} is not a host name: write the domain alone, e.g. example.org")
    text = text.removeprefix("*.").removeprefix(".").removesuffix(".")
    if not text:
        raise ValueError("an empty domain matches nothing: remove it")
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        pass
    try:
        ascii_name = text.encode("idna").decode("ascii")
    except UnicodeError as error:
        raise ValueError(f"{entry!r} is not a valid domain name ({error})") from None
    if " " in ascii_name or ":" in ascii_name or not all(ascii_name.split(".")):
        raise ValueError(f"{entry!r} is not a valid domain name")
    return ascii_name


def normalize_domains(entries: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(normalize_domain(entry) for entry in entries))


def host_of(url: str) -> str | None:
    """The host of `url` as the egress policy reads it (an address literal in its plain form)."""
    try:
        raw = urlsplit(url).hostname or ""
    except ValueError:
        return None
    parsed = parse_host(raw)
    if isinstance(parsed, Refusal):
        return None
    if isinstance(parsed, str):
        try:
            return parsed.encode("idna").decode("ascii")
        except UnicodeError:
            return parsed
    return str(parsed)


@dataclass(frozen=True)
class DomainLists:
    """The two lists, normalized (see `normalize_domains`); empty lists change nothing."""

    allowed: tuple[str, ...] = ()
    blocked: tuple[str, ...] = ()

    @classmethod
    def of(cls, allowed: Iterable[str] = (), blocked: Iterable[str] = ()) -> DomainLists:
        return cls(normalize_domains(allowed), normalize_domains(blocked))

    def refusal(self, url: str, *, operator: bool = False) -> Refusal | None:
        """Why the stage may not show `url`, or None. `operator`: the allowlist does not apply."""
        host = host_of(url)
        if host is None:
            return Refusal("URL has no valid host")
        blocked = blocked_by(host, self.blocked)
        if blocked is not None:
            return Refusal(f"host {host} is on the blocklist ({blocked}; STAGE_BLOCKED_DOMAINS)")
        if self.allowed and not operator:
            if not any(host_matches(host, domain) for domain in self.allowed):
                return Refusal(f"host {host} is not on the allowlist (STAGE_ALLOWED_DOMAINS)")
        return None


def ascii_url(url: str) -> str:
    """`url` with an internationalised host in its ASCII (IDNA) form, as a browser sends it;
    any other URL unchanged (what cannot be read is left for `EgressPolicy.check_url` to refuse).
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        return url
    if not host or host.isascii() or "@" in parts.netloc:
        return url
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return url
    netloc = ascii_host if port is None else f"{ascii_host}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def capture_refusal(url: str, policy: EgressPolicy, lists: DomainLists) -> Refusal | None:
    """Why an operator's capture of `url` will be refused, decided from the URL alone, or None.

    The egress policy's checks that need no network (scheme, credentials in the URL, the host's
    spelling, an address literal in a refused range, the port, the blocklist) and the domain
    lists as they apply to an operator (the blocklist, never the allowlist). An early, partial
    answer: a name that resolves to a private address, a redirect to a blocked host or a page
    that fails moderation is refused later by the stage producer, which stays the authority.
    """
    checked = policy.check_url(ascii_url(url))
    if isinstance(checked, Refusal):
        return checked
    return lists.refusal(url, operator=True)
