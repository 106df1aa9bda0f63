"""Journal records: a cheap draft on the request path, the full record off it (docs/journal.md).

`build_record` runs in the request middleware and only takes references (headers, body bytes,
the stream capture) and a few numbers. `finalize` runs in the journal writer's task: it decodes
and cuts bodies, redacts, assembles streams and reads usage, and returns the record as published
(schema version `SCHEMA_VERSION`, described by `docs/journal.schema.json`).
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable
from typing import Any

import orjson
from aiohttp import web

from gateway.costs import NO_OVERRIDES, PriceOverrides, TokenCounts, compute_cost
from gateway.exchange import Exchange
from gateway.journal.capture import StreamCapture, assemble_stream
from gateway.journal.redact import UNAUTHENTICATED_HEADER_BYTES, RedactionPolicy, cap_headers
from gateway.usage import Usage, parse_usage, usage_in_bytes

SCHEMA_VERSION = 2

#: The `outcome` vocabulary (documented in docs/journal.md and the schema's enum).
OUTCOMES = (
    "ok",
    "bad_request",
    "auth_failed",
    "not_found",
    "rate_limited",
    "upstream_error",
    "upstream_timeout",
    "unavailable",
    "client_disconnected",
    "internal_error",
)


@dataclasses.dataclass(frozen=True, slots=True)
class RecordDraft:
    """Everything a record needs, gathered without copying or parsing."""

    request_id: str
    client_request_id: str | None
    started_wall: float
    host: str
    addressing: str
    api: str
    account: str | None
    client: str | None
    key_id: str | None
    #: The client's provider (`openai`, `azure`, `echo`, ...), None when the Host did not resolve.
    provider: str | None
    method: str
    path: str
    status: int
    outcome: str
    total_ms: float
    upstream_ms: float | None
    ttfb_ms: float | None
    model: str | None
    error: dict[str, Any] | None
    request_headers: Iterable[tuple[str, str]]
    request_body: bytes | None
    response_headers: Iterable[tuple[str, str]]
    response_body: bytes | None
    capture: StreamCapture | None
    usage_hidden: bool
    #: Usage the limits stage already read (None: read it from the bodies, off the request path).
    usage: Usage | None
    #: Bytes of bodies this draft holds (what the writer's queue bound counts).
    size: int
    #: Upstream attempts (retries, fallbacks) and managed-mode hops, as the code path built them.
    attempts: list[dict[str, Any]]
    hops: list[dict[str, Any]]
    #: The operator's price overrides that apply (with `provider`, what prices the record).
    prices: PriceOverrides | None = None
    end_user: str | None = None
    #: The API of the request sent upstream (the provider's), None when none was sent.
    upstream_api: str | None = None


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000.0, 3)


def build_record(
    request: web.Request,
    exchange: Exchange,
    status: int,
    finished: float,
    response: web.StreamResponse | None = None,
) -> RecordDraft:
    client = exchange.client
    identity = exchange.identity
    body = exchange.raw_body
    response_body = exchange.response_body
    if response_body is None and isinstance(response, web.Response):
        response_body = response.body if isinstance(response.body, bytes) else None
    started, upstream_end = exchange.upstream_started_at, exchange.upstream_finished_at
    if started is not None and upstream_end is None:
        upstream_end = finished
    capture = exchange.capture
    return RecordDraft(
        request_id=exchange.request_id,
        client_request_id=exchange.client_request_id,
        started_wall=exchange.started_wall,
        host=request.host[:255],
        addressing=exchange.addressing,
        api=exchange.api,
        upstream_api=identity.provider.api if identity and exchange.attempts else None,
        account=client.account if client else None,
        client=client.name if client else None,
        key_id=identity.user.key_id if identity else None,
        provider=client.provider if client else None,
        method=request.method,
        path=request.path[:1024],
        status=status,
        outcome=exchange.outcome or "ok",
        total_ms=round((finished - exchange.started) * 1000.0, 3),
        upstream_ms=_ms(started, upstream_end),
        ttfb_ms=_ms(exchange.started, exchange.first_byte_at),
        model=exchange.model,
        error=exchange.error,
        request_headers=request.headers.items(),
        request_body=body or None,
        response_headers=response.headers.items() if response is not None else (),
        response_body=response_body,
        capture=capture,
        usage_hidden=exchange.usage_hidden,
        usage=exchange.usage,
        size=len(body or b"") + len(response_body or b"") + (capture.size if capture else 0),
        attempts=exchange.attempts,
        hops=exchange.hops,
        prices=exchange.price_overrides,
        end_user=exchange.end_user,
    )


def _iso_time(epoch: float) -> str:
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


#: The last second `iso_time` formatted, and its text up to the seconds (one per second).
_second: list[Any] = [None, ""]


def iso_time(epoch: float) -> str:
    """RFC 3339 UTC with microseconds, rounded as `datetime.fromtimestamp` rounds (half to
    even); the date and time of day are formatted once per second."""
    if not 0 <= epoch < 253402300799:  # before 1970 or past 9999: the general path
        return _iso_time(epoch)
    second = int(epoch)
    micros = round((epoch - second) * 1e6)
    if micros >= 1_000_000:
        second, micros = second + 1, micros - 1_000_000
    if second != _second[0]:
        _second[0], _second[1] = second, _iso_time(second)[:19]
    return f"{_second[1]}.{micros:06d}Z"


def body_of(raw: bytes | None, limit: int, policy: RedactionPolicy) -> dict[str, Any]:
    """A body as the record shows it: JSON when it is complete JSON, else (cut) text."""
    if not raw:
        return {"format": "none", "content": None, "bytes": 0, "truncated": False}
    truncated = len(raw) > limit
    if not truncated:
        try:
            return {
                "format": "json",
                "content": policy.json_body(orjson.loads(raw)),
                "bytes": len(raw),
                "truncated": False,
            }
        except orjson.JSONDecodeError:
            pass
    text = raw[:limit].decode("utf-8", "replace")
    return {
        "format": "text",
        "content": policy.text_body(text),
        "bytes": len(raw),
        "truncated": truncated,
    }


def _usage_record(usage: Usage | None) -> dict[str, int] | None:
    return usage.to_record() if usage is not None else None


def _money(draft: RecordDraft, usage: Usage | None, answered: str | None) -> dict[str, Any]:
    """`end_user`, and for a record with usage its `cost` (null when no price is known, with
    `price_unknown`): docs/costs.md."""
    fields: dict[str, Any] = {"end_user": draft.end_user}
    if usage is not None:
        cost = compute_cost(
            TokenCounts(usage.input_tokens, usage.cached_input_tokens or 0, usage.output_tokens),
            provider=draft.provider,
            models=(answered, draft.model),
            overrides=draft.prices or NO_OVERRIDES,
        )
        fields["cost"] = None if cost is None else cost.to_dict()
        fields["price_unknown"] = cost is None
    return fields


def _identity(draft: RecordDraft) -> dict[str, Any]:
    """The fields every record and summary starts with: who, what, how it ended, how long."""
    return {
        "v": SCHEMA_VERSION,
        "request_id": draft.request_id,
        "client_request_id": draft.client_request_id,
        "account": draft.account,
        "client": draft.client,
        "key_id": draft.key_id,
        "provider": draft.provider,
        "method": draft.method,
        "path": draft.path,
        "status": draft.status,
        "outcome": draft.outcome,
        "latency_ms": {
            "total": draft.total_ms,
            "upstream": draft.upstream_ms,
            "ttfb": draft.ttfb_ms,
        },
    }


def summarize(draft: RecordDraft) -> dict[str, Any]:
    """What the record observers (metrics, usage) read, without the bodies: used when the
    journal is not persisted, so that nothing decodes or redacts bodies nobody will read."""
    usage = draft.usage
    if usage is None:
        blob = draft.response_body
        if draft.capture is not None and draft.capture.parts and not draft.capture.truncated:
            blob = b"".join(draft.capture.parts[-8:])  # the usage chunk is at the end
        usage = usage_in_bytes(blob) if blob else None
    return {
        **_identity(draft),
        "model": {"requested": draft.model, "answered": None},
        "usage": _usage_record(usage),
        **_money(draft, usage, None),
    }


def finalize(draft: RecordDraft, policy: RedactionPolicy, limit: int) -> dict[str, Any]:
    """The published record (see docs/journal.md for every field)."""
    response_body = body_of(draft.response_body, limit, policy)
    usage = draft.usage
    answered = None
    stream = None
    if draft.capture is not None:
        assembled = assemble_stream(draft.capture, draft.usage_hidden)
        usage = usage or assembled.usage
        answered = assembled.model
        stream = {
            "text": policy.text_body(assembled.text),
            "tool_calls": policy.json_body(assembled.tool_calls),
            "chunks": assembled.chunks,
            "finish_reason": assembled.finish_reason,
            "usage_requested_by_gateway": draft.usage_hidden,
        }
        response_body = {
            "format": "sse",
            "content": None,
            "bytes": draft.capture.size,
            "truncated": draft.capture.truncated,
        }
    elif response_body["format"] == "json" and isinstance(response_body["content"], dict):
        usage = usage or parse_usage(response_body["content"].get("usage"))
        model = response_body["content"].get("model")
        answered = model if isinstance(model, str) else None
    return {
        **_identity(draft),
        "time": iso_time(draft.started_wall),
        "host": draft.host,
        "addressing": draft.addressing,
        "api": draft.api,
        "upstream_api": draft.upstream_api,
        "model": {"requested": draft.model, "answered": answered},
        "usage": _usage_record(usage),
        **_money(draft, usage, answered),
        "stream": stream,
        "request": {
            **request_headers(draft, policy),
            "body": body_of(draft.request_body, limit, policy),
        },
        "response": {
            "headers": policy.headers_of(draft.response_headers),
            "body": response_body,
        },
        "error": draft.error,
        "attempts": draft.attempts,
        "hops": draft.hops,
    }


def request_headers(draft: RecordDraft, policy: RedactionPolicy) -> dict[str, Any]:
    """`headers` of the record's request; for a request that never authenticated, at most
    `UNAUTHENTICATED_HEADER_BYTES` of them, with `headers_truncated` when cut."""
    headers = policy.headers_of(draft.request_headers)
    if draft.key_id is not None:
        return {"headers": headers}
    kept, cut = cap_headers(headers, UNAUTHENTICATED_HEADER_BYTES)
    return {"headers": kept, "headers_truncated": True} if cut else {"headers": kept}
