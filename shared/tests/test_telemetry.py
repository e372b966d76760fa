"""`setup_telemetry` exports traces, metrics and logs over OTLP/HTTP when an endpoint is set,
and exports and prints nothing without one. Each check runs in a fresh interpreter, because
OpenTelemetry's global providers can be set only once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

SCRIPT = """
import logging
from opentelemetry import metrics, trace
from livestage.telemetry import setup_telemetry

telemetry = setup_telemetry("probe-service")
assert setup_telemetry("probe-service") is telemetry  # once per process
with trace.get_tracer("probe").start_as_current_span("probe-span"):
    metrics.get_meter("probe").create_counter("probe_counter").add(3)
    logging.getLogger("probe").warning("probe log line")
telemetry.shutdown()
"""


class Collector(BaseHTTPRequestHandler):
    """A local OTLP/HTTP collector double: decodes and keeps what it is sent."""

    received: dict[str, list[bytes]] = {}

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.setdefault(self.path, []).append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, dict[str, list[bytes]]]]:
    Collector.received = {}
    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", Collector.received
    server.shutdown()


def run_probe(extra_env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env | extra_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def test_exports_traces_metrics_and_logs_to_the_endpoint(collector) -> None:  # type: ignore[no-untyped-def]
    url, received = collector
    run_probe({"OTEL_EXPORTER_OTLP_ENDPOINT": url})
    assert set(received) == {"/v1/traces", "/v1/metrics", "/v1/logs"}

    traces = ExportTraceServiceRequest.FromString(received["/v1/traces"][0])
    (resource_spans,) = traces.resource_spans
    attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert attributes["service.name"] == "probe-service"
    assert attributes["service.namespace"] == "livestage"
    names = [span.name for scope in resource_spans.scope_spans for span in scope.spans]
    assert names == ["probe-span"]

    metric_names = {
        metric.name
        for body in received["/v1/metrics"]
        for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
        for sm in rm.scope_metrics
        for metric in sm.metrics
    }
    assert "probe_counter" in metric_names

    logs = [
        record.body.string_value
        for body in received["/v1/logs"]
        for rl in ExportLogsServiceRequest.FromString(body).resource_logs
        for sl in rl.scope_logs
        for record in sl.log_records
    ]
    assert "probe log line" in logs


def test_without_an_endpoint_nothing_is_exported_or_printed_by_telemetry(collector) -> None:  # type: ignore[no-untyped-def]
    _, received = collector
    result = run_probe({})
    assert received == {}
    assert result.stdout == ""
    # only the service's own log line reaches stderr: no exporter output, no span dumps
    assert result.stderr.strip().endswith("probe log line")
    assert "probe-span" not in result.stderr


RECORDING_SCRIPT = """
import json
from opentelemetry import trace
from opentelemetry.instrumentation.redis import RedisInstrumentor
from livestage.telemetry import exporting, fastapi_telemetry, setup_telemetry

telemetry = setup_telemetry("probe-service")
with trace.get_tracer("probe").start_as_current_span("probe-span") as span:
    context = span.get_span_context()
    print(json.dumps({
        "recording": span.is_recording(),
        "ids": context.is_valid,
        "exporting": exporting(),
        "fastapi": fastapi_telemetry(),
        "redis_spans": RedisInstrumentor().is_instrumented_by_opentelemetry,
    }))
telemetry.shutdown()
"""


@pytest.mark.parametrize("with_endpoint", [True, False])
def test_spans_are_recorded_only_when_exported(collector, with_endpoint: bool) -> None:  # type: ignore[no-untyped-def]
    """Without an endpoint a span costs no recording, yet keeps the ids that log lines and NATS
    headers carry; with one, spans, Redis client spans and FastAPI's own spans are all on."""
    url, _ = collector
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    if with_endpoint:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = url
    result = subprocess.run(
        [sys.executable, "-c", RECORDING_SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["ids"] is True  # a trace context either way
    assert seen["recording"] is with_endpoint
    assert seen["exporting"] is with_endpoint
    assert seen["redis_spans"] is with_endpoint
    assert seen["fastapi"] == dict.fromkeys(
        ("tracing", "operation_spans", "metrics", "logs"), with_endpoint
    )
