"""Behind an ingress (issue #16 point 7), against a real edge, Redis and livekit-server.

The edge believes X-Forwarded-For and X-Forwarded-Proto only from TOKEN_TRUSTED_PROXIES: from any
other peer they are a client's words and change nothing (no fresh rate-limit bucket, no Secure
cookie). These tests keep the default token limit (20 a minute per client network), so they
prove what a deployment gets, not what a test setting happens to allow.
"""

from __future__ import annotations

import httpx

from token_service.settings import EdgeSettings

from .conftest import Edge, EdgeFactory

PROFILE = {"displayName": "Ada", "avatar": "fox"}
DEFAULT_PER_NETWORK = 20
assert EdgeSettings.model_fields["rate_token_per_ip"].default == f"{DEFAULT_PER_NETWORK}/minute"


async def token_as(edge: Edge, headers: dict[str, str]) -> httpx.Response:
    """A token request from a new visitor (own cookie jar), so only the network limit counts."""
    return await edge.visitor().post("/api/livekit-token", json=PROFILE, headers=headers)


def cookie_attributes(response: httpx.Response) -> set[str]:
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("livestage_visitor=")
    return {part.strip().lower() for part in cookie.split(";")[1:]}


async def test_forwarded_for_from_an_untrusted_peer_is_one_bucket(make_edge: EdgeFactory) -> None:
    edge = await make_edge()  # TOKEN_TRUSTED_PROXIES empty: the socket peer is the client
    codes = [
        (await token_as(edge, {"X-Forwarded-For": f"198.51.100.{i}"})).status_code
        for i in range(DEFAULT_PER_NETWORK + 1)
    ]
    assert codes == [200] * DEFAULT_PER_NETWORK + [429]


async def test_behind_a_trusted_proxy_each_client_is_counted_apart(make_edge: EdgeFactory) -> None:
    edge = await make_edge(trusted_proxies=["127.0.0.0/8"])
    # 21 different clients through the proxy: nobody is refused for the others' requests
    codes = [
        (await token_as(edge, {"X-Forwarded-For": f"198.51.100.{i}"})).status_code
        for i in range(DEFAULT_PER_NETWORK + 1)
    ]
    assert codes == [200] * (DEFAULT_PER_NETWORK + 1)
    # and one client through the proxy still has only its own 20
    one = {"X-Forwarded-For": "203.0.113.7, 127.0.0.1"}  # the proxy may append its own hop
    codes = [(await token_as(edge, one)).status_code for _ in range(DEFAULT_PER_NETWORK + 1)]
    assert codes == [200] * DEFAULT_PER_NETWORK + [429]
    assert (await token_as(edge, {"X-Forwarded-For": "203.0.113.8"})).status_code == 200


async def test_forwarded_https_from_a_trusted_proxy_makes_the_cookie_secure(
    make_edge: EdgeFactory,
) -> None:
    proxied = await make_edge(trusted_proxies=["127.0.0.0/8"])
    https = await token_as(proxied, {"X-Forwarded-Proto": "https"})
    assert https.status_code == 200, https.text
    assert "secure" in cookie_attributes(https)
    plain = await token_as(proxied, {"X-Forwarded-Proto": "http"})
    assert "secure" not in cookie_attributes(plain)
    # several proxies: the last hop (the one that talked to us) tells the scheme
    chained = await token_as(proxied, {"X-Forwarded-Proto": "http, https"})
    assert "secure" in cookie_attributes(chained)

    direct = await make_edge()  # the same header from an untrusted peer is a client's claim
    claimed = await token_as(direct, {"X-Forwarded-Proto": "https"})
    assert claimed.status_code == 200, claimed.text
    assert "secure" not in cookie_attributes(claimed)
