"""Entry point: `python -m token_service` serves the edge on TOKEN_HOST:TOKEN_PORT.

With `TOKEN_WORKERS` above 1, uvicorn's supervisor binds the port once and starts that many
worker processes (each builds the app with `worker_app`, its own connections and caches) and
replaces one that dies.
"""

from __future__ import annotations

import atexit
import logging
import warnings

from fastapi import FastAPI
from jwt.warnings import InsecureKeyLengthWarning

from livestage.settings import LiveKitSettings
from livestage.telemetry import Telemetry, setup_telemetry

from .app import create_app, serve
from .settings import EdgeSettings

log = logging.getLogger("token_service")
WORKER_APP = "token_service.__main__:worker_app"


def prepare_process() -> Telemetry:
    """Telemetry, and PyJWT's warning about a short secret said once instead of per token."""
    telemetry = setup_telemetry("token")
    if len(LiveKitSettings().api_secret.get_secret_value()) < 32:
        warnings.filterwarnings("ignore", category=InsecureKeyLengthWarning)
        log.warning(
            "LIVEKIT_API_SECRET is shorter than 32 characters (the `--dev` secret?): "
            "fine on your machine, set a long random one anywhere public"
        )
    return telemetry


def worker_app() -> FastAPI:
    """The app of one worker process when `TOKEN_WORKERS` > 1 (uvicorn calls it in each)."""
    atexit.register(prepare_process().shutdown)
    return create_app(edge=EdgeSettings())


def main() -> None:
    settings = EdgeSettings()
    if settings.workers > 1:
        serve(WORKER_APP, settings)  # each worker sets its telemetry up in `worker_app`
        return
    telemetry = prepare_process()
    try:
        serve(create_app(edge=settings), settings)
    finally:
        telemetry.shutdown()


if __name__ == "__main__":
    main()
