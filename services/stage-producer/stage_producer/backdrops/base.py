"""Backdrops: generated pictures for a topic when no page fits (or by rotation).

Each maker is a file beside this one and implements `BackdropMaker`; `backdrops.make_backdrop_maker`
picks one from `STAGE_BACKDROP`. A maker returns finished image bytes with the title set.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field


@dataclass(frozen=True)
class BackdropRequest:
    topic: str
    title: str
    prompt: str = ""  # an operator's prompt, or empty for "about the topic"
    keywords: tuple[str, ...] = field(default_factory=tuple)
    width: int = 1280
    height: int = 720


@dataclass(frozen=True)
class Backdrop:
    data: bytes
    extension: str  # jpg | png | webp
    mime: str
    title: str
    summary: str
    width: int
    height: int
    maker: str


class BackdropError(Exception):
    """A backdrop could not be made; the message says why."""


class BackdropMaker(ABC):
    name: str = "base"

    @abstractmethod
    async def make(self, request: BackdropRequest) -> Backdrop:
        """A finished image for `request`."""
