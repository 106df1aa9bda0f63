"""The floor any aiohttp forwarding proxy pays: read the body, POST it upstream, relay the reply.

One pooled ClientSession, no parsing, no logging, no access log; an SSE reply is relayed chunk by
chunk as it arrives. The request path is appended to `--upstream-url`, so `/sse/v1/...` reaches
the upstream's SSE route. It uses uvloop when installed, as the gateway does.
`python -m bench.bare_proxy --port 8001 --upstream-url http://127.0.0.1:8000`; with
`--processes 2` it starts one more process of itself on the same port (`SO_REUSEPORT`, the kernel
spreads the connections), the floor for the gateway's `--workers 2`.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator

from aiohttp import ClientSession, ClientTimeout, web

SESSION = web.AppKey("session", ClientSession)
UPSTREAM_URL = web.AppKey("upstream_url", str)
FORWARDED = ("Authorization", "Content-Type", "Accept")


async def forward(request: web.Request) -> web.StreamResponse:
    body = await request.read()
    headers = {name: request.headers[name] for name in FORWARDED if name in request.headers}
    url = request.app[UPSTREAM_URL] + request.path_qs
    async with request.app[SESSION].post(url, data=body, headers=headers) as upstream:
        content_type = upstream.headers.get("Content-Type", "application/json")
        if not content_type.startswith("text/event-stream"):
            payload = await upstream.read()
            return web.Response(
                status=upstream.status, body=payload, headers={"Content-Type": content_type}
            )
        response = web.StreamResponse(
            status=upstream.status, headers={"Content-Type": content_type}
        )
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def client_session(app: web.Application) -> AsyncIterator[None]:
    async with ClientSession(timeout=ClientTimeout(total=60)) as session:
        app[SESSION] = session
        yield


def create_app(upstream_url: str) -> web.Application:
    app = web.Application()
    app[UPSTREAM_URL] = upstream_url.rstrip("/")
    app.cleanup_ctx.append(client_session)
    app.router.add_route("POST", "/{tail:.*}", forward)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-url", required=True, help="origin, e.g. http://127.0.0.1:8000")
    parser.add_argument("--processes", type=int, default=1, help="processes on the port")
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    address = ["--host", args.host, "--port", str(args.port), "--upstream-url", args.upstream_url]
    others = [
        subprocess.Popen([sys.executable, "-m", "bench.bare_proxy", *address, "--reuse-port"])
        for _ in range(args.processes - 1)
    ]
    try:
        web.run_app(
            create_app(args.upstream_url),
            host=args.host,
            port=args.port,
            access_log=None,
            print=None,
            shutdown_timeout=5.0,
            loop=new_event_loop(),
            reuse_port=args.reuse_port or args.processes > 1,
        )
    finally:
        for process in others:
            process.terminate()
        for process in others:
            process.wait(timeout=10)


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
