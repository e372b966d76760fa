"""Errors the host agent's parts raise."""

from __future__ import annotations


class BackendUnavailable(RuntimeError):
    """A voice or avatar backend could not start (missing key, package, model, API down).

    `reason` is one of `host_agent.failures.REASONS` when the raiser knows it (e.g. `no_video`
    for an avatar that joined but never published video); `failure_reason` reads it.
    """

    def __init__(self, message: str, *, reason: str = "unavailable") -> None:
        super().__init__(message)
        self.reason = reason
