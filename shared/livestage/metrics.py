"""Every metric Livestage exports, in one place: name, kind, unit, description, attributes.

Services record through `counter(SPEC)`, `histogram(SPEC)`, `up_down(SPEC)` or `gauge(SPEC,
callback)`, never by spelling a name themselves, so the docs, the Grafana dashboard and the code
cannot drift apart. `prometheus_name(SPEC)` gives the name the OpenTelemetry Collector's
Prometheus exporter shows (dots become underscores, the unit becomes a suffix, counters end in
`_total`); the dashboard's queries use those names and a test checks them against `ALL`.

Attribute values are small closed sets (a check name, a reason, a backend name), never a
message id or an identity, so the number of series stays bounded.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from typing import Literal

from opentelemetry import metrics
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    ObservableGauge,
    Observation,
    UpDownCounter,
)

Kind = Literal["counter", "histogram", "up_down", "gauge"]


@dataclass(frozen=True)
class MetricSpec:
    name: str
    kind: Kind
    unit: str
    description: str
    attributes: tuple[str, ...] = ()


# --- chat --------------------------------------------------------------------------------------
CHAT_SUBMITTED = MetricSpec(
    "livestage.chat.submitted",
    "counter",
    "{message}",
    "Chat messages the edge stored for moderation.",
)
CHAT_VERDICTS = MetricSpec(
    "livestage.chat.verdicts",
    "counter",
    "{message}",
    "Moderation verdicts; `check` names the check that rejected (empty when approved).",
    ("verdict", "check"),
)
CHAT_DELIVERY_LATENCY = MetricSpec(
    "livestage.chat.delivery_latency",
    "histogram",
    "ms",
    "From a message's createdAt (the edge took it) to its LiveKit send to the room.",
)
CHAT_FANOUT_PACKET_EVENTS = MetricSpec(
    "livestage.chat.fanout_packet_events",
    "histogram",
    "{event}",
    "Chat events (messages and removals) per data packet chat-history sent to a room "
    "(CHAT_FANOUT_WINDOW_MS gathers them).",
)
CHAT_REMOVALS = MetricSpec(
    "livestage.chat.removals", "counter", "{message}", "Messages removed by an operator."
)
RATE_LIMITED = MetricSpec(
    "livestage.edge.rate_limited",
    "counter",
    "{request}",
    "Requests refused with 429; `limit` names the limit.",
    ("limit",),
)
NAMES_REFUSED = MetricSpec(
    "livestage.edge.names_refused",
    "counter",
    "{request}",
    "Token requests refused for their display name; `check` is impersonation or the content "
    "check (blocklist, wordlist, classifier, zalgo).",
    ("check",),
)
MEDIA_REFUSED = MetricSpec(
    "livestage.edge.media_refused",
    "counter",
    "{request}",
    "GET /media/ requests refused or cut off; `reason` is rate (the client network's request "
    "rate), client_streams (its responses in flight), busy (no clip or image slot free in time), "
    "too_large (an image over the cap) or stalled (a reader that took nothing for the stall "
    "timeout, cut off).",
    ("reason",),
)
EDGE_DEPENDENCY_STATUS = MetricSpec(
    "livestage.edge.dependency_status",
    "gauge",
    "{state}",
    "The edge's last check of each dependency (`dependency` nats, redis, livekit, "
    "stage_media): 1 ok, 0.5 degraded (answering slowly or in part), 0 down.",
    ("dependency",),
)
HOST_DISPATCHES = MetricSpec(
    "livestage.edge.host_dispatches",
    "counter",
    "{dispatch}",
    "Host dispatches the edge created; `cause` is why (no_dispatch, stale, ended, crashed), "
    "`trigger` what looked: a token request, or the reconciler (sweep, worker, job_ended, "
    "viewer_joined) re-dispatching a room that has viewers and no host.",
    ("cause", "trigger"),
)

EGRESSES_ACTIVE = MetricSpec(
    "livestage.edge.egresses_active",
    "gauge",
    "{egress}",
    "LiveKit web egresses of the stage page that are starting, active or ending, per `room` "
    "(the edge's room: one series per show), as the room.egress events tell every edge replica.",
    ("room",),
)
EGRESSES_FAILED = MetricSpec(
    "livestage.edge.egresses_failed",
    "counter",
    "{egress}",
    "Egresses that ended failed or aborted (LiveKit's error is in the EgressEvent and the "
    "edge's log), counted once each, per `room`.",
    ("room",),
)

# --- host --------------------------------------------------------------------------------------
HOST_REACTION_LATENCY = MetricSpec(
    "livestage.host.reaction_latency",
    "histogram",
    "ms",
    "From a chat message's approval to the host starting to speak its reply.",
    ("voice",),
)
HOST_SPEAKING_TIME = MetricSpec(
    "livestage.host.speaking_time", "counter", "s", "Seconds the host spoke.", ("voice",)
)
HOST_TURNS = MetricSpec(
    "livestage.host.turns",
    "counter",
    "{turn}",
    "Host turns; `kind` is reply, monologue or say.",
    ("kind",),
)
HOST_INTERRUPTIONS = MetricSpec(
    "livestage.host.interruptions",
    "counter",
    "{turn}",
    "Speech cut short; `cause` is chat (a monologue gave way), skip (an operator), say (an "
    "operator's words cut in) or shutdown (a draining worker: a turn not yet heard, or one "
    "outlasting the drain).",
    ("cause",),
)
HOST_OUTPUT_BLOCKED = MetricSpec(
    "livestage.host.output_blocked",
    "counter",
    "{sentence}",
    "Sentences of the host kept from being heard (or cut off, OpenAI Realtime); `backend` is the "
    "voice, `check` the content check that blocked it.",
    ("backend", "check"),
)
MODEL_TOKENS = MetricSpec(
    "livestage.model.tokens",
    "counter",
    "{token}",
    "Model tokens used; `direction` is input or output, `modality` text or audio.",
    ("backend", "direction", "modality", "room"),
)
MODEL_AUDIO_TIME = MetricSpec(
    "livestage.model.audio_time",
    "counter",
    "s",
    "Seconds of audio a paid backend produced (speech it spoke or synthesised).",
    ("backend", "room"),
)
AVATAR_SESSION_TIME = MetricSpec(
    "livestage.avatar.session_time",
    "counter",
    "s",
    "Seconds a paid avatar session ran.",
    ("backend", "room"),
)
MODEL_SPEND = MetricSpec(
    "livestage.model.estimated_spend_usd",
    "counter",
    "{USD}",
    "Estimated spend in US dollars from the price table in settings (an estimate, not a bill).",
    ("backend", "room"),
)
BACKEND_FALLBACKS = MetricSpec(
    "livestage.host.backend_fallbacks",
    "counter",
    "{event}",
    "A production backend failed and the host went on with the local one.",
    ("kind", "backend", "reason"),
)

# --- memory of regulars ------------------------------------------------------------------------
MEMORY_EXTRACTION_FAILURES = MetricSpec(
    "livestage.memory.extraction_failures",
    "counter",
    "{call}",
    "Model fact-extraction calls that gave no facts because they failed; `backend` pipeline or "
    "openai, `reason` timeout, connection, http_4xx, http_5xx, bad_json (the answer is not "
    "JSON), schema (JSON not in the requested shape) or refused (the model declined).",
    ("backend", "reason"),
)

# --- rooms and jobs ----------------------------------------------------------------------------
ROOMS_ACTIVE = MetricSpec(
    "livestage.rooms.active", "gauge", "{room}", "Rooms with at least one viewer."
)
VIEWERS = MetricSpec("livestage.viewers", "gauge", "{viewer}", "Viewers in rooms.")
AGENT_JOBS_STARTED = MetricSpec(
    "livestage.agent.jobs_started", "counter", "{job}", "Host agent jobs started."
)
AGENT_JOBS_ENDED = MetricSpec(
    "livestage.agent.jobs_ended",
    "counter",
    "{job}",
    "Host agent jobs ended; `reason` says why.",
    ("reason",),
)
AGENT_JOB_CRASHES = MetricSpec(
    "livestage.agent.job_crashes", "counter", "{job}", "Host agent jobs that raised."
)

# --- memory of regulars (#21) ------------------------------------------------------------------
MEMORY_READS = MetricSpec(
    "livestage.memory.reads",
    "counter",
    "{read}",
    "Memory card reads by the host; `outcome` ok, timeout (past MEMORY_TIMEOUT_MS), error, or "
    "off (memory off for the show or the deployment: nothing read).",
    ("outcome",),
)
MEMORY_WRITES = MetricSpec(
    "livestage.memory.writes",
    "counter",
    "{write}",
    "Memory card writes by the host (a message, facts, an answer, an attendance); `outcome` "
    "ok, timeout, error or off.",
    ("outcome",),
)
MEMORY_CALLBACKS = MetricSpec(
    "livestage.memory.callbacks",
    "counter",
    "{callback}",
    "Returning regulars the host greeted with a callback; `kind` question, fact or topic.",
    ("kind",),
)

# --- stage -------------------------------------------------------------------------------------
CAPTURES = MetricSpec(
    "livestage.stage.captures",
    "counter",
    "{visual}",
    "Visuals produced; `kind` screenshot, clip or backdrop; `outcome` ok, refused, failed or "
    "blocked (its text failed the content checks).",
    ("kind", "outcome"),
)
CAPTURE_DURATION = MetricSpec(
    "livestage.stage.capture_duration",
    "histogram",
    "ms",
    "How long producing one visual took.",
    ("kind",),
)

# --- platform chat (chat-bridge) ---------------------------------------------------------------
BRIDGE_MESSAGES = MetricSpec(
    "livestage.bridge.messages",
    "counter",
    "{message}",
    "Platform chat items the bridge handled; `outcome` submitted (published on chat.submitted), "
    "duplicate (published before: JetStream or the bridge's own record says so), invalid "
    "(nothing publishable after cleaning) or removed (the platform's moderators deleted it or "
    "banned its author).",
    ("platform", "outcome"),
)
BRIDGE_CONNECTED = MetricSpec(
    "livestage.bridge.connected",
    "gauge",
    "{state}",
    "Whether the bridge follows each show's configured platform chat right now: 1 yes, 0 no.",
    ("platform", "room"),
)
BRIDGE_LAG = MetricSpec(
    "livestage.bridge.lag",
    "histogram",
    "ms",
    "From the platform's timestamp of a chat message to its publication on chat.submitted.",
    ("platform",),
)
BRIDGE_PROBLEMS = MetricSpec(
    "livestage.bridge.problems",
    "counter",
    "{event}",
    "Failures of a platform's chat client; `outcome` unauthorized, quota, unavailable, "
    "not_live, crashed (its client raised and is restarted), ...",
    ("platform", "outcome"),
)
BRIDGE_REPLIES = MetricSpec(
    "livestage.bridge.replies",
    "counter",
    "{comment}",
    "Answered platform comments and the reply back in the platform's chat; `outcome` sent, "
    "refused (by the platform), failed (an error or timeout), rate_limited (over the send "
    "limit for longer than BRIDGE_REPLY_MAX_WAIT_S: dropped) or duplicate (replied already).",
    ("platform", "outcome"),
)

# --- infrastructure ----------------------------------------------------------------------------
NATS_CONSUMER_PENDING = MetricSpec(
    "livestage.nats.consumer_pending",
    "gauge",
    "{message}",
    "Messages a durable consumer has not been handed yet (its lag).",
    ("consumer",),
)
BUS_DEAD_LETTERED = MetricSpec(
    "livestage.bus.dead_lettered",
    "counter",
    "{message}",
    "Messages a durable consumer gave up on and filed in the dead-letter stream: `exhausted` "
    "(every delivery of its retry budget failed) or `invalid` (it never validates). Alert on "
    "any increase: each one was accepted and is not delivered until an operator replays it.",
    ("consumer", "reason"),
)

ALL: tuple[MetricSpec, ...] = (
    CHAT_SUBMITTED,
    CHAT_VERDICTS,
    CHAT_DELIVERY_LATENCY,
    CHAT_FANOUT_PACKET_EVENTS,
    CHAT_REMOVALS,
    RATE_LIMITED,
    NAMES_REFUSED,
    MEDIA_REFUSED,
    EDGE_DEPENDENCY_STATUS,
    HOST_DISPATCHES,
    EGRESSES_ACTIVE,
    EGRESSES_FAILED,
    HOST_REACTION_LATENCY,
    HOST_SPEAKING_TIME,
    HOST_TURNS,
    HOST_INTERRUPTIONS,
    HOST_OUTPUT_BLOCKED,
    MODEL_TOKENS,
    MODEL_AUDIO_TIME,
    AVATAR_SESSION_TIME,
    MODEL_SPEND,
    BACKEND_FALLBACKS,
    MEMORY_EXTRACTION_FAILURES,
    ROOMS_ACTIVE,
    VIEWERS,
    AGENT_JOBS_STARTED,
    AGENT_JOBS_ENDED,
    AGENT_JOB_CRASHES,
    MEMORY_READS,
    MEMORY_WRITES,
    MEMORY_CALLBACKS,
    CAPTURES,
    CAPTURE_DURATION,
    BRIDGE_MESSAGES,
    BRIDGE_CONNECTED,
    BRIDGE_LAG,
    BRIDGE_PROBLEMS,
    BRIDGE_REPLIES,
    NATS_CONSUMER_PENDING,
    BUS_DEAD_LETTERED,
)

_METER_NAME = "livestage"
_UNIT_SUFFIXES = {"ms": "milliseconds", "s": "seconds", "By": "bytes"}


def _check(spec: MetricSpec, kind: Kind) -> None:
    if spec.kind != kind:
        raise TypeError(f"{spec.name} is a {spec.kind}, not a {kind}")


# Instruments are cached per (spec, meter) so that a hot path does not look them up each time.
# Without a meter they come from the global provider: create them after `setup_telemetry`
# installed it. A meter of its own (tests with an in-memory reader) keeps its own instruments.
def _meter(meter: Meter | None) -> Meter:
    return meter if meter is not None else metrics.get_meter(_METER_NAME)


@cache
def counter(spec: MetricSpec, meter: Meter | None = None) -> Counter:
    """The counter for `spec`, from the global meter provider or from `meter` (tests pass one
    from their own `MeterProvider` to read what was recorded)."""
    _check(spec, "counter")
    return _meter(meter).create_counter(spec.name, unit=spec.unit, description=spec.description)


@cache
def histogram(spec: MetricSpec, meter: Meter | None = None) -> Histogram:
    _check(spec, "histogram")
    return _meter(meter).create_histogram(spec.name, unit=spec.unit, description=spec.description)


@cache
def up_down(spec: MetricSpec, meter: Meter | None = None) -> UpDownCounter:
    _check(spec, "up_down")
    return _meter(meter).create_up_down_counter(
        spec.name, unit=spec.unit, description=spec.description
    )


def gauge(
    spec: MetricSpec,
    callback: Callable[[], Iterable[tuple[float, dict[str, str]]]],
    meter: Meter | None = None,
) -> ObservableGauge:
    """An observable gauge; `callback` returns (value, attributes) pairs when collected."""
    _check(spec, "gauge")

    def observe(_options: CallbackOptions) -> Iterable[Observation]:
        return [Observation(value, attributes) for value, attributes in callback()]

    return _meter(meter).create_observable_gauge(
        spec.name, callbacks=[observe], unit=spec.unit, description=spec.description
    )


def prometheus_name(spec: MetricSpec) -> str:
    """The series name behind the Collector's Prometheus exporter (histograms add _bucket etc.)."""
    name = spec.name.replace(".", "_")
    suffix = _UNIT_SUFFIXES.get(spec.unit, "")
    if suffix and not name.endswith(suffix):
        name = f"{name}_{suffix}"
    if spec.kind == "counter":
        name += "_total"
    return name
