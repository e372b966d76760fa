"""Going live without OBS: a LiveKit web egress of the `/stage` page to an RTMP ingest.

The edge asks LiveKit's Egress API (`livekit-api` `EgressService`, Twirp `livekit.Egress/...`
on TOKEN_EGRESS_API_URL, default the LiveKit server API) to open the stage page
(TOKEN_EGRESS_STAGE_URL, plus `show=<room>` for a show other than the default) in the egress
service's Chrome and stream it to
`<rtmpUrl>/<streamKey>`. What this module holds:

- the checks of what an operator typed (`rtmp_url_problem`, `stream_key_problem`: pure);
- `egress_event`: a LiveKit `EgressInfo` as the `EgressEvent` the console sees, the stream key
  masked even where LiveKit echoes the full URL (`mask_stream_url`);
- `EgressRecords`: which egress belongs to which room and ingest, in Redis. A web egress has no
  room in LiveKit's eyes (`EgressInfo.room_name` is empty), so the edge remembers it: the
  webhooks and the list are matched to the room through this record;
- `EgressTracker`: the active egresses per room as the `room.egress.<room>` events tell every
  edge replica (the `livestage.edge.egresses_active` gauge).

The stream key is a secret: it goes to LiveKit inside the request and nowhere else (no log, no
response, no NATS, no Redis); `target` is the RTMP URL alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from livekit import api
from livekit.protocol import egress as proto
from redis.asyncio import Redis

from livestage.schemas import EgressEvent, EgressStatus, new_id, now_ms
from livestage.subjects import check_room

from .livekit_gateway import LiveKitGateway

MAX_STREAM_KEY_CHARS = 200
RECORD_TTL_S = 7 * 24 * 3600
MASK = "***"

STATUSES: dict[int, EgressStatus] = {
    proto.EgressStatus.EGRESS_STARTING: "starting",
    proto.EgressStatus.EGRESS_ACTIVE: "active",
    proto.EgressStatus.EGRESS_ENDING: "ending",
    proto.EgressStatus.EGRESS_COMPLETE: "complete",
    proto.EgressStatus.EGRESS_FAILED: "failed",
    proto.EgressStatus.EGRESS_ABORTED: "aborted",
    # LiveKit's own time limit ended it: not what the operator asked for
    proto.EgressStatus.EGRESS_LIMIT_REACHED: "failed",
}
LIVE: frozenset[EgressStatus] = frozenset({"starting", "active", "ending"})
FAILED: frozenset[EgressStatus] = frozenset({"failed", "aborted"})


def rtmp_url_problem(url: str) -> str | None:
    """Why `url` is not an RTMP ingest URL we stream to, or None: rtmp:// or rtmps://, a host,
    no credentials, no spaces, no query or fragment (a key belongs in `streamKey`)."""
    if not url or any(c.isspace() for c in url):
        return "must be an rtmp:// or rtmps:// URL without spaces"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return f"is not a valid URL ({error})"
    if parts.scheme.lower() not in ("rtmp", "rtmps"):
        return "must start with rtmp:// or rtmps:// (the platform's ingest URL)"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry credentials (user:password@)"
    if not parts.hostname:
        return "has no host"
    if port == 0:
        return "has port 0"
    if parts.query or parts.fragment:
        return "must not have a query or fragment: put the stream key in streamKey"
    return None


def stream_key_problem(key: str) -> str | None:
    """Why `key` is not a stream key we accept, or None (1-200 characters, no whitespace, no
    slash: it becomes the last path segment of the ingest URL)."""
    if not 1 <= len(key) <= MAX_STREAM_KEY_CHARS:
        return f"must be 1-{MAX_STREAM_KEY_CHARS} characters (got {len(key)})"
    if any(c.isspace() or c in "/\\" for c in key) or not key.isprintable():
        return "must not contain whitespace, slashes or control characters"
    return None


def ingest_url(rtmp_url: str, stream_key: str) -> str:
    """Where LiveKit streams to: `<rtmpUrl>/<streamKey>`."""
    return f"{rtmp_url.rstrip('/')}/{stream_key}"


def mask_stream_url(url: str) -> str:
    """An RTMP URL LiveKit echoes (`<ingest>/<key>`) as the ingest alone: the last path segment
    (the key), credentials, query and fragment dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    host = parts.hostname or ""
    try:
        port = parts.port
    except ValueError:
        port = None
    netloc = host + (f":{port}" if port else "")
    path = parts.path.rstrip("/").rpartition("/")[0]
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def stage_url_of(stage_url: str, room: str, default_room: str) -> str:
    """The stage page to stream for `room`: `stage_url` (TOKEN_EGRESS_STAGE_URL) for the default
    show, with `show=<room>` added to its query for another."""
    if room == default_room:
        return stage_url
    parts = urlsplit(stage_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "show"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("show", check_room(room))])))


def web_egress_request(
    stage_url: str, rtmp_url: str, stream_key: str, width: int, height: int
) -> proto.WebEgressRequest:
    return proto.WebEgressRequest(
        url=stage_url,
        stream_outputs=[
            proto.StreamOutput(
                protocol=proto.StreamProtocol.RTMP, urls=[ingest_url(rtmp_url, stream_key)]
            )
        ],
        advanced=proto.EncodingOptions(width=width, height=height, framerate=30),
    )


RTMP_IN_TEXT = re.compile(r"rtmps?://[^\s'\"<>]+", re.IGNORECASE)


def mask_stream_urls_in(text: str) -> str:
    """`text` (LiveKit's error message) with every RTMP URL in it shown without its key."""
    return RTMP_IN_TEXT.sub(lambda match: mask_stream_url(match.group(0)) + "/" + MASK, text)


def _error_text(info: proto.EgressInfo) -> str:
    errors = [info.error] + [s.error for s in info.stream_results if s.error]
    text = mask_stream_urls_in("; ".join(dict.fromkeys(e for e in errors if e)))
    if not text and info.status == proto.EgressStatus.EGRESS_LIMIT_REACHED:
        text = "LiveKit's egress time limit was reached"
    return text[:500]


def _echoed_target(info: proto.EgressInfo) -> str:
    urls = [s.url for s in info.stream_results if s.url]
    if not urls and info.HasField("web"):
        urls = [u for output in info.web.stream_outputs for u in output.urls]
    return mask_stream_url(urls[0]) if urls else ""


def egress_event(
    info: proto.EgressInfo, room: str, target: str = "", *, event_id: str = ""
) -> EgressEvent:
    """`info` as the console sees it. `target` is the ingest the edge recorded; without one the
    URL LiveKit echoes is shown with its key masked. LiveKit's times are in nanoseconds."""
    status = STATUSES.get(info.status, "failed")
    return EgressEvent(
        id=event_id or new_id(),
        room=room,
        egress_id=info.egress_id,
        status=status,
        target=target or _echoed_target(info),
        error=_error_text(info) if status in FAILED else "",
        started_at=info.started_at // 1_000_000 if info.started_at > 0 else 0,
        created_at=now_ms(),
    )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class EgressRecord:
    egress_id: str
    room: str
    target: str


class EgressRecords:
    """`livestage:egress:{<egressId>}` hash {room, target} and the room's set of egress ids
    `livestage:egress-room:{<room>}`, both kept a week (LiveKit lists ended egresses for a while;
    older ones are of no interest)."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def _key(egress_id: str) -> str:
        return f"livestage:egress:{{{egress_id}}}"

    @staticmethod
    def _room_key(room: str) -> str:
        return f"livestage:egress-room:{{{check_room(room)}}}"

    async def remember(self, egress_id: str, room: str, target: str) -> None:
        key, room_key = self._key(egress_id), self._room_key(room)
        await self.redis.hset(key, mapping={"room": room, "target": target})
        await self.redis.expire(key, RECORD_TTL_S)
        await self.redis.sadd(room_key, egress_id)  # type: ignore[misc]
        await self.redis.expire(room_key, RECORD_TTL_S)

    async def get(self, egress_id: str) -> EgressRecord | None:
        raw = await self.redis.hgetall(self._key(egress_id))  # type: ignore[misc]
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if not fields.get("room"):
            return None
        return EgressRecord(egress_id, fields["room"], fields.get("target", ""))

    async def of_room(self, room: str) -> set[str]:
        members = await self.redis.smembers(self._room_key(room))  # type: ignore[misc]
        return {_text(m) for m in members}

    async def first_failure(self, egress_id: str) -> bool:
        """True the first time an egress is seen failed (LiveKit retries webhooks: count once)."""
        fresh = await self.redis.set(
            f"livestage:egress-failed:{{{egress_id}}}", "1", nx=True, ex=RECORD_TTL_S
        )
        return bool(fresh)


@dataclass
class EgressTracker:
    """Active egresses per room, from the `EgressEvent`s on `room.egress.<room>` (every replica
    hears them, so every replica's gauge agrees) and from what LiveKit lists."""

    active: dict[str, set[str]] = field(default_factory=dict)

    def saw(self, event: EgressEvent) -> None:
        ids = self.active.setdefault(event.room, set())
        if event.status in LIVE:
            ids.add(event.egress_id)
        else:
            ids.discard(event.egress_id)

    def listed(self, room: str, events: Iterable[EgressEvent]) -> None:
        """LiveKit's list is the truth for the room: replace what the events said."""
        self.active[room] = {e.egress_id for e in events if e.status in LIVE}

    def observe(self) -> list[tuple[float, dict[str, str]]]:
        return [(float(len(ids)), {"room": room}) for room, ids in sorted(self.active.items())]


@dataclass
class Egresses:
    """What the egress routes and the webhook share: the Egress API client (its own timeout:
    LiveKit answers a start only once an egress worker took it), the records, the tracker."""

    gateway: LiveKitGateway
    records: EgressRecords
    stage_url: str
    default_room: str = ""
    """The show whose stage is `stage_url` as it is; another's gets `?show=<room>`."""
    tracker: EgressTracker = field(default_factory=EgressTracker)

    async def start(
        self, room: str, rtmp_url: str, stream_key: str, width: int, height: int
    ) -> EgressEvent:
        stage_url = stage_url_of(self.stage_url, room, self.default_room)
        request = web_egress_request(stage_url, rtmp_url, stream_key, width, height)
        info = await self.gateway.call(
            "start web egress", lambda lk: lk.egress.start_web_egress(request)
        )
        target = rtmp_url.rstrip("/")
        await self.records.remember(info.egress_id, room, target)
        return egress_event(info, room, target)

    async def list(self, room: str) -> list[EgressEvent]:
        """The room's egresses LiveKit knows, live ones first, then the newest."""
        listed = await self.gateway.call(
            "list egress", lambda lk: lk.egress.list_egress(api.ListEgressRequest())
        )
        ours = await self.records.of_room(room)
        events: list[EgressEvent] = []
        for info in listed.items:
            if info.egress_id in ours:
                record = await self.records.get(info.egress_id)
                events.append(egress_event(info, room, record.target if record else ""))
            elif info.room_name == room:  # a room egress someone else started
                events.append(egress_event(info, room))
        events.sort(key=lambda e: (e.status not in LIVE, -e.started_at))
        self.tracker.listed(room, events)
        return events

    async def stop(self, room: str, egress_id: str) -> EgressEvent:
        info = await self.gateway.call(
            "stop egress",
            lambda lk: lk.egress.stop_egress(api.StopEgressRequest(egress_id=egress_id)),
        )
        record = await self.records.get(egress_id)
        return egress_event(info, room, record.target if record else "")

    async def aclose(self) -> None:
        await self.gateway.aclose()


EGRESS_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
