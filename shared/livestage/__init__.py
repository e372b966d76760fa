"""Livestage's shared package: wire schemas, subject names, settings, bus helpers, telemetry."""

__version__ = "0.1.0"
