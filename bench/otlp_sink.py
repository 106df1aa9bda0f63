"""An OTLP/HTTP trace sink for the `gateway-tracing` target: takes every `POST /v1/traces` and
answers an empty `ExportTraceServiceResponse` (200, no bytes), as a healthy collector does. It
does not decode the spans: the bench measures what exporting costs the gateway, not a collector.
`python -m bench.otlp_sink --port 4318`
"""

from __future__ import annotations

import argparse

from aiohttp import web

RECEIVED = web.AppKey("received", list[int])


async def traces(request: web.Request) -> web.StreamResponse:
    request.app[RECEIVED][0] += len(await request.read())
    return web.Response(body=b"", content_type="application/x-protobuf")


def create_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[RECEIVED] = [0]
    app.router.add_post("/v1/traces", traces)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
