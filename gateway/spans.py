"""What the pipeline tells the tracer (`tracing.py`) about one `Exchange`.

Three calls, each a no-op unless tracing is on: `start_request_span` when a tenant request
arrives (the middleware), `attempt_span` for each upstream attempt (the transport: it returns
the headers that carry our `traceparent` upstream), `finish_request_span` when the request is
journaled (the middleware). The answer's model, usage and finish reasons are read here, from
what the exchange already holds, and only when a span will carry them.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog
from aiohttp import web
from multidict import CIMultiDict

from gateway.exchange import Exchange
from gateway.journal.capture import StreamCapture, assemble_stream
from gateway.tracing import NOOP_TRACE, AttemptTrace, Tracing
from gateway.usage import Usage, usage_in_bytes

log = structlog.get_logger("gateway.tracing")

#: GenAI's `gen_ai.operation.name` for each tenant endpoint (the pipeline's route names).
OPERATIONS = {
    "chat": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
    "responses": "chat",
}
_MAX_TOKEN_FIELDS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
#: Largest JSON answer parsed for its model and finish reasons; SSE tail parts read.
_MAX_PARSED = 1024 * 1024
_TAIL_PARTS = 16


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def start_request_span(tracing: Tracing, request: web.Request, exchange: Exchange) -> None:
    """The server span of a tenant request (under `/v1` or `/tenants/`)."""
    if not tracing.enabled:
        return
    path = request.path
    if not (path.startswith("/v1/") or path.startswith("/tenants/")):
        return
    exchange.trace = tracing.request(
        request.headers,
        method=request.method,
        route=_route(request),
        request_id=exchange.request_id,
    )


def attempt_span(
    exchange: Exchange, url: str, number: int, headers: CIMultiDict[str], body: bytes | None
) -> tuple[AttemptTrace, CIMultiDict[str]]:
    """A client span for one upstream attempt, and the headers to send: our `traceparent`
    replaces whatever the caller sent."""
    trace = exchange.trace
    if trace is NOOP_TRACE:
        return trace.attempt(url=url), headers
    if not trace.requested:
        trace.model_request(
            operation=OPERATIONS.get(exchange.endpoint or "", exchange.endpoint or "chat"),
            model=exchange.model,
            max_tokens=_max_tokens(body),
        )
    span = trace.attempt(url=url, attempt=number)
    sent = headers.copy()
    for name, value in span.headers.items():
        sent[name] = value
    return span, sent


def _max_tokens(body: bytes | None) -> int | None:
    if not body or len(body) > _MAX_PARSED:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    for name in _MAX_TOKEN_FIELDS:
        value = data.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def finish_request_span(exchange: Exchange, status: int) -> None:
    """End the server span with what the answer said; a failure here is logged, never raised
    (the journal hand-off runs right after it)."""
    if exchange.trace is NOOP_TRACE:
        return
    try:
        _finish(exchange, status)
    except Exception:
        log.exception("tracing_finish_failed", request_id=exchange.request_id)


def _finish(exchange: Exchange, status: int) -> None:
    trace = exchange.trace
    client = exchange.client
    identity = exchange.identity
    trace.identify(
        account=client.account if client else None,
        client=client.name if client else None,
        key_id=identity.user.key_id if identity else None,
        provider=client.provider if client else None,
    )
    model, reasons, usage = _answer(exchange)
    ttft = None
    if exchange.stream and exchange.first_byte_at is not None:
        ttft = round((exchange.first_byte_at - exchange.started) * 1000.0, 3)
    error = (exchange.error or {}).get("code") if status >= 500 else None
    trace.finish(
        status=status,
        response_model=model,
        input_tokens=usage.input_tokens if usage else None,
        output_tokens=usage.output_tokens if usage else None,
        finish_reasons=reasons,
        error=str(error) if error else None,
        time_to_first_token_ms=ttft,
    )


def _answer(exchange: Exchange) -> tuple[str | None, list[str], Usage | None]:
    """(the model that answered, the finish reasons, the usage) from the reply the exchange
    holds: a JSON body, or the tail of a captured stream."""
    usage = exchange.usage
    capture = exchange.capture
    if capture is not None:
        tail = StreamCapture(limit=capture.limit, parts=capture.parts[-_TAIL_PARTS:])
        assembled = assemble_stream(tail)
        reasons = [assembled.finish_reason] if assembled.finish_reason else []
        return assembled.model, reasons, usage or assembled.usage
    body = exchange.response_body
    if not body or len(body) > _MAX_PARSED:
        return None, [], usage
    try:
        data: Any = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, [], usage
    if not isinstance(data, dict):
        return None, [], usage
    model = data.get("model") if isinstance(data.get("model"), str) else None
    reasons = [
        str(choice["finish_reason"])
        for choice in data.get("choices") or ()
        if isinstance(choice, dict) and choice.get("finish_reason")
    ]
    return model, reasons, usage or usage_in_bytes(body)
