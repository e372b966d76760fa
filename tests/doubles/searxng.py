"""A local double of a SearXNG instance's JSON search API (`GET /search?q=&format=json`).

Answers like SearXNG does: `{"query", "number_of_results", "results": [{url, title, content,
engine, ...}]}`; `format` other than json is 403 (SearXNG's answer when JSON is not enabled).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class SearxngDouble:
    results: list[dict[str, Any]] = field(default_factory=list)
    json_enabled: bool = True
    queries: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> SearxngDouble:
        app = web.Application()
        app.router.add_get("/search", self._search)
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

    async def _search(self, request: web.Request) -> web.Response:
        self.queries.append(dict(request.query))
        if request.query.get("format") != "json" or not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden")
        body = {
            "query": request.query.get("q", ""),
            "number_of_results": len(self.results),
            "results": [{"engine": "double", "score": 1.0, **r} for r in self.results],
            "answers": [],
            "suggestions": [],
        }
        return web.Response(text=json.dumps(body), content_type="application/json")
