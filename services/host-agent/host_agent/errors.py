"""Errors the host agent's parts raise."""

from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """A voice or avatar backend could not start (missing key, package, model, API down)."""
