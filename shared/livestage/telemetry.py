"""One call to set up OpenTelemetry traces, metrics and logs for a service.

`setup_telemetry("token")` installs SDK providers so spans get real trace ids (which is what
lets trace context cross NATS in message headers). With `OTEL_EXPORTER_OTLP_ENDPOINT` set, traces,
metrics and logs are exported over OTLP/HTTP; without it nothing is exported and nothing is
printed. It also configures the standard `logging` root logger for the service's own stderr.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from livestage.settings import LogSettings, TelemetrySettings

_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@dataclass
class Telemetry:
    """The providers a service installed; `shutdown()` flushes them at exit."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    log_handler: logging.Handler | None = None

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        if self.log_handler is not None:
            logging.getLogger().removeHandler(self.log_handler)
            provider = getattr(self.log_handler, "_logger_provider", None)
            if provider is not None:
                provider.shutdown()


def _otlp_url(endpoint: str, signal: str) -> str:
    return f"{endpoint.rstrip('/')}/v1/{signal}"


def setup_telemetry(
    service_name: str,
    settings: TelemetrySettings | None = None,
    log_settings: LogSettings | None = None,
) -> Telemetry:
    """Install tracer, meter and (with an endpoint) log providers for `service_name`."""
    settings = settings or TelemetrySettings()
    log_settings = log_settings or LogSettings()
    logging.basicConfig(level=log_settings.log_level, format=_LOG_FORMAT)

    resource = Resource.create(
        {"service.name": service_name, "service.namespace": settings.service_namespace}
    )
    tracer_provider = TracerProvider(resource=resource)
    readers: list[MetricReader] = []
    log_handler: logging.Handler | None = None

    endpoint = settings.exporter_otlp_endpoint
    if endpoint:
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
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
        log_handler._logger_provider = logger_provider
        logging.getLogger().addHandler(log_handler)

    meter_provider = MeterProvider(resource=resource, metric_readers=readers)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(tracer_provider, meter_provider, log_handler)
