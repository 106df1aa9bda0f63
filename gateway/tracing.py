"""OpenTelemetry traces: a server span per tenant request, a client span per upstream attempt
and per tool-plugin call, exported over OTLP/HTTP protobuf (see docs/observability.md).

On only when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set (and
`OTEL_SDK_DISABLED` is not true); the SDK reads the other standard `OTEL_*` variables itself
(service name and resource, headers, timeout, compression, sampler, batch sizes). Off, every call
returns the one shared no-op object: no SDK object is made per request.

The pipeline calls a small API: `Tracing.request()` opens the server span (continuing a caller's
`traceparent`/`tracestate`), `RequestTrace.attempt()` a client span whose `headers` carry our
`traceparent` upstream, `first_token()`, `finish()` with usage and finish reasons. Attributes
follow OpenTelemetry's GenAI conventions (`gen_ai.*`) and HTTP conventions; they never hold a
secret or message text (URLs are sent without their query).

Exporting runs on the SDK's batch thread, so a collector that is down or slow never slows a
request: spans that its queue cannot hold, or that an export fails to deliver, are counted
(`gateway_otel_spans_dropped_total`).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, set_span_in_context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from yarl import URL

from gateway import __version__

ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
SERVICE_NAME = "tenant-gateway"
_PROPAGATOR = TraceContextTextMapPropagator()
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


def tracing_enabled(environ: Mapping[str, str]) -> bool:
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return any(environ.get(name, "").strip() for name in ENDPOINT_VARIABLES)


class DroppedSpans:
    """How many finished spans never reached the collector (thread-safe: the SDK's batch thread
    and the event loop both count)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.value += count


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting the spans of every export that failed."""

    def __init__(self, inner: SpanExporter, dropped: DroppedSpans) -> None:
        self.inner = inner
        self.dropped = dropped

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.dropped.add(len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingBatchProcessor(BatchSpanProcessor):
    """The SDK's batch processor; a span ended while its queue is full pushes one out: count it."""

    def __init__(self, exporter: SpanExporter, dropped: DroppedSpans) -> None:
        super().__init__(exporter)
        self.dropped = dropped

    def on_end(self, span: ReadableSpan) -> None:
        batch = getattr(self, "_batch_processor", None)
        queue = getattr(batch, "_queue", None)
        if queue is not None and queue.maxlen is not None and len(queue) >= queue.maxlen:
            self.dropped.add(1)
        super().on_end(span)


class AttemptTrace:
    """A client span: one upstream attempt or one tool-plugin call."""

    __slots__ = ("headers", "span")

    def __init__(self, span: Span | None) -> None:
        self.span = span
        #: Headers to send with the call: our `traceparent` (and the caller's `tracestate`).
        self.headers: Mapping[str, str] = _NO_HEADERS
        if span is not None:
            carrier: dict[str, str] = {}
            _PROPAGATOR.inject(carrier, context=set_span_in_context(span))
            self.headers = carrier

    def response(self, status: int) -> None:
        if self.span is not None:
            self.span.set_attribute("http.response.status_code", status)
            if status >= 400:
                self.span.set_attribute("error.type", str(status))
                self.span.set_status(Status(StatusCode.ERROR))

    def end(self, error: str | None = None) -> None:
        """End the span; `error` names what went wrong (an exception class, a timeout)."""
        span = self.span
        if span is None or not span.is_recording():
            return
        if error is not None:
            span.set_attribute("error.type", error)
            span.set_status(Status(StatusCode.ERROR))
        span.end()


NOOP_ATTEMPT = AttemptTrace(None)


class RequestTrace:
    """The server span of one tenant request, and its client spans. The no-op instance
    (`NOOP_TRACE`, span None) does nothing at all."""

    __slots__ = (
        "_attempts",
        "_first_token_at",
        "_gen_ai",
        "_started",
        "requested",
        "span",
        "tracer",
    )

    def __init__(self, tracer: Tracer | None, span: Span | None) -> None:
        self.tracer = tracer
        self.span = span
        self._started = time.monotonic()
        self._first_token_at: float | None = None
        self._attempts: list[AttemptTrace] = []
        self._gen_ai: dict[str, Any] = {}
        #: True once `model_request` said what the caller asked for.
        self.requested = False

    def identify(
        self,
        *,
        account: str | None,
        client: str | None,
        key_id: str | None,
        provider: str | None,
    ) -> None:
        if self.span is None:
            return
        for name, value in (
            ("gateway.account", account),
            ("gateway.client", client),
            ("gateway.key_id", key_id),
        ):
            if value:
                self.span.set_attribute(name, value)
        if provider:
            self._gen_ai["gen_ai.provider.name"] = provider
            self.span.set_attribute("gen_ai.provider.name", provider)

    def model_request(self, *, operation: str, model: str | None, max_tokens: int | None) -> None:
        """What the caller asked for: `operation` is GenAI's (`chat`, `text_completion`, ...)."""
        if self.span is None:
            return
        self.requested = True
        self._gen_ai["gen_ai.operation.name"] = operation
        if model:
            self._gen_ai["gen_ai.request.model"] = model
        if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
            self._gen_ai["gen_ai.request.max_tokens"] = max_tokens
        self.span.set_attributes(self._gen_ai)

    def attempt(self, *, url: str, method: str = "POST", attempt: int = 1) -> AttemptTrace:
        """A client span for one upstream call (retries and fallbacks each get one)."""
        if self.tracer is None or self.span is None:
            return NOOP_ATTEMPT
        operation = self._gen_ai.get("gen_ai.operation.name", "chat")
        model = self._gen_ai.get("gen_ai.request.model")
        address, port = _address(url)
        attributes: dict[str, Any] = {
            **self._gen_ai,
            "http.request.method": method,
            "url.full": url.partition("?")[0].partition("#")[0],
            "server.address": address,
            "gateway.attempt": attempt,
        }
        if port is not None:
            attributes["server.port"] = port
        span = self.tracer.start_span(
            f"{operation} {model}" if model else operation,
            context=set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes=attributes,
        )
        trace = AttemptTrace(span)
        self._attempts.append(trace)
        return trace

    def tool_call(self, name: str) -> AttemptTrace:
        """A client span for one tool-plugin call (GenAI's `execute_tool`)."""
        if self.tracer is None or self.span is None:
            return NOOP_ATTEMPT
        span = self.tracer.start_span(
            f"execute_tool {name}",
            context=set_span_in_context(self.span),
            kind=SpanKind.CLIENT,
            attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name},
        )
        return AttemptTrace(span)

    def first_token(self) -> None:
        """The first content chunk of a stream reached the caller."""
        if self.span is None or self._first_token_at is not None:
            return
        self._first_token_at = time.monotonic()
        self.span.add_event("gen_ai.first_token")

    def finish(
        self,
        *,
        status: int,
        response_model: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reasons: Sequence[str] = (),
        error: str | None = None,
        time_to_first_token_ms: float | None = None,
    ) -> None:
        """End the server span (and an attempt still open) with what the answer said."""
        span = self.span
        if span is None or not span.is_recording():
            return
        result: dict[str, Any] = {}
        if response_model:
            result["gen_ai.response.model"] = response_model
        if input_tokens is not None:
            result["gen_ai.usage.input_tokens"] = input_tokens
        if output_tokens is not None:
            result["gen_ai.usage.output_tokens"] = output_tokens
        if finish_reasons:
            result["gen_ai.response.finish_reasons"] = list(finish_reasons)
        if time_to_first_token_ms is not None:
            result["gateway.time_to_first_token_ms"] = time_to_first_token_ms
            at_ns = time.time_ns() - int((self._elapsed_ms() - time_to_first_token_ms) * 1e6)
            span.add_event("gen_ai.first_token", timestamp=at_ns)
        elif self._first_token_at is not None:
            ttft = round((self._first_token_at - self._started) * 1000.0, 3)
            result["gateway.time_to_first_token_ms"] = ttft
        for attempt in self._attempts:
            if attempt.span is not None and attempt.span.is_recording():
                attempt.span.set_attributes(result)
                attempt.end()
        span.set_attributes(result)
        span.set_attribute("http.response.status_code", status)
        if status >= 500 or error is not None:
            span.set_attribute("error.type", error or str(status))
            span.set_status(Status(StatusCode.ERROR))
        span.end()

    def _elapsed_ms(self) -> float:
        return (time.monotonic() - self._started) * 1000.0


NOOP_TRACE = RequestTrace(None, None)


def _address(url: str) -> tuple[str, int | None]:
    try:
        parsed = URL(url)
    except ValueError:
        return "", None
    return parsed.host or "", parsed.explicit_port


class Tracing:
    """The process's tracer, or nothing. `request()` is the pipeline's entry point."""

    def __init__(self, provider: TracerProvider | None, dropped: DroppedSpans) -> None:
        self.provider = provider
        self.dropped = dropped
        self.tracer: Tracer | None = None
        if provider is not None:
            self.tracer = provider.get_tracer("gateway", __version__)

    @property
    def enabled(self) -> bool:
        return self.tracer is not None

    def request(
        self, headers: Mapping[str, str], *, method: str, route: str, request_id: str
    ) -> RequestTrace:
        """The server span of a request, inside the caller's trace when it sent one."""
        tracer = self.tracer
        if tracer is None:
            return NOOP_TRACE
        parent: Context = _PROPAGATOR.extract(headers)
        span = tracer.start_span(
            f"{method} {route}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "gateway.request_id": request_id,
            },
        )
        return RequestTrace(tracer, span)

    def close(self) -> None:
        """Flush and stop (blocks up to the exporter's timeout: run it off the event loop)."""
        if self.provider is not None:
            self.provider.shutdown()


def create_tracing(environ: Mapping[str, str] | None = None) -> Tracing:
    env = os.environ if environ is None else environ
    dropped = DroppedSpans()
    if not tracing_enabled(env):
        return Tracing(None, dropped)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read here; without them, our name.
    resource = Resource.create({"service.version": __version__})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    exporter = CountingExporter(OTLPSpanExporter(), dropped)
    provider.add_span_processor(CountingBatchProcessor(exporter, dropped))
    return Tracing(provider, dropped)
