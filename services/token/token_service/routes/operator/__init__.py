"""The operator's routes under `/api/operator`, all behind one bearer secret (`auth.py`).

| module | paths | what it does |
|---|---|---|
| `auth` | `GET /api/operator/check` | `operator_router()`, whose every route checks the secret |
| `chat` | `/api/operator/chat/messages...` | remove a message, read recent history |
| `bans` | `/api/operator/bans...` | ban, unban and list visitors |
| `host` | `/api/operator/host/{pause,resume,skip,say,persona}` | control the speaking host |
| `show` | `/api/operator/show`, `/api/operator/show/{end,start}` | end and start the show |
| `stage` | `/api/operator/stage/{capture,backdrop,pin,unpin,layout}` | the screen, the layout |
| `egress` | `/api/operator/egress[/{egressId}]` | stream the stage to RTMP: start, list, stop |
| `deadletters` | `/api/operator/deadletters...` | list, show, replay and delete dead letters |
"""
