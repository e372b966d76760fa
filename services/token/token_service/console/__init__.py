"""The operator console's live picture of each show, fed from NATS (`GET /api/operator/events`).

| module | what it holds |
|---|---|
| `models` | what the console page reads: `ChatEntry`, `HostStatus`, `Numbers`, `Snapshot` |
| `fold` | pure folds: chat outcomes (order-independent), the host's status, recent visuals |
| `numbers` | pure computations: chat per minute, rejected share, host reaction p50 |
| `feed` | the I/O: ONE set of NATS watches per room and edge, ring buffers, fan-out to streams |
| `feeds` | one feed per show a console opened (`TOKEN_CONSOLE_ROOMS`; oldest idle closed first) |
"""
