"""A local double of a SearXNG instance's JSON search API (`GET /search?q=&format=json`).

Answers like SearXNG does: `{"query", "number_of_results", "results": [{url, title, content,
engine, ...}]}`; `format` other than json, or `json_enabled = False`, is 403 (SearXNG's answer
when JSON is not among its `search.formats`). Faults: `HTTP_500`, `HANG`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiohttp import web

from tests.doubles.base import DoubleServer, Fault, serve_forever


class SearxngDouble(DoubleServer):
    supported_faults: ClassVar[frozenset[Fault]] = frozenset({Fault.HTTP_500, Fault.HANG})
    name: ClassVar[str] = "searxng-double"

    def __init__(
        self,
        *,
        results: list[dict[str, Any]] | None = None,
        json_enabled: bool = True,
        port: int = 0,
        fault: Fault | None = None,
    ) -> None:
        super().__init__(port=port, fault=fault)
        self.results = results or []
        self.json_enabled = json_enabled

    def routes(self) -> list[web.RouteDef]:
        return [web.get("/search", self._search)]

    @property
    def queries(self) -> list[dict[str, str]]:
        return [request.query for request in self.requests_to("/search")]

    async def _search(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        if recorded.fault is Fault.HANG:
            await self.hang()
        if recorded.fault is not None:
            return web.Response(status=500, text="500 Internal Server Error")
        if request.query.get("format") != "json" or not self.json_enabled:
            return web.Response(status=403, text="403 Forbidden")
        body = {
            "query": request.query.get("q", ""),
            "number_of_results": len(self.results),
            "results": [{"engine": "double", "score": 1.0, **r} for r in self.results],
            "answers": [],
            "suggestions": [],
        }
        return web.json_response(body)


if __name__ == "__main__":
    serve_forever(lambda port: SearxngDouble(port=port))
