"""The edge, given a NATS_URL with a user and password, logs where it connects with the
password masked: a real edge against a real nats-server that wants that password, and one
that refuses a wrong password (the edge keeps retrying and logging)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator

import pytest

from tests.support.infra import AuthNatsServer
from tests.support.waiting import until

from .conftest import EdgeFactory


@pytest.fixture(scope="module")
def auth_nats() -> Iterator[AuthNatsServer]:
    with AuthNatsServer() as server:
        yield server


def logged(caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


async def test_the_edge_logs_its_nats_url_without_the_password(
    make_edge: EdgeFactory, auth_nats: AuthNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO):
        edge = await make_edge(nats_url=auth_nats.auth_url)
        await edge.wait_for_bus()
        await until(lambda: "edge connected to NATS" in logged(caplog), 10, "the connect log")
    assert auth_nats.password not in logged(caplog)
    assert f"nats://{auth_nats.user}:***@127.0.0.1:{auth_nats.port}" in logged(caplog)


async def test_a_refused_password_stays_out_of_the_edges_log(
    make_edge: EdgeFactory, auth_nats: AuthNatsServer, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-" + secrets.token_urlsafe(12)
    with caplog.at_level(logging.INFO):
        await make_edge(nats_url=f"nats://{auth_nats.user}:{wrong}@127.0.0.1:{auth_nats.port}")
        await until(
            lambda: "authorization violation" in logged(caplog).lower(), 15, "a refusal log"
        )
    assert wrong not in logged(caplog)
    assert f"nats://{auth_nats.user}:***@" in logged(caplog)
