"""A local OTLP/HTTP collector double: what services export, decoded, for tests to assert on.

Services under test get `OTEL_EXPORTER_OTLP_ENDPOINT=<collector.url>` (see `fast_export_env`);
the double answers every export with 200 and keeps spans, metric data points and log records
with their resource's `service.name`. `wait_for(predicate)` waits, bounded, until what arrived
satisfies a condition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

T = TypeVar("T")


def fast_export_env(url: str) -> dict[str, str]:
    """Environment that makes a service export to `url` within a fraction of a second."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": url,
        "OTEL_METRIC_EXPORT_INTERVAL_MS": "300",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
        "OTEL_BLRP_SCHEDULE_DELAY": "100",
    }


def _value(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _attributes(pairs: Any) -> dict[str, Any]:
    return {pair.key: _value(pair.value) for pair in pairs if isinstance(pair, KeyValue)}


@dataclass(frozen=True)
class Span:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict[str, Any]
    status_code: int
    links: tuple[str, ...]  # trace ids of linked spans
    start_ns: int = 0
    end_ns: int = 0


@dataclass(frozen=True)
class Point:
    service: str
    metric: str
    attributes: dict[str, Any]
    value: float  # sum/gauge value, or a histogram's count


@dataclass(frozen=True)
class LogRecord:
    service: str
    body: str
    trace_id: str
    span_id: str


@dataclass
class Received:
    spans: list[Span] = field(default_factory=list)
    points: list[Point] = field(default_factory=list)
    logs: list[LogRecord] = field(default_factory=list)


def _items(resources: Any, scopes: str, items: str) -> Iterator[tuple[str, Any]]:
    """(its resource's service.name, item) for every item of every scope of an export."""
    for resource in resources:
        service = _attributes(resource.resource.attributes).get("service.name", "")
        for scope in getattr(resource, scopes):
            for item in getattr(scope, items):
                yield service, item


def _decode_traces(body: bytes, into: Received) -> None:
    resources = ExportTraceServiceRequest.FromString(body).resource_spans
    for service, span in _items(resources, "scope_spans", "spans"):
        into.spans.append(
            Span(
                service=service,
                name=span.name,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                kind=span.kind,
                attributes=_attributes(span.attributes),
                status_code=span.status.code,
                links=tuple(link.trace_id.hex() for link in span.links),
                start_ns=span.start_time_unix_nano,
                end_ns=span.end_time_unix_nano,
            )
        )


def _decode_metrics(body: bytes, into: Received) -> None:
    resources = ExportMetricsServiceRequest.FromString(body).resource_metrics
    for service, metric in _items(resources, "scope_metrics", "metrics"):
        kind = metric.WhichOneof("data")
        for point in getattr(metric, kind).data_points:
            if kind == "histogram":
                value = float(point.count)
            else:
                number = point.WhichOneof("value")
                value = float(getattr(point, number)) if number else 0.0
            into.points.append(Point(service, metric.name, _attributes(point.attributes), value))


def _decode_logs(body: bytes, into: Received) -> None:
    resources = ExportLogsServiceRequest.FromString(body).resource_logs
    for service, record in _items(resources, "scope_logs", "log_records"):
        trace_id, span_id = record.trace_id.hex(), record.span_id.hex()
        into.logs.append(LogRecord(service, str(_value(record.body)), trace_id, span_id))


_DECODERS: dict[str, Callable[[bytes, Received], None]] = {
    "/v1/traces": _decode_traces,
    "/v1/metrics": _decode_metrics,
    "/v1/logs": _decode_logs,
}


class OtlpCollector:
    """An OTLP/HTTP receiver on 127.0.0.1 (protobuf, as the Python exporters send)."""

    def __init__(self) -> None:
        self.received = Received()
        self._changed = threading.Condition()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                decoder = _DECODERS.get(self.path)
                if decoder is not None:
                    with collector._changed:
                        decoder(body, collector.received)
                        collector._changed.notify_all()
                self.send_response(200 if decoder else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> OtlpCollector:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[Received], T | None], timeout: float, what: str) -> T:
        """Wait until `predicate(received)` returns something truthy; return it."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate(self.received)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"{what}: not seen within {timeout} s; {self.summary()}")
                self._changed.wait(remaining)

    def counter_totals(self, name: str) -> dict[tuple[tuple[str, Any], ...], float]:
        """The points of the counter `name` summed over every export, keyed by their sorted
        attributes (right for cumulative counters when each process exported once, at exit)."""
        totals: dict[tuple[tuple[str, Any], ...], float] = {}
        with self._changed:
            for point in self.received.points:
                if point.metric == name:
                    key = tuple(sorted(point.attributes.items()))
                    totals[key] = totals.get(key, 0) + point.value
        return totals

    def summary(self) -> str:
        spans = sorted({f"{s.service}:{s.name}" for s in self.received.spans})
        metric_names = sorted({f"{p.service}:{p.metric}" for p in self.received.points})
        return f"spans {spans}; metrics {metric_names}; {len(self.received.logs)} log records"


def collector() -> Iterator[OtlpCollector]:
    """Body of a pytest fixture: a started collector, stopped afterwards."""
    server = OtlpCollector().start()
    try:
        yield server
    finally:
        server.stop()
