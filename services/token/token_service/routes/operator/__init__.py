"""The operator's routes under `/api/operator`, all behind one bearer secret or a console
session made with it (`auth.py`).

| module | paths | what it does |
|---|---|---|
| `auth` | `GET /api/operator/check` | `operator_router()`: every route checks secret or session |
| `session` | `/api/operator/session` (POST, GET, DELETE) | console sign-in, its state, sign-out |
| `events` | `GET /api/operator/events` | the console's live updates (Server-Sent Events) |
| `chat` | `/api/operator/chat/messages...` | remove a message, read recent history |
| `bans` | `/api/operator/bans...` | ban, unban and list visitors |
| `host` | `/api/operator/host/{pause,resume,skip,say,persona}` | control the speaking host |
| `stage` | `/api/operator/stage/{capture,backdrop,pin,unpin}` | control what is on screen |
| `deadletters` | `/api/operator/deadletters...` | list, show, replay and delete dead letters |
"""
