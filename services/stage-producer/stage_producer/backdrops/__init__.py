"""Backdrop makers: a picture for a topic when no page fits (or by rotation), one file each behind
`base.BackdropMaker`, chosen by `STAGE_BACKDROP` in `BACKDROPS` (a `livestage.registry.Registry`:
an unknown name is refused with the valid ones).

| name | draws with | needs |
|---|---|---|
| procedural | Pillow and numpy: palette and shapes from the topic's words; offline | nothing |
| gemini | Gemini's image model (`GEMINI_IMAGE_MODEL`); drawn when it fails | `GEMINI_API_KEY` |
| auto | gemini with `GEMINI_API_KEY`, else procedural (the default) | |

Built with `BACKDROPS.build(settings.backdrop, settings, gemini, sources)` (see `..backend`). Both
set the title the same way (`typeset.set_title`).
"""

from __future__ import annotations

from livestage.registry import Registry

from ..gemini import gemini_or
from .base import Backdrop, BackdropError, BackdropMaker, BackdropRequest
from .gemini import GeminiBackdrops
from .procedural import ProceduralBackdrops

BACKDROPS: Registry[BackdropMaker] = Registry(
    "backdrop maker",
    setting="STAGE_BACKDROP",
    members=(ProceduralBackdrops, GeminiBackdrops),
    auto=gemini_or("procedural"),
)

__all__ = [
    "BACKDROPS",
    "Backdrop",
    "BackdropError",
    "BackdropMaker",
    "BackdropRequest",
]
