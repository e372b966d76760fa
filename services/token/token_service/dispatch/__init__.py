"""The host's dispatch: exactly one host agent per room, the decision apart from its I/O.

- `decision.py`: pure. `decide(room, policy, now_ms)` takes what LiveKit and our host job events
  say about a room and returns what to do (nothing, or replace the dispatch, and why).
- `dispatcher.py`: the I/O around it. `ensure_host(...)` reads the cached host state from Redis
  (`HostCache`), else reads the room from LiveKit under a short per-room lock, asks `decide()`,
  and acts.
- `schedule.py`: pure. When the reconciler looks at each room again (sweep, wakes, a worker's
  registration, per-room backoff).
- `reconciler.py`: the I/O around it. A room with viewers and no host on its way gets one
  through `ensure_host`, without a token request.
"""
