"""The operator's routes under `/api/operator`, all behind one bearer secret or a console
session made with it (`auth.py`).

Routes that act on one show's room (`show`, `host`, `chat`, `bans`) take an optional `show`
query parameter (default: the default show, LIVEKIT_ROOM; 404 when no show has that name);
`stage` takes `room` in its body (404 likewise). The console's events and `egress` serve the default
show only.

| module | paths | what it does |
|---|---|---|
| `auth` | `GET /api/operator/check` | `operator_router()`: every route checks secret or session |
| `session` | `/api/operator/session` (POST, GET, DELETE) | console sign-in, its state, sign-out |
| `events` | `GET /api/operator/events` | the console's live updates (Server-Sent Events) |
| `chat` | `/api/operator/chat/messages...` | remove a message, read recent history |
| `bans` | `/api/operator/bans...` | ban, unban and list visitors |
| `host` | `/api/operator/host/{pause,resume,skip,say,persona}` | control the speaking host |
| `show` | `/api/operator/show`, `/api/operator/show/{end,start}` | end and start a show |
| `shows` | `/api/operator/shows[/{room}[/end,/start]]` | create, list, change, end, delete shows |
| `stage` | `/api/operator/stage/{capture,backdrop,pin,unpin,layout}` | the screen, the layout |
| `egress` | `/api/operator/egress[/{egressId}]` | stream the stage to RTMP: start, list, stop |
| `deadletters` | `/api/operator/deadletters...` | list, show, replay and delete dead letters |
"""
