"""OpenTelemetry for every service: one call at start, a few helpers for spans of our own.

`setup_telemetry("token")` installs SDK providers so spans get real trace ids (which is what
lets trace context cross NATS in message headers, see `livestage.bus`) and turns on the
maintained instrumentations:

- httpx (every client, e.g. the OpenAI SDK and google-genai) and Redis: client spans;
- `logging`: each record carries the current trace and span ids; stderr shows them as
  `[trace=<32 hex> span=<16 hex>]` and OTLP log records carry them natively;
- the LiveKit server API (`livekit-api`'s Twirp client, which uses aiohttp): a client span
  `livekit <Service>/<Method>` per call, e.g. `livekit RoomService/SendData`.

FastAPI (0.165+) traces its apps natively once these providers are set, probes included; the
maintained instrumentation takes over (and leaves the probes out) with one line where the app is
built: `instrument_app(app)`. Model calls get a span and their token use with
`model_call(...)`; any other LiveKit call (rtc side) gets a span with `livekit_call(...)`; the
answer to a NATS request joins the requester's trace with `serving_request(msg)`; a reply to
messages that each have a trace links to them with `linked_span(name, contexts)`.

With `OTEL_EXPORTER_OTLP_ENDPOINT` set, traces, metrics and logs are exported over OTLP/HTTP;
without it nothing is exported and nothing is printed, and nothing is recorded either: spans are
sampled out (they keep their ids, so log lines still carry them and trace context still crosses
NATS), the httpx and Redis client spans are not made, and a FastAPI app built with
`telemetry=fastapi_telemetry()` makes no spans or HTTP metrics of its own (a busy edge spent a
fifth of each chat POST on spans nobody read). It also configures the standard `logging` root
logger for the service's own stderr.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import urlparse

from opentelemetry import metrics, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from livestage import metrics as livestage_metrics
from livestage.settings import LogSettings, TelemetrySettings

_TRACER_NAME = "livestage"
# Paths no trace is made for: probes would drown the real traffic (every few seconds each).
PROBE_PATHS = "healthz,readyz"

T = TypeVar("T")
# The providers of this process: OpenTelemetry's globals can be set once, so a second
# setup_telemetry (e.g. a LiveKit Agents job prewarm in the worker's own process) reuses them.
_installed: list[Telemetry] = []


@dataclass
class Telemetry:
    """The providers a service installed; `shutdown()` flushes them at exit."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    log_handler: logging.Handler | None = None
    logger_provider: Any = None
    exporting: bool = False  # an OTLP endpoint is set: spans are recorded and exported

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
        if self.logger_provider is not None:
            self.logger_provider.shutdown()


class TraceFormatter(logging.Formatter):
    """`time LEVEL logger [trace=... span=...]: message`; the ids only inside a span.

    The ids come from the `logging` instrumentation (`otelTraceID`/`otelSpanID` on each record);
    a record made outside its record factory (or outside any span) just has no bracket.
    """

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(otel)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        trace_id = getattr(record, "otelTraceID", "0")
        span_id = getattr(record, "otelSpanID", "0")
        has_ids = trace_id not in ("0", "") and span_id not in ("0", "")
        record.otel = f" [trace={trace_id} span={span_id}]" if has_ids else ""
        return super().format(record)


def _otlp_url(endpoint: str, signal: str) -> str:
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def _configure_stderr_logging(level: str) -> None:
    root = logging.getLogger()
    if not any(getattr(h, "_livestage_stderr", False) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(TraceFormatter())
        handler._livestage_stderr = True  # type: ignore[attr-defined]
        root.addHandler(handler)
    root.setLevel(level)


def setup_telemetry(
    service_name: str,
    settings: TelemetrySettings | None = None,
    log_settings: LogSettings | None = None,
) -> Telemetry:
    """Install tracer, meter and (with an endpoint) log providers for `service_name`, and turn
    on the library instrumentations (httpx, Redis, logging, the LiveKit server API).

    Once per process: a later call returns the providers the first one installed.
    """
    if _installed:
        return _installed[0]
    settings = settings or TelemetrySettings()
    log_settings = log_settings or LogSettings()
    _configure_stderr_logging(log_settings.log_level)

    resource = Resource.create(
        {"service.name": service_name, "service.namespace": settings.service_namespace}
    )
    endpoint = settings.exporter_otlp_endpoint
    # Without an exporter a recorded span is work for nobody: sample every span out (ids are
    # still made, so log lines and NATS headers carry a trace context as before).
    tracer_provider = TracerProvider(resource=resource, sampler=None if endpoint else ALWAYS_OFF)
    readers: list[MetricReader] = []
    log_handler: logging.Handler | None = None
    logger_provider: Any = None

    if endpoint:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.logging.handler import LoggingHandler
        from opentelemetry.sdk._logs import LoggerProvider
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

        tracer_provider.add_span_processor(
            BatchSpanProcessor(OTLPSpanExporter(endpoint=_otlp_url(endpoint, "traces")))
        )
        readers.append(
            PeriodicExportingMetricReader(
                OTLPMetricExporter(endpoint=_otlp_url(endpoint, "metrics")),
                export_interval_millis=settings.metric_export_interval_ms,
            )
        )
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=_otlp_url(endpoint, "logs")))
        )
        log_handler = LoggingHandler(level=logging.INFO, logger_provider=logger_provider)
        logging.getLogger().addHandler(log_handler)

    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    instrument_libraries(tracer_provider, client_spans=bool(endpoint))
    _installed.append(
        Telemetry(tracer_provider, meter_provider, log_handler, logger_provider, bool(endpoint))
    )
    return _installed[0]


def exporting() -> bool:
    """Whether this process's telemetry exports (`setup_telemetry` ran with an endpoint)."""
    return bool(_installed) and _installed[0].exporting


def fastapi_telemetry() -> dict[str, bool]:
    """`FastAPI(telemetry=fastapi_telemetry())`: FastAPI's native request and operation spans,
    HTTP metrics and error log records only when `setup_telemetry` exports them (call it after
    `setup_telemetry`; without it, as in tests, FastAPI makes none either way)."""
    on = exporting()
    return {"tracing": on, "operation_spans": on, "metrics": on, "logs": on}


def instrument_libraries(
    tracer_provider: trace.TracerProvider | None = None, *, client_spans: bool = True
) -> None:
    """Turn on the library instrumentations once per process (later calls do nothing).

    `client_spans=False` (nothing exports them) leaves httpx and Redis alone: a span per Redis
    command costs more than many commands.
    """
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    for instrumentor in (HTTPXClientInstrumentor(), RedisInstrumentor()) if client_spans else ():
        if not instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.instrument(tracer_provider=tracer_provider)
    logging_instrumentor = LoggingInstrumentor()
    if not logging_instrumentor.is_instrumented_by_opentelemetry:
        # Only the trace ids on records: the OTLP handler is ours (setup_telemetry), and the
        # stderr format is TraceFormatter's.
        logging_instrumentor.instrument(
            tracer_provider=tracer_provider,
            inject_trace_context=True,
            enable_log_auto_instrumentation=False,
        )
    instrument_livekit_api()


def instrument_app(app: T) -> T:
    """HTTP server spans for a FastAPI app (probes excluded); returns the app. Idempotent.

    The one line a FastAPI service adds where it builds its app: `instrument_app(app)`.
    """
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    if not getattr(app, "_is_instrumented_by_opentelemetry", False):
        FastAPIInstrumentor.instrument_app(
            app,  # type: ignore[arg-type]
            excluded_urls=PROBE_PATHS,
            exclude_spans=["receive", "send"],
        )
    return app


# --- LiveKit ------------------------------------------------------------------------------------

_LIVEKIT_PATCHED = "_livestage_traced"


_parsed_url = functools.lru_cache(maxsize=64)(urlparse)
"""A client's host, parsed once (the span's server address and port)."""


def instrument_livekit_api() -> None:
    """A client span around every LiveKit server API call (`livekit-api`'s Twirp client).

    livekit-api talks over aiohttp, which no instrumentation here covers; wrapping its one
    request method gives every service (dispatch, SendData, list_participants) the span with
    no code of its own. The span is named `livekit <Service>/<Method>`; a LiveKit error sets
    its status and `rpc.livekit.error_code`.
    """
    try:
        from livekit.api.twirp_client import TwirpClient
    except ImportError:  # a service without livekit-api
        return
    if getattr(TwirpClient.request, _LIVEKIT_PATCHED, False):
        return
    original = TwirpClient.request

    @functools.wraps(original)
    async def request(
        self: Any,
        service: str,
        method: str,
        data: Any,
        headers: dict[str, str],
        response_class: Any,
        **kwargs: Any,
    ) -> Any:
        address = _parsed_url(getattr(self, "host", ""))
        with livekit_call(
            f"{service}/{method}",
            {
                "rpc.service": f"{getattr(self, 'pkg', 'livekit')}.{service}",
                "rpc.method": method,
                "server.address": address.hostname or "",
                "server.port": address.port or (443 if address.scheme == "https" else 80),
            },
        ):
            headers = dict(headers)
            propagate.inject(headers)
            return await original(self, service, method, data, headers, response_class, **kwargs)

    setattr(request, _LIVEKIT_PATCHED, True)
    TwirpClient.request = request  # type: ignore[method-assign]


_livekit_tracer = trace.get_tracer(_TRACER_NAME)
"""A proxy: it follows the provider `setup_telemetry` installs later. `get_tracer` per call
made a tracer for every SendData (a tenth of chat-history's send)."""


@contextmanager
def livekit_call(method: str, attributes: dict[str, Any] | None = None) -> Iterator[Span]:
    """A CLIENT span `livekit <method>` around a call to LiveKit (server API or rtc side).

    `with livekit_call("publish_data", {"livekit.topic": topic}): await room...` for calls the
    server API wrapper does not see. Errors are recorded on the span and re-raised.
    """
    with _livekit_tracer.start_as_current_span(
        f"livekit {method}",
        kind=SpanKind.CLIENT,
        attributes={"rpc.system": "livekit", **(attributes or {})},
        record_exception=False,
        set_status_on_exception=False,
    ) as span:
        try:
            yield span
        except Exception as error:
            code = getattr(error, "code", None)
            if isinstance(code, str):
                span.set_attribute("rpc.livekit.error_code", code)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
            raise


# --- links ------------------------------------------------------------------------------------


@contextmanager
def linked_span(
    name: str, contexts: Iterable[Context], attributes: dict[str, Any] | None = None
) -> Iterator[Span]:
    """A span linked to the traces of the messages it answers (a host reply to one or two chat
    messages, each with its own trace): `with linked_span("host reply", [d.context ...]):`.

    `contexts` are the trace contexts the messages arrived with (`Delivery.context`, or
    `propagate.extract(headers)`); ones without a valid span are skipped.
    """
    links = []
    for context in contexts:
        span_context = trace.get_current_span(context).get_span_context()
        if span_context.is_valid:
            links.append(trace.Link(span_context))
    with trace.get_tracer(_TRACER_NAME).start_as_current_span(
        name, links=links, attributes=attributes
    ) as span:
        yield span


# --- NATS request/reply ------------------------------------------------------------------------


@contextmanager
def serving_request(msg: Any) -> Iterator[Span]:
    """A SERVER span around answering a core-NATS request, joined to the requester's trace.

    `Bus.request` sends the trace context in the request's headers; the answering side wraps
    its work in one line: `with serving_request(msg): ...` (`msg` is the nats-py `Msg`).
    """
    subject = str(getattr(msg, "subject", ""))
    parent = propagate.extract(dict(getattr(msg, "headers", None) or {}))
    with trace.get_tracer(_TRACER_NAME).start_as_current_span(
        f"serve {subject}",
        context=parent,
        kind=SpanKind.SERVER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    ) as span:
        yield span


# --- model calls --------------------------------------------------------------------------------


@dataclass
class ModelCall:
    """What a `model_call` block reports: token use (span attributes + the MODEL_TOKENS metric)
    and, for paid backends, estimated spend (MODEL_SPEND)."""

    span: Span
    backend: str
    totals: dict[str, int] = field(default_factory=dict)

    def tokens(
        self, *, input_tokens: int = 0, output_tokens: int = 0, modality: str = "text"
    ) -> None:
        """Count tokens used in this call (call as often as usage arrives)."""
        counter = livestage_metrics.counter(livestage_metrics.MODEL_TOKENS)
        for direction, count in (("input", input_tokens), ("output", output_tokens)):
            if count <= 0:
                continue
            counter.add(
                count,
                {"backend": self.backend, "direction": direction, "modality": modality},
            )
            self.totals[direction] = self.totals.get(direction, 0) + count
        self.span.set_attribute("gen_ai.usage.input_tokens", self.totals.get("input", 0))
        self.span.set_attribute("gen_ai.usage.output_tokens", self.totals.get("output", 0))

    def spend(self, usd: float) -> None:
        """Add an estimated spend in US dollars (from the settings' price table)."""
        if usd > 0:
            livestage_metrics.counter(livestage_metrics.MODEL_SPEND).add(
                usd, {"backend": self.backend}
            )
            self.span.set_attribute("livestage.estimated_spend_usd", usd)


@contextmanager
def model_call(
    backend: str,
    operation: str,
    model: str = "",
    attributes: dict[str, Any] | None = None,
) -> Iterator[ModelCall]:
    """A CLIENT span `<operation> <model>` (GenAI naming) around one call to a model backend.

        with model_call("openai-realtime", "chat", model="gpt-realtime-2") as call:
            ...
            call.tokens(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens)

    `backend` is the setting-level backend name (openai-realtime, gemini, local, ...): a small
    closed set, which is why it is also the metric attribute.
    """
    tracer = trace.get_tracer(_TRACER_NAME)
    with tracer.start_as_current_span(
        f"{operation} {model}".strip(),
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": backend,
            "gen_ai.request.model": model,
            **(attributes or {}),
        },
    ) as span:
        yield ModelCall(span, backend)


def traced(
    name: str, kind: SpanKind = SpanKind.INTERNAL
) -> Callable[[Callable[..., Awaitable[T]]], Callable[..., Awaitable[T]]]:
    """Decorator: run an async function inside a span `name` (errors recorded, re-raised)."""

    def decorate(function: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
        @functools.wraps(function)
        async def wrapper(*args: Any, **kwargs: Any) -> T:
            with trace.get_tracer(_TRACER_NAME).start_as_current_span(name, kind=kind):
                return await function(*args, **kwargs)

        return wrapper

    return decorate
