"""Typed request state: who is calling (`Identity`) and what happened (`Exchange`).

`Identity` is made once, by the pipeline's identify stage, and never changes: the client record,
the caller's user profile and the provider that serves the client; code that holds one never
checks for None. `Exchange` is the request's recorder: the pipeline, the upstream transport and
the relay tell it what happened through its methods (`upstream_started`, `first_byte`,
`body_rewritten`, ...), and the journal record is built from it. It lives at
`request[EXCHANGE]` from the first middleware on; handlers never need it.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Literal

import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.journal.capture import StreamCapture
from gateway.protocols import Provider
from gateway.store.records import ClientRecord
from gateway.usage import Usage

#: How the tenant was named: by the Host header, or by a `/tenants/{client}.{account}` path.
Addressing = Literal["host", "path"]
#: The API a route speaks: its errors are rendered in that API's shape.
ApiFormat = Literal["openai", "anthropic"]


@dataclasses.dataclass(frozen=True, slots=True)
class Identity:
    """The tenant and caller of one request, once both are known."""

    client: ClientRecord
    user: UserProfile
    provider: Provider
    addressing: Addressing


class Attempt:
    """One upstream attempt, as the journal's `attempts` shows it."""

    __slots__ = ("_started", "entry")

    def __init__(self, entry: dict[str, Any]) -> None:
        self.entry = entry
        self._started = time.perf_counter()

    def answered(self, status: int) -> None:
        self.entry["status"] = status
        self._stop()

    def failed(self, code: str) -> None:
        self.entry["error"] = code
        self._stop()

    def retry_in(self, seconds: float) -> None:
        self.entry["retry_in_ms"] = round(seconds * 1000.0, 3)

    def mark(self, flag: str) -> None:
        """Routing facts: `ejected` (this attempt ejected its deployment), `all_ejected` (made
        because every deployment was ejected)."""
        self.entry[flag] = True

    def _stop(self) -> None:
        self.entry["ms"] = round((time.perf_counter() - self._started) * 1000.0, 3)


class Exchange:
    """What happened to one request, recorded as it happens."""

    __slots__ = (
        "_forward_data",
        "_hop",
        "addressing",
        "api",
        "attempts",
        "capture",
        "client",
        "client_request_id",
        "endpoint",
        "error",
        "extra_headers",
        "first_byte_at",
        "forward_body",
        "hops",
        "identity",
        "model",
        "outcome",
        "raw_body",
        "request_id",
        "response_body",
        "sent_status",
        "started",
        "started_wall",
        "stream",
        "upstream_finished_at",
        "upstream_started_at",
        "usage",
        "usage_hidden",
    )

    def __init__(self, request_id: str, client_request_id: str | None = None) -> None:
        self.request_id = request_id
        self.client_request_id = client_request_id
        self.started = time.perf_counter()
        self.started_wall = time.time()
        self.api: ApiFormat = "openai"
        self.endpoint: str | None = None
        #: The tenant once the Host (or path) resolved, and the whole identity once the key
        #: checked out: the journal needs the first even when authentication then fails.
        self.client: ClientRecord | None = None
        self.addressing: Addressing = "host"
        self.identity: Identity | None = None
        #: The body exactly as received, and what goes upstream (the same bytes unless a policy
        #: or the gateway rewrote it).
        self.raw_body: bytes | None = None
        self.forward_body: bytes | None = None
        self._forward_data: dict[str, Any] | None = None
        self.model: str | None = None
        self.stream = False
        self.upstream_started_at: float | None = None
        self.upstream_finished_at: float | None = None
        self.first_byte_at: float | None = None
        #: The status line sent to the client, once the response has started.
        self.sent_status: int | None = None
        self.outcome: str | None = None
        self.error: dict[str, Any] | None = None
        self.capture: StreamCapture | None = None
        #: True when the gateway asked the upstream for a stream's usage the caller did not.
        self.usage_hidden = False
        self.response_body: bytes | None = None
        self.usage: Usage | None = None
        self.attempts: list[dict[str, Any]] = []
        self.hops: list[dict[str, Any]] = []
        self._hop: int | None = None
        self.extra_headers: dict[str, str] = {}

    # -- the request --------------------------------------------------------------------------
    def tenant_resolved(self, client: ClientRecord, addressing: Addressing) -> None:
        self.client = client
        self.addressing = addressing

    def identified(self, identity: Identity) -> None:
        self.identity = identity

    def usage_requested(self) -> None:
        """The gateway asked the upstream for a stream's usage: the caller must not see it."""
        self.usage_hidden = True

    def body_received(self, raw: bytes) -> None:
        self.raw_body = raw
        self.forward_body = raw

    def body_parsed(self, data: dict[str, Any], model: str | None, stream: bool) -> None:
        self._forward_data = data
        self.model = model
        self.stream = stream

    def body_rewritten(self, data: dict[str, Any]) -> None:
        """A policy (or the gateway) changed the body: `data` goes upstream, re-serialized."""
        self._forward_data = data
        self.forward_body = None

    def upstream_body(self, data: dict[str, Any]) -> bytes:
        """The bytes to send upstream for `data`: the caller's own bytes when `data` is the body
        as the pipeline handed it over and nothing rewrote it, else `data` serialized."""
        if data is self._forward_data and self.forward_body is not None:
            return self.forward_body
        return orjson.dumps(data)

    # -- the upstream -------------------------------------------------------------------------
    def attempt(self, upstream: str, number: int) -> Attempt:
        entry: dict[str, Any] = {"upstream": upstream, "attempt": number}
        if self._hop is not None:
            entry["hop"] = self._hop
        self.attempts.append(entry)
        return Attempt(entry)

    def hop(self, number: int, request: dict[str, Any]) -> dict[str, Any]:
        """Managed mode: a model call starts; later attempts belong to it."""
        self._hop = number
        record: dict[str, Any] = {"hop": number, "request": request}
        self.hops.append(record)
        return record

    def upstream_started(self) -> None:
        if self.upstream_started_at is None:
            self.upstream_started_at = time.perf_counter()

    def upstream_finished(self) -> None:
        self.upstream_finished_at = time.perf_counter()

    # -- the response -------------------------------------------------------------------------
    def response_started(self, status: int) -> None:
        self.sent_status = status

    def first_byte(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()

    def stream_started(self, capture: StreamCapture) -> None:
        self.stream = True
        self.capture = capture

    def body_sent(self, body: bytes | None) -> None:
        self.response_body = body

    def add_headers(self, headers: dict[str, str]) -> None:
        self.extra_headers.update(headers)

    def ended(self, outcome: str, error: dict[str, Any] | None = None) -> None:
        """How the request ended, when it is not what the status says (set once)."""
        if self.outcome is None:
            self.outcome = outcome
        if error is not None and self.error is None:
            self.error = error

    def metered(self, usage: Usage | None) -> None:
        self.usage = usage

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000.0


EXCHANGE = web.RequestKey("exchange", Exchange)


def exchange_of(request: web.Request) -> Exchange:
    return request[EXCHANGE]
