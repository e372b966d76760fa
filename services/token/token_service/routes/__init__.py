"""The edge's HTTP routes, one router per concern; `ROUTERS` is the order the app includes them.

| module | paths | what for |
|---|---|---|
| `viewer` | `GET /api/config`, `POST /api/livekit-token` | a show's config, tokens, host dispatch |
| `chat` | `POST /api/chat`, `GET /api/chat/history` | chat ingress and history reads |
| `memory` | `/api/me/memory`, `/api/operator/viewers/{key}/memory` | memory cards, forgetting |
| `ops` | `POST /api/livekit/webhook`, `/healthz`, `/readyz`, `/statusz` | webhooks, probes |
| `operator/` | `/api/operator/...` | operator routes: bearer secret or console session |
| (`ops`) | `GET /api/operator/status` | `/statusz` with each check's detail (operator) |
| `media` | `GET /media/{name}` | the stage's assets, streamed from the stage producer |
"""

from __future__ import annotations

from fastapi import APIRouter

from . import chat, media, memory, ops, viewer
from .operator import (
    auth,
    bans,
    deadletters,
    egress,
    events,
    host,
    session,
    show,
    shows,
    stage,
)
from .operator import chat as operator_chat

ROUTERS: tuple[APIRouter, ...] = (
    viewer.router,
    memory.router,
    chat.router,
    ops.router,
    ops.operator_status_router,
    auth.router,
    session.router,
    events.router,
    operator_chat.router,
    bans.router,
    host.router,
    stage.router,
    show.router,
    shows.router,
    egress.router,
    deadletters.router,
    memory.operator,
    media.router,
)
