"""A local double of LiveKit's Egress API (web egress to RTMP) and of its egress webhooks.

Point ``livekit-api`` at it (``LiveKitAPI(double.url, key, secret).egress``; the edge:
``TOKEN_EGRESS_API_URL=double.url``) and give it where LiveKit would send webhooks::

    async with EgressDouble(api_key="devkey", api_secret="secret",
                            webhook_url=f"{edge}/api/livekit/webhook") as egress:
        info = await lk.egress.start_web_egress(WebEgressRequest(url=..., stream_outputs=[...]))
        await egress.wait_for_status(info.egress_id, EgressStatus.EGRESS_ACTIVE)

What it speaks is what livekit-api's ``EgressService`` sends through its ``TwirpClient``:
``POST /twirp/livekit.Egress/{StartWebEgress,ListEgress,StopEgress}`` with a binary protobuf
body (``Content-Type: application/protobuf``) and ``Authorization: Bearer <JWT>`` whose video
grant has ``roomRecord`` (401 ``unauthenticated`` without a token that verifies with the key and
secret, 403 ``permission_denied`` without the grant). Answers are protobuf (``EgressInfo``,
``ListEgressResponse``); errors are Twirp JSON ``{"code", "msg"}`` with the HTTP status Twirp
uses for the code (400 ``invalid_argument``, 404 ``not_found``, 412 ``failed_precondition``,
500 ``internal``, 503 ``unavailable``).

State, as LiveKit keeps it: a started web egress is ``EGRESS_STARTING`` (``room_name`` empty: a
web egress has no room), becomes ``EGRESS_ACTIVE`` after ``config.activate_after_s`` (with
``started_at`` in nanoseconds and an active ``StreamInfo`` per URL); ``StopEgress`` answers
``EGRESS_ENDING`` and it is ``EGRESS_COMPLETE`` after ``config.end_after_s``. ``ListEgress``
filters by ``room_name``, ``egress_id`` and ``active`` like the server. The full stream URL (key
included) is echoed in ``web.stream_outputs`` and ``stream_results``: the worst a client may
see, so the edge's masking is tested against it.

Webhooks: for each change, a ``WebhookEvent`` (``egress_started`` at start, ``egress_updated``
on active and ending, ``egress_ended`` on complete, failed or aborted) POSTed as JSON
(``application/webhook+json``) to ``webhook_url``, signed as livekit-server signs them: an
``Authorization`` JWT of the API key/secret whose ``sha256`` claim is the body's base64 SHA-256.
They go out one at a time, in order; ``webhooks`` records each with the HTTP status it got.

Faults: ``fail_next_start(error)``: the next start is accepted (``EGRESS_STARTING``) and then
fails (``EGRESS_FAILED`` with ``error`` on the egress and its stream, ``egress_ended``), as a
real egress does when the ingest refuses the key. ``refuse_no_worker()``: starts answer 503
``unavailable`` "no response from servers", as livekit-server does when no egress service runs.
``fail(Fault.X)``: ``HTTP_500`` (Twirp ``internal``), ``HANG`` (never answers).

Standalone: ``python -m tests.doubles.egress --port 8767`` (no webhooks unless
``--webhook-url``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from aiohttp import web
from google.protobuf.json_format import MessageToJson
from google.protobuf.message import DecodeError
from livekit import api
from livekit.protocol import egress as proto
from livekit.protocol import webhook as webhook_proto

from tests.doubles.base import DoubleServer, Fault, RecordedRequest, log

PREFIX = "/twirp/livekit.Egress/"
LIVE_STATUSES = (
    proto.EgressStatus.EGRESS_STARTING,
    proto.EgressStatus.EGRESS_ACTIVE,
    proto.EgressStatus.EGRESS_ENDING,
)
TWIRP_STATUS = {
    "invalid_argument": 400,
    "unauthenticated": 401,
    "permission_denied": 403,
    "not_found": 404,
    "failed_precondition": 412,
    "internal": 500,
    "unavailable": 503,
}


@dataclass
class EgressConfig:
    """Timing of the simulated egress worker (seconds)."""

    activate_after_s: float = 0.2
    end_after_s: float = 0.2
    fail_after_s: float = 0.2


@dataclass
class Delivery:
    """One webhook the double sent, and what the receiver answered (0: it was unreachable)."""

    event: str
    egress_id: str
    status: int
    body: str


@dataclass
class _Plan:
    fail_next_start: str | None = None
    no_worker: bool = False


def _twirp_error(code: str, msg: str) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=TWIRP_STATUS[code])


def _now_ns() -> int:
    return time.time_ns()


@dataclass
class _Egress:
    info: proto.EgressInfo
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


class EgressDouble(DoubleServer):
    name: ClassVar[str] = "livekit-egress"
    supported_faults: ClassVar[frozenset[Fault]] = frozenset({Fault.HTTP_500, Fault.HANG})

    def __init__(
        self,
        *,
        api_key: str = "devkey",
        api_secret: str = "secret",
        webhook_url: str | None = None,
        port: int = 0,
        config: EgressConfig | None = None,
    ) -> None:
        super().__init__(port=port)
        self.key, self.secret = api_key, api_secret
        self.webhook_url = webhook_url
        self.config = config or EgressConfig()
        self.egresses: dict[str, _Egress] = {}
        self.webhooks: list[Delivery] = []
        self._plan = _Plan()
        self._outbox: asyncio.Queue[webhook_proto.WebhookEvent] = asyncio.Queue()
        self._sender: asyncio.Task[None] | None = None
        self._http: aiohttp.ClientSession | None = None

    def routes(self) -> list[web.RouteDef]:
        return [web.post(PREFIX + "{method}", self._twirp)]

    async def start(self) -> EgressDouble:
        await super().start()
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        self._sender = asyncio.create_task(self._send_webhooks(), name="egress webhooks")
        return self

    async def on_stop(self) -> None:
        for egress in self.egresses.values():
            for task in egress.tasks:
                task.cancel()
        if self._sender is not None:
            self._sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sender
        if self._http is not None:
            await self._http.close()

    # -- what tests arrange ------------------------------------------------------------------

    def fail_next_start(self, error: str = "rtmp: connection refused by the ingest") -> None:
        """The next started egress fails after `config.fail_after_s` with `error`."""
        self._plan.fail_next_start = error

    def refuse_no_worker(self, refuse: bool = True) -> None:
        """Answer starts as livekit-server does with no egress worker: 503 unavailable."""
        self._plan.no_worker = refuse

    # -- what tests read ---------------------------------------------------------------------

    def info(self, egress_id: str) -> proto.EgressInfo:
        return self.egresses[egress_id].info

    async def wait_for_status(
        self, egress_id: str, status: int, within: float = 10.0
    ) -> proto.EgressInfo:
        def reached() -> proto.EgressInfo | None:
            egress = self.egresses.get(egress_id)
            return egress.info if egress and egress.info.status == status else None

        return await self.wait_until(reached, within)

    async def wait_for_webhook(self, event: str, egress_id: str, within: float = 10.0) -> Delivery:
        def sent() -> Delivery | None:
            return next(
                (d for d in self.webhooks if d.event == event and d.egress_id == egress_id), None
            )

        return await self.wait_until(sent, within)

    # -- Twirp ---------------------------------------------------------------------------------

    async def _twirp(self, request: web.Request) -> web.StreamResponse:
        entry = await self.record(request)
        if entry.fault is Fault.HTTP_500:
            return _twirp_error("internal", "egress double: injected failure")
        if entry.fault is Fault.HANG:
            await self.hang()
            return web.Response(status=503)
        refusal = self._auth(entry)
        if refusal is not None:
            return refusal
        if not request.content_type == "application/protobuf":
            return _twirp_error("invalid_argument", "this double speaks application/protobuf")
        method = request.match_info["method"]
        handlers = {
            "StartWebEgress": self._start_web,
            "ListEgress": self._list,
            "StopEgress": self._stop,
        }
        handler = handlers.get(method)
        if handler is None:
            return web.json_response(
                {"code": "bad_route", "msg": f"no handler for path {request.path}"}, status=404
            )
        try:
            return handler(entry)
        except DecodeError as error:
            return _twirp_error("invalid_argument", f"malformed protobuf: {error}")

    def _auth(self, entry: RecordedRequest) -> web.Response | None:
        token = entry.bearer
        if not token:
            return _twirp_error("unauthenticated", "no authorization token")
        try:
            claims = api.TokenVerifier(self.key, self.secret).verify(token)
        except Exception as error:  # noqa: BLE001 - any verification failure is a 401
            return _twirp_error("unauthenticated", f"invalid token: {error}")
        if claims.video is None or not claims.video.room_record:
            return _twirp_error("permission_denied", "permissions denied: roomRecord needed")
        return None

    def _start_web(self, entry: RecordedRequest) -> web.Response:
        request = proto.WebEgressRequest.FromString(entry.body)
        if not request.url:
            return _twirp_error("invalid_argument", "url is required")
        urls = [u for output in request.stream_outputs for u in output.urls]
        if not urls and not request.file_outputs and not request.segment_outputs:
            return _twirp_error("invalid_argument", "no output")
        bad = [u for u in urls if not u.startswith(("rtmp://", "rtmps://"))]
        if bad:
            return _twirp_error("invalid_argument", "invalid stream url")
        if self._plan.no_worker:
            return _twirp_error("unavailable", "no response from servers")
        now = _now_ns()
        info = proto.EgressInfo(
            egress_id="EG_" + uuid.uuid4().hex[:12],
            room_name="",
            source_type=proto.EgressSourceType.EGRESS_SOURCE_TYPE_WEB,
            status=proto.EgressStatus.EGRESS_STARTING,
            updated_at=now,
            web=request,
            stream_results=[proto.StreamInfo(url=u) for u in urls],
        )
        egress = _Egress(info)
        self.egresses[info.egress_id] = egress
        self._emit("egress_started", info)
        failure, self._plan.fail_next_start = self._plan.fail_next_start, None
        if failure is not None:
            egress.tasks.append(asyncio.create_task(self._fail(info.egress_id, failure)))
        else:
            egress.tasks.append(asyncio.create_task(self._activate(info.egress_id)))
        self.notify()
        return self._proto(info)

    def _list(self, entry: RecordedRequest) -> web.Response:
        request = proto.ListEgressRequest.FromString(entry.body)
        items = [
            e.info
            for e in self.egresses.values()
            if (not request.room_name or e.info.room_name == request.room_name)
            and (not request.egress_id or e.info.egress_id == request.egress_id)
            and (not request.active or e.info.status in LIVE_STATUSES)
        ]
        return self._proto(proto.ListEgressResponse(items=items))

    def _stop(self, entry: RecordedRequest) -> web.Response:
        request = proto.StopEgressRequest.FromString(entry.body)
        egress = self.egresses.get(request.egress_id)
        if egress is None:
            return _twirp_error("not_found", "egress does not exist")
        info = egress.info
        if info.status not in (
            proto.EgressStatus.EGRESS_STARTING,
            proto.EgressStatus.EGRESS_ACTIVE,
        ):
            name = proto.EgressStatus.Name(info.status)
            return _twirp_error(
                "failed_precondition", f"egress with status {name} cannot be stopped"
            )
        self._set(info, proto.EgressStatus.EGRESS_ENDING)
        self._emit("egress_updated", info)
        egress.tasks.append(asyncio.create_task(self._complete(info.egress_id)))
        return self._proto(info)

    @staticmethod
    def _proto(message: Any) -> web.Response:
        return web.Response(body=message.SerializeToString(), content_type="application/protobuf")

    # -- the simulated egress worker -----------------------------------------------------------

    def _set(self, info: proto.EgressInfo, status: int) -> None:
        info.status = status  # type: ignore[assignment]
        info.updated_at = _now_ns()
        self.notify()

    async def _activate(self, egress_id: str) -> None:
        await asyncio.sleep(self.config.activate_after_s)  # the worker's own start-up time
        info = self.egresses[egress_id].info
        if info.status != proto.EgressStatus.EGRESS_STARTING:
            return
        info.started_at = _now_ns()
        for stream in info.stream_results:
            stream.started_at = info.started_at
            stream.status = proto.StreamInfo.Status.ACTIVE
        self._set(info, proto.EgressStatus.EGRESS_ACTIVE)
        self._emit("egress_updated", info)

    async def _complete(self, egress_id: str) -> None:
        await asyncio.sleep(self.config.end_after_s)
        info = self.egresses[egress_id].info
        info.ended_at = _now_ns()
        for stream in info.stream_results:
            stream.ended_at = info.ended_at
            stream.status = proto.StreamInfo.Status.FINISHED
        self._set(info, proto.EgressStatus.EGRESS_COMPLETE)
        self._emit("egress_ended", info)

    async def _fail(self, egress_id: str, error: str) -> None:
        await asyncio.sleep(self.config.fail_after_s)
        info = self.egresses[egress_id].info
        info.error = error
        info.error_code = 500
        info.ended_at = _now_ns()
        for stream in info.stream_results:
            stream.status = proto.StreamInfo.Status.FAILED
            stream.error = error
        self._set(info, proto.EgressStatus.EGRESS_FAILED)
        self._emit("egress_ended", info)

    # -- webhooks ------------------------------------------------------------------------------

    def _emit(self, event: str, info: proto.EgressInfo) -> None:
        copy = proto.EgressInfo()
        copy.CopyFrom(info)
        self._outbox.put_nowait(
            webhook_proto.WebhookEvent(
                event=event,
                egress_info=copy,
                id="EV_" + uuid.uuid4().hex[:12],
                created_at=int(time.time()),
            )
        )

    def signature(self, body: str) -> str:
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        return api.AccessToken(self.key, self.secret).with_sha256(digest).to_jwt()

    async def _send_webhooks(self) -> None:
        while True:
            event = await self._outbox.get()
            body = MessageToJson(event, indent=0)
            status = 0
            if self.webhook_url and self._http is not None:
                try:
                    async with self._http.post(
                        self.webhook_url,
                        data=body.encode(),
                        headers={
                            "Content-Type": "application/webhook+json",
                            "Authorization": self.signature(body),
                        },
                    ) as response:
                        status = response.status
                except (aiohttp.ClientError, TimeoutError) as error:
                    log.warning("egress double: webhook %s not delivered: %r", event.event, error)
            self.webhooks.append(Delivery(event.event, event.egress_info.egress_id, status, body))
            self.notify()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the LiveKit Egress API double.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="devkey")
    parser.add_argument("--api-secret", default="secret")
    parser.add_argument("--webhook-url", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    async def run() -> None:
        double = EgressDouble(
            port=args.port,
            api_key=args.api_key,
            api_secret=args.api_secret,
            webhook_url=args.webhook_url,
        )
        async with double:
            print(f"{double.name} on {double.url} (Ctrl-C stops it)", flush=True)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
