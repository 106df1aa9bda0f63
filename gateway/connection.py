"""The HTTP connection layer under the app: header and keep-alive timeouts, parser errors.

aiohttp's `RequestHandler` (one per connection) parses requests before any middleware runs, so
three things are decided here, not in `middlewares.py`:

- `header_timeout`: a connection that has not sent complete request headers within it is
  closed (slowloris). It runs from the connection's start and from the end of each response
  until the next request's headers are complete. `keepalive_timeout` closes a connection idle
  between requests; aiohttp does that one itself.
- Errors raised by aiohttp's parser (a bad request line, a NUL or a bare CR in a header, a line
  over 8 KB, Content-Length with Transfer-Encoding, bad chunking, an unsupported
  Content-Encoding) are answered 400 in OpenAI's shape with a fixed message per kind of error,
  never the offending line (it may hold an `Authorization` header), logged without it, and
  journaled (on the tenant port): status 400, outcome `bad_request`, no host, method or path,
  since the parser did not produce them. The admin port runs behind the same layer. What the
  gateway cannot see: a connection closed or timed out before it sent a whole request line is
  not journaled (there is no request to journal), and an error in a request body after its
  headers reaches the view as a read error (`validation.py`).

`GatewayRunner` is `web.AppRunner` with this handler (the suite's `GatewayTestServer` uses it
too). It reaches into aiohttp's `Server` and `RequestHandler` internals (`_loop`, `_kwargs`,
`_waiter`, `_messages`, `_request_count`), checked by tests/test_connection.py.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog
from aiohttp import web, web_protocol, web_server
from aiohttp.http_exceptions import (
    BadHttpMessage,
    BadStatusLine,
    ContentEncodingError,
    ContentLengthError,
    InvalidHeader,
    LineTooLong,
    TransferEncodingError,
)
from aiohttp.web_runner import BaseRunner

from gateway import appkeys
from gateway.errors import InvalidRequestError
from gateway.journal.record import RecordDraft
from gateway.middlewares import new_request_id

log = structlog.get_logger("gateway.connection")

#: Parser error kind to (code, message): fixed texts, never the bytes the client sent.
_PARSER_ERRORS: tuple[tuple[type[BaseException], str, str], ...] = (
    (LineTooLong, "line_too_long", "a request line or header is longer than the server allows"),
    (InvalidHeader, "invalid_header", "a request header is malformed"),
    (BadStatusLine, "invalid_request_line", "the request line is not a valid HTTP request line"),
    (
        ContentEncodingError,
        "unsupported_content_encoding",
        "the request's Content-Encoding is not supported: send the body as is, gzip or deflate",
    ),
    (
        ContentLengthError,
        "invalid_content_length",
        "the request's Content-Length is invalid or does not match the body",
    ),
    (
        TransferEncodingError,
        "invalid_transfer_encoding",
        "the request's Transfer-Encoding or chunked body is invalid",
    ),
)


def parser_error(exc: BaseException | None, status: int) -> InvalidRequestError:
    """The OpenAI-shaped error for what aiohttp's parser refused (no client bytes in it)."""
    found = next((c for c in _PARSER_ERRORS if isinstance(exc, c[0])), None)
    if found is not None:
        code, message = found[1], found[2]
    elif isinstance(exc, BadHttpMessage):
        code, message = "invalid_http_request", "the request is not valid HTTP/1.1"
    else:
        code, message = "http_error", "the request could not be handled"
    error = InvalidRequestError(message, code=code)
    error.status = status if 400 <= status < 500 else 400
    return error


class GatewayRequestHandler(web_protocol.RequestHandler):
    """aiohttp's connection handler with a header timeout and OpenAI-shaped parser errors."""

    def __init__(
        self, manager: web_server.Server, *, app: web.Application, header_timeout: float, **kw: Any
    ) -> None:
        super().__init__(manager, **kw)
        self._app = app
        self._header_timeout = header_timeout
        self._header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._arm_header_deadline()

    def data_received(self, data: bytes) -> None:
        before = self._request_count
        super().data_received(data)
        if self._request_count != before:  # a request's headers are complete
            self._disarm_header_deadline()
        elif self._waiter is not None and self._header_deadline is None:
            self._arm_header_deadline()  # the start of the next request on a kept-alive one

    def connection_lost(self, exc: BaseException | None) -> None:
        self._disarm_header_deadline()
        super().connection_lost(exc)

    def _arm_header_deadline(self) -> None:
        if self._header_timeout > 0:
            self._header_deadline = self._loop.call_later(
                self._header_timeout, self._headers_too_slow
            )

    def _disarm_header_deadline(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if self._waiter is not None and not self._messages:
            log.info("connection_closed", reason="request headers not complete in time")
            self.force_close()
            if self.transport is not None:
                self.transport.close()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        """aiohttp's messages quote the client's bytes: log the kind of error only."""
        exc = kw.get("exc_info")
        log.warning("http_request_rejected", kind=type(exc).__name__ if exc else None)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        self.log_exception(exc_info=exc)
        if request.writer.output_size > 0:
            raise ConnectionError("the response was already started")
        error = parser_error(exc, status)
        request_id = new_request_id()
        journal_parser_error(self._app, request_id, error)
        response = web.Response(
            status=error.status,
            body=error.to_bytes(),
            content_type="application/json",
            headers={"x-request-id": request_id},
        )
        response.force_close()
        return response


def journal_parser_error(app: web.Application, request_id: str, error: InvalidRequestError) -> None:
    """A record for a request aiohttp refused: what the gateway knows is the error."""
    journal = app.get(appkeys.JOURNAL)
    if journal is None:
        return
    body = error.to_bytes()
    journal.submit(
        RecordDraft(
            request_id=request_id,
            client_request_id=None,
            started_wall=time.time(),
            host="",
            addressing="host",
            api="openai",
            account=None,
            client=None,
            key_id=None,
            method="-",
            path="-",
            status=error.status,
            outcome="bad_request",
            total_ms=0.0,
            upstream_ms=None,
            ttfb_ms=None,
            model=None,
            error=error.to_body()["error"],
            request_headers=(),
            request_body=None,
            response_headers=(("content-type", "application/json"),),
            response_body=body,
            capture=None,
            usage_hidden=False,
            usage=None,
            size=len(body),
            attempts=[],
            hops=[],
        )
    )


class GatewayServer(web_server.Server):
    def __init__(self, *args: Any, app: web.Application, header_timeout: float, **kw: Any):
        super().__init__(*args, **kw)
        self._app = app
        self._header_timeout = header_timeout

    def __call__(self) -> web_protocol.RequestHandler:
        return GatewayRequestHandler(
            self,
            app=self._app,
            header_timeout=self._header_timeout,
            loop=self._loop,
            **self._kwargs,
        )


async def make_gateway_server(runner: BaseRunner, app: web.Application, **kw: Any) -> GatewayServer:
    """What `AppRunner._make_server` does, with the gateway's server."""
    loop = asyncio.get_running_loop()
    app._set_loop(loop)
    app.on_startup.freeze()
    await app.startup()
    app.freeze()
    settings = app[appkeys.SETTINGS]
    kw.setdefault("keepalive_timeout", settings.keepalive_timeout)
    kw["debug"] = False
    return GatewayServer(
        app._handle,
        request_factory=app._make_request,
        loop=loop,
        app=app,
        header_timeout=settings.header_timeout,
        **kw,
    )


class GatewayRunner(web.AppRunner):
    """`web.AppRunner` with the gateway's connection handler."""

    async def _make_server(self) -> web_server.Server:
        return await make_gateway_server(self, self.app, **self._kwargs)
