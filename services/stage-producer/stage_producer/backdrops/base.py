"""Backdrops: generated pictures for a topic when no page fits (or by rotation).

Each maker is a file beside this one and implements `BackdropMaker`, with its `name` (and
`from_settings` when it needs more than defaults); `backdrops.BACKDROPS` builds the one
`STAGE_BACKDROP` names. A maker returns finished image bytes with the title set.
"""

from __future__ import annotations

import io
from abc import abstractmethod
from dataclasses import dataclass, field

from PIL import Image

from ..backend import StageBackend


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


class BackdropMaker(StageBackend):
    """One way to make a backdrop. Subclasses set `name` and implement `make`."""

    @abstractmethod
    async def make(self, request: BackdropRequest) -> Backdrop:
        """A finished image for `request`."""

    def finished(self, image: Image.Image, request: BackdropRequest, summary: str) -> Backdrop:
        """`image` (titled, at the request's size) as this maker's backdrop: a JPEG."""
        out = io.BytesIO()
        image.save(out, "JPEG", quality=88, optimize=True, progressive=True)
        return Backdrop(
            data=out.getvalue(),
            extension="jpg",
            mime="image/jpeg",
            title=request.title,
            summary=summary,
            width=request.width,
            height=request.height,
            maker=self.name,
        )
