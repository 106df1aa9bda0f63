"""A real tool API for http plugins, on a loopback port: `/weather` (JSON from the query or
body), `/big` (a body of `big_bytes`), `/slow` (answers after `slow_seconds`)."""

from __future__ import annotations

import asyncio

from aiohttp import web


class PluginServer:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.big_bytes = 10_000
        self.slow_seconds = 2.0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/weather", self.weather)
        app.router.add_get("/big", self.big)
        app.router.add_get("/slow", self.slow)
        return app

    def _record(self, request: web.Request) -> None:
        self.seen.append((request.method, request.path, dict(request.query)))

    async def weather(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        city = request.query.get("city")
        if request.method == "POST":
            city = (await request.json()).get("city")
        return web.json_response({"city": city, "temp_c": 21})

    async def big(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        return web.Response(body=b"x" * self.big_bytes)

    async def slow(self, request: web.Request) -> web.StreamResponse:
        self._record(request)
        await asyncio.sleep(self.slow_seconds)
        return web.json_response({})
