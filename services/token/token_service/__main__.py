"""Entry point: `python -m token_service` serves the edge on TOKEN_HOST:TOKEN_PORT."""

from __future__ import annotations

import uvicorn
from livestage.telemetry import setup_telemetry

from .app import create_app, server_config
from .settings import EdgeSettings


def main() -> None:
    settings = EdgeSettings()
    telemetry = setup_telemetry("token")
    try:
        uvicorn.Server(server_config(create_app(edge=settings), settings)).run()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
