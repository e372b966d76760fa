"""A local double of OpenAI's moderation endpoint: `POST /v1/moderations`.

Speaks the real shape (checked against the `openai` client's `ModerationCreateResponse`): a
Bearer key is required (401 `invalid_api_key` without one), the body is `{"model", "input"}`
with `input` a string or a list of strings, and the reply is `{"id", "model", "results": [{
"flagged", "categories", "category_scores", "category_applied_input_types"}]}` with all thirteen
categories. Errors use OpenAI's `{"error": {"message", "type", "code"}}` body.

What it answers is decided by the input text, so one double serves a whole test:

    double = OpenAIModerationDouble()
    base_url = await double.start()           # "http://127.0.0.1:PORT/v1"
    double.when("threaten", flag=("harassment", "violence"))
    double.when("boom", status=500)
    double.when("slow", hang=True)            # never answers (until close)
    double.when("late", delay_s=2.0)          # answers, after 2 s
    ... AsyncOpenAI(base_url=base_url, api_key="sk-test").moderations.create(...)
    double.requests                           # every request body received, in order
    await double.close()
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
IMAGE_CAPABLE = {
    "self-harm",
    "self-harm/intent",
    "self-harm/instructions",
    "sexual",
    "violence",
    "violence/graphic",
}


@dataclass
class Rule:
    contains: str
    flag: tuple[str, ...] = ()
    status: int = 200
    hang: bool = False
    delay_s: float = 0.0


@dataclass
class OpenAIModerationDouble:
    api_key: str = "sk-test-moderation"
    requests: list[dict[str, Any]] = field(default_factory=list)
    rules: list[Rule] = field(default_factory=list)
    _runner: web.AppRunner | None = None
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def when(
        self,
        contains: str,
        *,
        flag: tuple[str, ...] = (),
        status: int = 200,
        hang: bool = False,
        delay_s: float = 0.0,
    ) -> None:
        """Inputs containing `contains` are flagged in `flag`, fail with `status`, hang, or
        are answered after `delay_s`."""
        unknown = set(flag) - set(CATEGORIES)
        if unknown:
            raise ValueError(f"not moderation categories: {sorted(unknown)}")
        self.rules.append(Rule(contains, flag, status, hang, delay_s))

    async def start(self) -> str:
        app = web.Application()
        app.router.add_post("/v1/moderations", self._moderations)
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        return f"http://127.0.0.1:{port}/v1"

    async def close(self) -> None:
        self._released.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def inputs(self) -> list[str]:
        """Every text input received, in order."""
        texts: list[str] = []
        for body in self.requests:
            value = body.get("input")
            texts.extend([value] if isinstance(value, str) else list(value or []))
        return texts

    async def _moderations(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return _error(
                401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key"
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(
                400,
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
            )
        self.requests.append(body)
        value = body.get("input")
        texts = [value] if isinstance(value, str) else value
        if not isinstance(texts, list) or not all(isinstance(text, str) for text in texts):
            return _error(400, "Invalid type for 'input'.", "invalid_request_error", None)
        model = body.get("model", "omni-moderation-latest")
        results = []
        for text in texts:
            rule = next((rule for rule in self.rules if rule.contains in text), Rule(""))
            if rule.hang:
                await self._released.wait()
                return _error(503, "The server is shutting down.", "server_error", None)
            if rule.delay_s:
                await asyncio.sleep(rule.delay_s)  # a slow endpoint is the point
            if rule.status != 200:
                return _error(
                    rule.status,
                    "The server had an error while processing your request. Sorry about that!",
                    "server_error",
                    None,
                )
            results.append(_result(rule.flag))
        return web.json_response(
            {"id": f"modr-{secrets.token_hex(12)}", "model": model, "results": results}
        )


def _result(flagged: tuple[str, ...]) -> dict[str, Any]:
    return {
        "flagged": bool(flagged),
        "categories": {name: name in flagged for name in CATEGORIES},
        "category_scores": {name: 0.97 if name in flagged else 0.0004 for name in CATEGORIES},
        "category_applied_input_types": {
            name: ["text", "image"] if name in IMAGE_CAPABLE else ["text"] for name in CATEGORIES
        },
    }


def _error(status: int, message: str, kind: str, code: str | None) -> web.Response:
    return web.json_response(
        {"error": {"message": message, "type": kind, "param": None, "code": code}}, status=status
    )
