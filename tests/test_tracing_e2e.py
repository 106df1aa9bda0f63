"""Tracing through the real app: the official SDK calls the gateway with its own trace context,
the gateway calls a real upstream, and a real OTLP receiver gets the spans. Checks the server
span inside the caller's trace, a client span per attempt (retries included) whose traceparent
reached the upstream, GenAI usage, model and finish reasons, time to first token on streams;
and, with tracing off, the caller's traceparent passing through untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam

from gateway.app import create_app
from gateway.config import Settings
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant, sdk_kwargs
from tests.support.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c"
CALLER_SPAN = "b7ad6b7169203331"
TRACE_HEADERS = {"traceparent": f"00-{CALLER_TRACE}-{CALLER_SPAN}-01", "tracestate": "app=1"}
PROMPT = "tell me a secret recipe"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")
        yield running


@pytest.fixture
async def traced(
    receiver: OtlpReceiver, aiohttp_server: AiohttpServer, settings: Settings
) -> AsyncIterator[TestServer]:
    fast = settings.replace(upstream_backoff=0.01, upstream_backoff_max=0.02)
    server = await aiohttp_server(create_app(fast, TEST_SECRET))
    yield server
    await server.close()  # shuts the tracer down: the last spans are flushed


def _sdk(server: TestServer, tenant: Tenant) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(**sdk_kwargs(server, tenant, default_headers={
        "Host": tenant.hostname, **TRACE_HEADERS,
    }))  # fmt: skip


def _named(spans: list[ReceivedSpan], kind: str) -> list[ReceivedSpan]:
    return [span for span in spans if span.kind == kind]


async def test_a_chat_request_with_a_retry_is_traced_end_to_end(
    traced: TestServer, tenant: Tenant, upstream_server: UpstreamServer, receiver: OtlpReceiver
) -> None:
    upstream_server.failures.append("503")
    async with _sdk(traced, tenant) as sdk:
        raw = await sdk.chat.completions.with_raw_response.create(
            model="gpt-test", messages=MESSAGES, max_tokens=32
        )
    request_id = raw.headers["x-request-id"]
    spans = await receiver.until_spans(3)
    (server,) = _named(spans, "server")
    attempts = sorted(_named(spans, "client"), key=lambda s: s.attributes["gateway.attempt"])
    assert len(attempts) == 2
    assert server.name == "POST /v1/chat/completions"
    assert (server.trace_id, server.parent_span_id) == (CALLER_TRACE, CALLER_SPAN)
    for attempt in attempts:
        assert attempt.name == "chat gpt-test"
        assert (attempt.trace_id, attempt.parent_span_id) == (CALLER_TRACE, server.span_id)
    # Each attempt sent its own traceparent upstream (the caller's was replaced), and the
    # caller's tracestate.
    sent = [seen.headers for seen in upstream_server.seen]
    assert [h["traceparent"] for h in sent] == [
        f"00-{CALLER_TRACE}-{attempt.span_id}-01" for attempt in attempts
    ]
    assert {h["tracestate"] for h in sent} == {"app=1"}
    assert attempts[0].attributes["http.response.status_code"] == 503
    assert attempts[0].attributes["error.type"] == "503"
    assert attempts[1].attributes["http.response.status_code"] == 200
    attributes = server.attributes
    assert attributes["gateway.request_id"] == request_id
    assert attributes["gateway.account"] == tenant.account
    assert attributes["gateway.client"] == tenant.client
    assert attributes["gateway.key_id"] == tenant.key_id
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == "gpt-test"
    assert attributes["gen_ai.request.max_tokens"] == 32
    assert attributes["gen_ai.response.model"] == "gpt-test-2024"
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attributes["http.response.status_code"] == 200
    assert attempts[1].attributes["gen_ai.usage.output_tokens"] == 3
    for span in spans:
        text = repr(span.attributes)
        for secret in (tenant.key, UPSTREAM_KEY, TEST_SECRET, PROMPT, "Hello from upstream"):
            assert secret not in text, (span.name, secret)


async def test_a_stream_carries_time_to_first_token_and_its_usage(
    traced: TestServer, tenant: Tenant, receiver: OtlpReceiver
) -> None:
    async with _sdk(traced, tenant) as sdk:
        stream = await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES, stream=True)
        async for _chunk in stream:
            pass
    spans = await receiver.until_spans(2)
    (server,) = _named(spans, "server")
    (attempt,) = _named(spans, "client")
    assert server.attributes["gateway.time_to_first_token_ms"] > 0
    assert "gen_ai.first_token" in server.events
    assert server.attributes["gen_ai.usage.input_tokens"] == 7  # the usage the gateway asked for
    assert server.attributes["gen_ai.usage.output_tokens"] == 4
    assert server.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert attempt.attributes["gen_ai.response.model"] == "gpt-test"
    assert attempt.end_ns >= server.start_ns


async def test_refusals_are_server_spans_without_upstream_calls(
    traced: TestServer, tenant: Tenant, receiver: OtlpReceiver
) -> None:
    bad = Tenant(tenant.account, tenant.client, tenant.hostname, "gwk_not-a-key", "")
    async with _sdk(traced, bad) as sdk:
        with pytest.raises(openai.AuthenticationError):
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    (span,) = await receiver.until_spans(1)
    assert span.kind == "server"
    assert span.attributes["http.response.status_code"] == 401
    assert span.parent_span_id == CALLER_SPAN
    assert "gwk_not-a-key" not in repr(span.attributes)


async def test_without_tracing_the_callers_traceparent_passes_through(
    gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer
) -> None:
    async with _sdk(gateway, tenant) as sdk:
        await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert upstream_server.seen[-1].headers["traceparent"] == TRACE_HEADERS["traceparent"]
