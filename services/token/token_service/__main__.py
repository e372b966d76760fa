"""Entry point: `python -m token_service` serves the edge on TOKEN_HOST:TOKEN_PORT."""

from __future__ import annotations

import logging
import warnings

import uvicorn
from jwt.warnings import InsecureKeyLengthWarning

from livestage.settings import LiveKitSettings
from livestage.telemetry import setup_telemetry

from .app import create_app, server_config
from .settings import EdgeSettings

log = logging.getLogger("token_service")


def main() -> None:
    settings = EdgeSettings()
    telemetry = setup_telemetry("token")
    if len(LiveKitSettings().api_secret.get_secret_value()) < 32:
        # Said once here instead of by PyJWT on every token it signs or checks.
        warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
        log.warning(
            "LIVEKIT_API_SECRET is shorter than 32 characters (the `--dev` secret?): "
            "fine on your machine, set a long random one anywhere public"
        )
    try:
        uvicorn.Server(server_config(create_app(edge=settings), settings)).run()
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
