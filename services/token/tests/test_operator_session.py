"""Console sign-in: the secret buys an HttpOnly session cookie; the cookie acts only with the
same-origin header; sign-out and expiry end it; the bearer secret still works."""

from __future__ import annotations

import asyncio

import httpx

from livestage.schemas import now_ms

SECRET = "operator-secret-for-session-tests-01"
HEADER = {"X-Livestage-Operator": "1"}
COOKIE = "livestage_operator"


async def sign_in(client: httpx.AsyncClient, secret: str = SECRET) -> httpx.Response:
    return await client.post("/api/operator/session", json={"secret": secret}, headers=HEADER)


async def test_wrong_secret_is_refused_then_rate_limited(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, rate_operator_sign_in="3/minute")
    for _ in range(3):
        response = await sign_in(edge.client, SECRET + "x")
        assert response.status_code == 401
        assert response.json() == {"detail": "wrong operator secret"}
        assert "set-cookie" not in response.headers
    refused = await sign_in(edge.client, SECRET)  # even the right one: the network is limited
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert SECRET not in refused.text


async def test_sign_in_sets_a_strict_http_only_cookie_that_works(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, operator_session_s=3600)
    before = now_ms()
    response = await sign_in(edge.client)
    assert response.status_code == 204, response.text
    cookie = response.headers["set-cookie"]
    flags = [part.strip().lower() for part in cookie.split(";")]
    assert flags[0].startswith(f"{COOKIE}=")
    assert SECRET not in cookie and SECRET not in response.text
    assert "httponly" in flags
    assert "samesite=strict" in flags
    assert "path=/api/operator" in flags
    assert "max-age=3600" in flags
    assert "secure" not in flags  # plain http here; https gets Secure (the visitor cookie's rule)

    info = await edge.client.get("/api/operator/session")
    assert info.status_code == 200
    assert before + 3_590_000 <= info.json()["expiresAt"] <= now_ms() + 3_600_000
    assert (await edge.client.get("/api/operator/check")).status_code == 204  # a GET: no header

    # a state-changing call with the cookie needs the same-origin header
    say = {"text": "Hello from the console."}
    refused = await edge.client.post("/api/operator/host/say", json=say)
    assert refused.status_code == 403
    assert "X-Livestage-Operator" in refused.json()["detail"]
    await edge.wait_for_bus()
    accepted = await edge.client.post("/api/operator/host/say", json=say, headers=HEADER)
    assert accepted.status_code == 202, accepted.text


async def test_sign_in_needs_the_header(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.post("/api/operator/session", json={"secret": SECRET})
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


async def test_sign_out_revokes_the_session(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    assert (await sign_in(edge.client)).status_code == 204
    session_id = edge.client.cookies[COOKIE]
    signed_out = await edge.client.delete("/api/operator/session", headers=HEADER)
    assert signed_out.status_code == 204
    assert f'{COOKIE}=""' in signed_out.headers["set-cookie"]
    assert "max-age=0" in signed_out.headers["set-cookie"].lower()
    assert COOKIE not in edge.client.cookies
    # the old cookie, replayed (a copy kept elsewhere), is dead on every replica
    replay = httpx.AsyncClient(base_url=edge.base_url, cookies={COOKIE: session_id})
    async with replay:
        assert (await replay.get("/api/operator/session")).status_code == 401
        assert (await replay.get("/api/operator/check")).status_code == 401


async def test_sessions_are_shared_by_replicas_and_forged_ones_fail(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    other = await make_edge(operator_secret=SECRET, room=edge.room)
    assert (await sign_in(edge.client)).status_code == 204
    session_id = edge.client.cookies[COOKIE]
    async with httpx.AsyncClient(base_url=other.base_url, cookies={COOKIE: session_id}) as c:
        assert (await c.get("/api/operator/check")).status_code == 204
    forged = "A" * len(session_id)
    async with httpx.AsyncClient(base_url=edge.base_url, cookies={COOKIE: forged}) as c:
        assert (await c.get("/api/operator/check")).status_code == 401
        assert (await c.get("/api/operator/session")).status_code == 401


async def test_an_expired_session_is_refused(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET, operator_session_s=1)
    assert (await sign_in(edge.client)).status_code == 204
    session_id = edge.client.cookies[COOKIE]
    # the browser would drop the cookie after Max-Age; a client that keeps it is refused
    async with httpx.AsyncClient(base_url=edge.base_url, cookies={COOKIE: session_id}) as c:
        assert (await c.get("/api/operator/check")).status_code == 204
        async with asyncio.timeout(10):
            while (await c.get("/api/operator/check")).status_code != 401:
                await asyncio.sleep(0.2)  # expiry is a time, not an event
        assert (await c.get("/api/operator/session")).status_code == 401


async def test_the_bearer_secret_still_works_and_needs_no_header(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    await edge.wait_for_bus()
    bearer = {"Authorization": f"Bearer {SECRET}"}
    assert (await edge.client.get("/api/operator/check", headers=bearer)).status_code == 204
    response = await edge.client.post("/api/operator/host/skip", headers=bearer)
    assert response.status_code == 202
    # a wrong bearer is judged alone, whatever cookie comes with it
    assert (await sign_in(edge.client)).status_code == 204
    wrong = {"Authorization": f"Bearer {SECRET}x"}
    assert (await edge.client.get("/api/operator/check", headers=wrong)).status_code == 401


async def test_session_routes_say_not_configured_without_the_secret(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge()
    assert (await sign_in(edge.client)).status_code == 503
    assert (await edge.client.get("/api/operator/session")).status_code == 503
