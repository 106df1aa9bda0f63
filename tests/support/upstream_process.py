"""The suite's upstream (`upstream_server.py`) as its own process, so a fault test can SIGKILL
it mid-stream: `python -m tests.support.upstream_process PORT`. Model `pause-stream` sends
one chunk and then holds the stream open (nothing in this process ever releases it)."""

from __future__ import annotations

import sys

from aiohttp import web

from tests.support.upstream_server import UpstreamServer

if __name__ == "__main__":
    web.run_app(UpstreamServer().app(), host="127.0.0.1", port=int(sys.argv[1]), print=None)
