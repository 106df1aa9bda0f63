"""gateway.tracing through a real OTLP/HTTP receiver on loopback: spans, attributes, parentage and
W3C propagation; nothing at all when off; a collector that is down, slow or failing never slows
a request, and what it loses is counted."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from gateway.tracing import NOOP_ATTEMPT, NOOP_TRACE, Tracing, create_tracing, tracing_enabled
from tests.conftest import free_port
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
CALLER_HEADERS = {
    "traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01",
    "tracestate": "vendor=opaque",
    "authorization": "Bearer sk-caller-secret",
}
SECRETS = ("sk-caller-secret", "upstream-secret", "what is the capital")

#: Every attribute a gateway span may carry: a new one must be added here on purpose, after
#: checking it can never hold a secret or message text.
ALLOWED_ATTRIBUTES = {
    "http.request.method", "http.route", "http.response.status_code", "url.full",
    "server.address", "server.port", "error.type",
    "gateway.request_id", "gateway.account", "gateway.client", "gateway.key_id",
    "gateway.attempt", "gateway.time_to_first_token_ms",
    "gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model",
    "gen_ai.request.max_tokens", "gen_ai.response.model", "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons", "gen_ai.tool.name",
}  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def _tracing(monkeypatch: pytest.MonkeyPatch, endpoint: str, **env: str) -> Tracing:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return create_tracing()


def _one_request(tracing: Tracing, request_id: str = "req_1") -> dict[str, str]:
    """The calls the pipeline makes for one streamed chat request; returns what went upstream."""
    trace = tracing.request(
        CALLER_HEADERS, method="POST", route="/v1/chat/completions", request_id=request_id
    )
    trace.identify(account="3141-5926-5359", client="support", key_id="k0123", provider="openai")
    trace.model_request(operation="chat", model="gpt-test", max_tokens=64)
    failed = trace.attempt(url="http://127.0.0.1:9/v1/chat/completions?key=upstream-secret")
    failed.response(503)
    failed.end()
    attempt = trace.attempt(url="http://[::1]:8443/v1/chat/completions", attempt=2)
    sent = dict(attempt.headers)
    attempt.response(200)
    tool = trace.tool_call("weather")
    tool.end()
    trace.first_token()
    trace.finish(
        status=200,
        response_model="gpt-test-2026",
        input_tokens=12,
        output_tokens=7,
        finish_reasons=["stop"],
    )
    return sent


def test_off_without_an_endpoint_and_costs_one_shared_object(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    tracing = create_tracing()
    assert not tracing.enabled
    assert tracing.provider is None
    trace = tracing.request(CALLER_HEADERS, method="POST", route="/v1/x", request_id="r")
    assert trace is NOOP_TRACE
    assert trace.attempt(url="http://u/v1") is NOOP_ATTEMPT
    assert trace.tool_call("t") is NOOP_ATTEMPT
    assert dict(NOOP_ATTEMPT.headers) == {}
    trace.finish(status=200, input_tokens=1)  # does nothing, raises nothing
    assert _one_request(tracing) == {}
    # Either endpoint variable turns it on; OTEL_SDK_DISABLED wins.
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/t"})
    assert tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"})
    assert not tracing_enabled(
        {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_SDK_DISABLED": "true"}
    )
    assert not tracing_enabled({"OTEL_EXPORTER_OTLP_ENDPOINT": " "})


def _by_name(spans: list[ReceivedSpan]) -> dict[str, list[ReceivedSpan]]:
    out: dict[str, list[ReceivedSpan]] = {}
    for span in spans:
        out.setdefault(span.name, []).append(span)
    return out


def test_spans_attributes_parentage_and_propagation(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    tracing = _tracing(monkeypatch, receiver.endpoint, OTEL_SERVICE_NAME="gateway-under-test")
    try:
        sent = _one_request(tracing)
        spans = receiver.wait_for_spans(4)
    finally:
        tracing.close()
    assert set(receiver.content_types) == {"application/x-protobuf"}
    named = _by_name(spans)
    (server,) = named["POST /v1/chat/completions"]
    attempts = sorted(named["chat gpt-test"], key=lambda s: s.attributes["gateway.attempt"])
    (tool,) = named["execute_tool weather"]
    # Inside the caller's trace, below the caller's span; client spans below the server span.
    assert server.kind == "server"
    assert server.trace_id == CALLER_TRACE
    assert server.parent_span_id == CALLER_SPAN
    for child in (*attempts, tool):
        assert child.kind == "client"
        assert (child.trace_id, child.parent_span_id) == (CALLER_TRACE, server.span_id)
    # The upstream got our traceparent (the attempt's span), and the caller's tracestate.
    assert sent["traceparent"] == f"00-{CALLER_TRACE}-{attempts[1].span_id}-01"
    assert sent["tracestate"] == "vendor=opaque"
    assert server.resource["service.name"] == "gateway-under-test"
    assert server.attributes == {
        "http.request.method": "POST",
        "http.route": "/v1/chat/completions",
        "http.response.status_code": 200,
        "gateway.request_id": "req_1",
        "gateway.account": "3141-5926-5359",
        "gateway.client": "support",
        "gateway.key_id": "k0123",
        "gen_ai.provider.name": "openai",
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": "gpt-test",
        "gen_ai.request.max_tokens": 64,
        "gen_ai.response.model": "gpt-test-2026",
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.output_tokens": 7,
        "gen_ai.response.finish_reasons": ["stop"],
        "gateway.time_to_first_token_ms": server.attributes["gateway.time_to_first_token_ms"],
    }
    assert server.attributes["gateway.time_to_first_token_ms"] >= 0
    assert "gen_ai.first_token" in server.events
    assert attempts[0].attributes["http.response.status_code"] == 503
    assert attempts[0].attributes["error.type"] == "503"
    assert attempts[0].attributes["url.full"] == "http://127.0.0.1:9/v1/chat/completions"
    assert "gen_ai.usage.input_tokens" not in attempts[0].attributes  # failed before usage
    assert attempts[1].attributes["server.address"] == "::1"
    assert attempts[1].attributes["server.port"] == 8443
    assert attempts[1].attributes["gen_ai.usage.output_tokens"] == 7
    assert tool.attributes["gen_ai.tool.name"] == "weather"
    for span in spans:
        assert set(span.attributes) <= ALLOWED_ATTRIBUTES, span.name
        text = repr(span.attributes)
        assert not any(secret in text for secret in SECRETS), span.name


def test_a_request_without_a_traceparent_starts_a_trace(
    monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver
) -> None:
    tracing = _tracing(monkeypatch, receiver.endpoint)
    try:
        trace = tracing.request({}, method="GET", route="/v1/models", request_id="req_2")
        trace.finish(status=404)
        (span,) = receiver.wait_for_spans(1)
    finally:
        tracing.close()
    assert span.parent_span_id == ""
    assert span.trace_id != CALLER_TRACE
    assert span.resource["service.name"] == "tenant-gateway"
    assert span.status_code == 0  # a 4xx is the caller's error, not the server's
    assert span.attributes["http.response.status_code"] == 404


def _timed_requests(tracing: Tracing, count: int) -> float:
    start = time.perf_counter()
    for index in range(count):
        _one_request(tracing, f"req_{index}")
    return time.perf_counter() - start


async def test_a_down_collector_never_slows_a_request_and_drops_are_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tracing = _tracing(
        monkeypatch, f"http://127.0.0.1:{free_port()}", OTEL_EXPORTER_OTLP_TIMEOUT="0.5"
    )
    try:
        elapsed = _timed_requests(tracing, 200)
        assert elapsed < 2.0, elapsed  # 800 spans; nothing waited for the collector
        assert tracing.provider is not None
        await asyncio.to_thread(tracing.provider.force_flush, 5000)
        deadline = time.monotonic() + 10
        while tracing.dropped.value < 800:
            assert time.monotonic() < deadline, tracing.dropped.value
            await asyncio.sleep(0.05)
    finally:
        await asyncio.to_thread(tracing.close)


async def test_a_slow_collector_overflows_the_queue_and_the_overflow_is_counted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver(delay=1.0) as slow:
        tracing = _tracing(
            monkeypatch,
            slow.endpoint,
            OTEL_BSP_MAX_QUEUE_SIZE="40",
            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10",
            OTEL_EXPORTER_OTLP_TIMEOUT="5",
        )
        try:
            elapsed = _timed_requests(tracing, 100)  # 400 spans into a queue of 40
            assert elapsed < 2.0, elapsed
            assert tracing.dropped.value >= 300
        finally:
            await asyncio.to_thread(tracing.close)


async def test_a_failing_collector_counts_the_spans_it_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with OtlpReceiver(status=400) as failing:  # 400: not retried by the exporter
        tracing = _tracing(monkeypatch, failing.endpoint)
        try:
            _one_request(tracing)
            assert tracing.provider is not None
            await asyncio.to_thread(tracing.provider.force_flush, 5000)
            deadline = time.monotonic() + 10
            while tracing.dropped.value < 4:
                assert time.monotonic() < deadline, tracing.dropped.value
                await asyncio.sleep(0.05)
            assert failing.requests >= 1
        finally:
            await asyncio.to_thread(tracing.close)
