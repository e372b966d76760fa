"""Backdrops from Gemini's image model (google-genai `generate_content`, IMAGE modality).

The picture is asked for without any lettering; it is cropped to the stage's size and the title
is set on it the same way as on a drawn backdrop (`typeset.set_title`).
"""

from __future__ import annotations

import asyncio
import io

from google.genai import errors, types
from PIL import Image, ImageOps

from ..gemini import GeminiMember
from .base import Backdrop, BackdropError, BackdropMaker, BackdropRequest
from .procedural import hsv, theme_for
from .typeset import set_title


def image_prompt(request: BackdropRequest) -> str:
    subject = request.prompt.strip() or f"the topic “{request.topic or request.title}”"
    return (
        f"A cinematic, wide 16:9 backdrop for a live video stream about {subject}. "
        "Rich colour, depth, soft light, calm composition with open space in the top-left corner. "
        "No text, no letters, no logos, no watermarks, no people's faces."
    )


class GeminiBackdrops(GeminiMember, BackdropMaker):
    name = "gemini"
    model_kind = "image"

    async def make(self, request: BackdropRequest) -> Backdrop:
        try:
            response = await self.client.aio.models.generate_content(
                model=self.model,
                contents=image_prompt(request),
                config=types.GenerateContentConfig(
                    response_modalities=["IMAGE"],
                    image_config=types.ImageConfig(aspect_ratio="16:9"),
                ),
            )
        except errors.APIError as error:
            raise BackdropError(f"Gemini image model {self.model}: {error}") from error
        picture: bytes | None = None
        for candidate in response.candidates or []:
            for part in (candidate.content.parts if candidate.content else None) or []:
                if part.inline_data and part.inline_data.data:
                    picture = part.inline_data.data
                    break
        if picture is None:
            raise BackdropError(f"Gemini image model {self.model} returned no image")
        return await asyncio.to_thread(self._finish, picture, request)

    def _finish(self, picture: bytes, request: BackdropRequest) -> Backdrop:
        try:
            with Image.open(io.BytesIO(picture)) as source:
                image = ImageOps.fit(source.convert("RGB"), (request.width, request.height))
        except OSError as error:
            raise BackdropError(f"Gemini returned an image Pillow cannot read: {error}") from error
        theme = theme_for(f"{request.topic} {request.prompt}", request.keywords)
        kicker = theme.name if theme.name != "topic" else "on stage"
        image = set_title(image, request.title, kicker, hsv(theme.hues[2], 0.5, 1.0))
        subject = request.prompt.strip() or request.topic or request.title
        return self.finished(image, request, f"A generated picture for “{subject}”.")
