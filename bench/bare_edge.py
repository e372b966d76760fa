"""The yardstick for the edge in `bench_chat_scale`: FastAPI answering `POST /api/chat` with 202
and no work at all (no token, no limits, no JetStream), served exactly as the edge is
(`token_service.app.serve` with the same `TOKEN_*` settings: port, workers, access log).

    python -m bench.bare_edge
"""

from __future__ import annotations

from fastapi import FastAPI, status

from token_service.app import serve
from token_service.settings import EdgeSettings

FACTORY = "bench.bare_edge:create_bare_app"


def create_bare_app() -> FastAPI:
    app = FastAPI(title="bare 202")

    @app.post("/api/chat", status_code=status.HTTP_202_ACCEPTED)
    async def accept() -> dict[str, str]:
        return {"id": "0" * 32}

    return app


def main() -> None:
    edge = EdgeSettings()
    serve(create_bare_app() if edge.workers == 1 else FACTORY, edge)


if __name__ == "__main__":
    main()
