"""What every family of stage backends (search providers, topic pickers, backdrop makers) shares.

A member has its `name` in the family's setting and is built by `from_settings(settings, gemini,
sources)`: the one signature every family's `Registry` calls, whatever the member reads of it.
A member that needs more than its defaults overrides `from_settings`; one that cannot work with
these settings raises `livestage.registry.BackendUnavailable` saying what it needs.
"""

from __future__ import annotations

from abc import ABC
from typing import TYPE_CHECKING, ClassVar, Self

if TYPE_CHECKING:
    from .gemini import Gemini
    from .search.sources import SourcesFile
    from .settings import StageSettings


class StageBackend(ABC):
    """The base of every family's base (`SearchProvider`, `TopicPicker`, `BackdropMaker`)."""

    name: ClassVar[str]

    @classmethod
    def from_settings(cls, settings: StageSettings, gemini: Gemini, sources: SourcesFile) -> Self:
        """Build the member from the stage's settings, the shared Gemini client and models, and
        the sources file."""
        return cls()
