"""Property tests for the profile and chat sanitizers and the client-address rule (no I/O)."""

from __future__ import annotations

import ipaddress
import re
import string
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from livestage.schemas import ChatMessage
from token_service.client_ip import client_ip, client_network, parse_networks
from token_service.models import ChatRequest, TokenRequest
from token_service.visitors import VisitorIds

BIDI_AND_ZERO_WIDTH = [
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200e",
    "\u200f",
    "\u061c",
    "\u200b",
    "\u200c",
    "\u200d",
    "\u2060",
    "\ufeff",
]
hostile = st.text(
    alphabet=st.one_of(
        st.characters(), st.sampled_from(BIDI_AND_ZERO_WIDTH + ["\n", "\t", "\x00"])
    ),
    max_size=120,
)


@settings(max_examples=400, deadline=None)
@given(name=hostile)
def test_display_names_come_out_clean_or_are_refused_by_field(name: str) -> None:
    try:
        request = TokenRequest.model_validate({"displayName": name, "avatar": "fox"})
    except ValidationError as error:
        assert [e["loc"] for e in error.errors()] == [("displayName",)]
        return
    cleaned = request.display_name
    assert 1 <= len(cleaned) <= 32
    assert cleaned == cleaned.strip() and "  " not in cleaned
    assert not any(c in cleaned for c in BIDI_AND_ZERO_WIDTH)
    assert all(unicodedata.category(c) not in {"Cc", "Cf"} for c in cleaned)


@settings(max_examples=400, deadline=None)
@given(body=hostile)
def test_accepted_chat_bodies_always_make_a_valid_chat_message(body: str) -> None:
    try:
        request = ChatRequest(body=body)
    except ValidationError as error:
        assert [e["loc"] for e in error.errors()] == [("body",)]
        return
    ChatMessage(
        id="m1",
        room="r",
        author_identity="viewer_abcdefgh_00000000",
        author_name="A",
        avatar="fox",
        body=request.body,
        kind="viewer",
        created_at=1_800_000_000_000,
    )


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(string.ascii_letters, min_size=1, max_size=20),
    hidden=st.lists(st.sampled_from(BIDI_AND_ZERO_WIDTH), min_size=1, max_size=6),
)
def test_bidi_and_zero_width_characters_are_stripped(text: str, hidden: list[str]) -> None:
    half = len(text) // 2
    assert (
        TokenRequest(
            display_name=hidden[0] + text[:half] + "".join(hidden) + text[half:], avatar="fox"
        ).display_name
        == text
    )


def test_only_bidi_or_zero_width_is_an_empty_name() -> None:
    with pytest.raises(ValidationError, match="1-32 visible characters"):
        TokenRequest(display_name="\u202e\u200b\u2066", avatar="fox")


VISITORS = VisitorIds(b"k" * 32)


@settings(max_examples=150, deadline=None)
@given(
    cookie=st.one_of(
        st.none(), st.text(max_size=80), st.from_regex(r"v1\.[A-Za-z0-9_-]{22}\.[0-9a-f]{32}")
    )
)
def test_only_cookies_the_edge_signed_name_a_visitor(cookie: str | None) -> None:
    assert VISITORS.from_cookie(cookie) is None
    visitor = VISITORS.resolve(cookie)
    assert visitor.new and len(visitor.id) == 22
    assert re.fullmatch(r"[0-9a-f]{16}", visitor.tag)


@settings(max_examples=100, deadline=None)
@given(position=st.integers(0, 56), replacement=st.sampled_from("0aZ_-."))
def test_a_signed_cookie_round_trips_and_any_change_breaks_it(
    position: int, replacement: str
) -> None:
    visitor = VISITORS.resolve(None)
    cookie = VISITORS.cookie_value(visitor.id)
    again = VISITORS.resolve(cookie)
    assert (again.id, again.tag, again.new) == (visitor.id, visitor.tag, False)
    tampered = cookie[:position] + replacement + cookie[position + 1 :]
    if tampered != cookie:
        assert VISITORS.from_cookie(tampered) is None
    # another key signs differently and tags differently
    other = VisitorIds(b"o" * 32)
    assert other.from_cookie(cookie) is None and other.tag(visitor.id) != visitor.tag


def test_the_tag_never_contains_the_id() -> None:
    for _ in range(50):
        visitor = VISITORS.resolve(None)
        assert visitor.tag not in visitor.id and visitor.id not in visitor.tag


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2::a", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::a", "2001:db8:1:3::/64"),
        ("unknown", "unknown"),
    ],
)
def test_client_networks_are_an_ipv4_address_or_an_ipv6_64(address: str, network: str) -> None:
    assert client_network(address) == network


TRUSTED = parse_networks(["10.0.0.0/8", "::1/128"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # untrusted peer: header ignored
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.7, 10.0.0.3", "198.51.100.7"),  # spoofed left part
        ("10.0.0.2", "garbage, 10.0.0.5", "10.0.0.5"),
        ("::ffff:10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("::1", "2001:db8::1", "2001:db8::1"),
    ],
)
def test_client_ip(peer: str, forwarded: str | None, expected: str) -> None:
    assert client_ip(peer, forwarded, TRUSTED) == expected


@settings(max_examples=200, deadline=None)
@given(header=st.text(max_size=100))
def test_client_ip_never_takes_a_header_from_an_untrusted_peer(header: str) -> None:
    assert client_ip("203.0.113.9", header, TRUSTED) == "203.0.113.9"
    result = client_ip("10.0.0.2", header, TRUSTED)
    ipaddress.ip_address(result)  # always an address, never arbitrary header text


def test_invisible_and_stacked_mark_bodies() -> None:
    with pytest.raises(ValidationError, match="1-500 visible characters"):
        ChatRequest(body="\u3164\u2800\u034f \u115f\uffa0")
    zalgo = ChatRequest(body="a" + "\u0301" * 499).body
    assert zalgo[0] in "aá" and len(zalgo) <= 5
