"""`UpstreamReply`: the final answer of an upstream, still open.

The transport returns it once retries and fallbacks are done; the relay reads it (as one body or
chunk by chunk) and closes it. Every read maps client-library errors (`upstream_errors`), so a
stream that breaks mid-way raises `UpstreamError` from `chunks()`, never `aiohttp.ClientError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy

from gateway.errors import UpstreamError
from gateway.upstream.errors import UPSTREAM_FAILURES, map_upstream_error, upstream_errors


class UpstreamReply:
    __slots__ = ("_on_close", "_response", "label", "secrets")

    def __init__(
        self,
        response: aiohttp.ClientResponse,
        label: str,
        on_close: Callable[[], None] | None = None,
        secrets: tuple[str, ...] = (),
    ) -> None:
        self._response = response
        self.label = label
        #: The credentials that were sent for this reply (scrubbed from an error it relays).
        self.secrets = secrets
        #: Called once, when the reply is closed or released (the request is no longer in
        #: flight at its deployment).
        self._on_close = on_close

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    @property
    def content_type(self) -> str:
        return self._response.content_type

    @property
    def is_event_stream(self) -> bool:
        return self._response.content_type == "text/event-stream"

    async def read(self) -> bytes:
        with upstream_errors():
            return await self._response.read()

    async def json_object(self) -> dict[str, Any]:
        """The body as a JSON object, or 502 when it is not one."""
        body = await self.read()
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(
                "the upstream provider sent a body that is not JSON",
                code="upstream_bad_response",
            ) from exc
        if not isinstance(value, dict):
            raise UpstreamError(
                "the upstream provider sent a body that is not a JSON object",
                code="upstream_bad_response",
            )
        return value

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (no context manager per chunk: this is hot)."""
        iterator = self._response.content.iter_any().__aiter__()
        while True:
            try:
                data = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except UPSTREAM_FAILURES as exc:
                raise map_upstream_error(exc) from exc
            yield data

    def _done(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def close(self) -> None:
        self._response.close()
        self._done()

    def release(self) -> None:
        self._response.release()
        self._done()
