"""The operator routes' one secret: absent → 503 "not configured", wrong or missing → 401."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from livestage.settings import OperatorSettings

SECRET = "operator-secret-for-tests-0123456789"


async def test_without_the_setting_operator_routes_say_not_configured(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge()
    response = await edge.client.get(
        "/api/operator/check", headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert response.status_code == 503
    assert "LIVESTAGE_OPERATOR_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    "header",
    [None, "Bearer", f"Bearer {SECRET}x", f"Basic {SECRET}", SECRET, "Bearer " + SECRET[:-1]],
)
async def test_a_missing_or_wrong_secret_is_refused(make_edge, header: str | None) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    headers = {"Authorization": header} if header is not None else {}
    response = await edge.client.get("/api/operator/check", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert SECRET not in response.text


async def test_the_right_secret_passes(make_edge) -> None:  # type: ignore[no-untyped-def]
    edge = await make_edge(operator_secret=SECRET)
    response = await edge.client.get(
        "/api/operator/check", headers={"Authorization": f"Bearer {SECRET}"}
    )
    assert response.status_code == 204


def test_a_short_secret_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="at least 16 characters"):
        OperatorSettings(operator_secret="short")  # type: ignore[arg-type]
