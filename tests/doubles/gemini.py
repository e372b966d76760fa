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

Every request is kept in `requests` (path, headers, body) for assertions. `fail_status` makes
every call fail with that HTTP status and a Google-style error body.
"""

from __future__ import annotations

import base64
import io
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image, ImageDraw


@dataclass
class RecordedRequest:
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


@dataclass
class GeminiDouble:
    api_key: str = "test-gemini-key"
    text_reply: str | Callable[[str], str] = (
        '{"topic": "Space", "query": "space", "confidence": 0.9}'
    )
    search_results: list[dict[str, str]] = field(default_factory=list)
    search_text: str = "Here is what I found."
    image_size: tuple[int, int] = (1344, 768)
    fail_status: int | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> GeminiDouble:
        app = web.Application()
        app.router.add_post("/{version}/models/{model_action}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        model, _, action = request.match_info["model_action"].partition(":")
        if action != "generateContent" or request.match_info["version"] not in ("v1", "v1beta"):
            return _error(404, "NOT_FOUND", f"unknown method {request.path}")
        body = await request.json()
        key = request.headers.get("x-goog-api-key", "")
        self.requests.append(RecordedRequest(request.path, model, key, body))
        if key != self.api_key:
            return _error(
                400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
            )
        if self.fail_status is not None:
            return _error(self.fail_status, "INTERNAL", "the double was told to fail")
        config = body.get("generationConfig", {})
        modalities = [m.upper() for m in config.get("responseModalities", [])]
        tools = body.get("tools", [])
        if "IMAGE" in modalities:
            return _json(
                _candidate([{"inlineData": {"mimeType": "image/png", "data": self._png()}}])
            )
        if any("googleSearch" in tool for tool in tools):
            candidate = _candidate([{"text": self.search_text}])
            candidate["candidates"][0]["groundingMetadata"] = {
                "webSearchQueries": [self.requests[-1].prompt[:100]],
                "groundingChunks": [{"web": result} for result in self.search_results],
            }
            return _json(candidate)
        prompt = self.requests[-1].prompt
        reply = self.text_reply(prompt) if callable(self.text_reply) else self.text_reply
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
