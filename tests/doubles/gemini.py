"""A local double of the Gemini API's `generateContent`, for the real google-genai client.

Point the client at it with `GEMINI_BASE_URL=<double.url>` (or `HttpOptions(base_url=...)`).
It speaks the REST shape google-genai 3.x uses: `POST /{v1|v1beta}/models/{model}:generateContent`
with the key in `x-goog-api-key`, a JSON body with `contents` and `generationConfig` / `tools`;
it answers `candidates[0].content.parts[]` and, for Google Search grounding,
`candidates[0].groundingMetadata.groundingChunks[].web{uri,title}`.

What it answers depends on the request, as the real service's would:
- `generationConfig.responseModalities` contains IMAGE: one `inlineData` PNG (a gradient drawn
  with Pillow, `image_size` pixels);
- `tools` contains `googleSearch`: text plus grounding chunks from `search_results`;
- otherwise: `text_reply` (a string, or a callable of the prompt text).

Every request is kept in `requests` (the base's raw log) and, decoded, in `calls` (model, key,
body, prompt). Faults (`double.fail(Fault.HTTP_500)`, `HTTP_401`, `HANG`) answer in Google's
error shape (`{"error": {"code", "message", "status"}}`).
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web
from PIL import Image, ImageDraw

from tests.doubles.base import DoubleServer, Fault, serve_forever


@dataclass
class GeminiCall:
    """One decoded `generateContent` call."""

    path: str
    model: str
    api_key: str
    body: dict[str, Any]

    @property
    def prompt(self) -> str:
        texts = []
        for content in self.body.get("contents", []):
            for part in content.get("parts", []):
                if "text" in part:
                    texts.append(part["text"])
        return "\n".join(texts)


DEFAULT_TOPIC_REPLY = '{"topic": "Space", "query": "space", "confidence": 0.9}'


class GeminiDouble(DoubleServer):
    supported_faults: ClassVar[frozenset[Fault]] = frozenset(
        {Fault.HTTP_500, Fault.HTTP_401, Fault.HANG}
    )
    name: ClassVar[str] = "gemini-double"

    def __init__(
        self,
        *,
        api_key: str = "test-gemini-key",
        text_reply: str | Callable[[str], str] = DEFAULT_TOPIC_REPLY,
        search_results: list[dict[str, str]] | None = None,
        search_text: str = "Here is what I found.",
        image_size: tuple[int, int] = (1344, 768),
        port: int = 0,
        fault: Fault | None = None,
    ) -> None:
        super().__init__(port=port, fault=fault)
        self.api_key = api_key
        self.text_reply = text_reply
        self.search_results = search_results or []
        self.search_text = search_text
        self.image_size = image_size
        self.calls: list[GeminiCall] = []

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{version}/models/{model_action}", self._handle)]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        model, _, action = request.match_info["model_action"].partition(":")
        if action != "generateContent" or request.match_info["version"] not in ("v1", "v1beta"):
            return _error(404, "NOT_FOUND", f"unknown method {request.path}")
        try:
            body = recorded.json or {}
        except ValueError:
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        key = request.headers.get("x-goog-api-key", "")
        call = GeminiCall(request.path, model, key, body)
        self.calls.append(call)
        if recorded.fault is Fault.HANG:
            await self.hang()
            return _error(503, "UNAVAILABLE", "the double is stopping")
        if key != self.api_key or recorded.fault is Fault.HTTP_401:
            return _error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        if recorded.fault is Fault.HTTP_500:
            return _error(500, "INTERNAL", "An internal error has occurred.")
        config = body.get("generationConfig", {})
        modalities = [m.upper() for m in config.get("responseModalities", [])]
        if "IMAGE" in modalities:
            image = {"inlineData": {"mimeType": "image/png", "data": self._png()}}
            return _json(_candidate([image]))
        if any("googleSearch" in tool for tool in body.get("tools", [])):
            candidate = _candidate([{"text": self.search_text}])
            candidate["candidates"][0]["groundingMetadata"] = {
                "webSearchQueries": [call.prompt[:100]],
                "groundingChunks": [{"web": result} for result in self.search_results],
            }
            return _json(candidate)
        reply = self.text_reply(call.prompt) if callable(self.text_reply) else self.text_reply
        return _json(_candidate([{"text": reply}]))

    def _png(self) -> str:
        width, height = self.image_size
        image = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(image)
        for y in range(height):
            shade = round(255 * y / height)
            draw.line([(0, y), (width, y)], fill=(40, 80 + shade // 3, 120 + shade // 2))
        draw.ellipse((width * 0.6, height * 0.3, width * 0.8, height * 0.65), fill=(250, 200, 90))
        out = io.BytesIO()
        image.save(out, "PNG")
        return base64.b64encode(out.getvalue()).decode()


def _candidate(parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": 12,
            "candidatesTokenCount": 34,
            "totalTokenCount": 46,
        },
        "modelVersion": "double",
    }


def _json(payload: dict[str, Any]) -> web.Response:
    return web.Response(text=json.dumps(payload), content_type="application/json")


def _error(status: int, code: str, message: str) -> web.Response:
    payload = {"error": {"code": status, "message": message, "status": code}}
    return web.Response(status=status, text=json.dumps(payload), content_type="application/json")


if __name__ == "__main__":
    serve_forever(lambda port: GeminiDouble(port=port))
