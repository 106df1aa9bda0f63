"""The `azure` provider: deployment URLs, `api-version`, the `api-key` header, via the SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.rewrite import ClientPolicy
from tests.conftest import make_tenant, sdk_kwargs
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer


@pytest.fixture
async def azure(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> AsyncIterator[openai.AsyncOpenAI]:
    endpoint = upstream[1].removesuffix("/v1")  # the resource endpoint, no path
    policy = ClientPolicy(
        aliases={"fast": "gpt4o-mini-prod", "embed": "embed-prod"},
        azure_api_version="2024-10-21",
        upstream_headers={"x-ms-client-tag": "gw"},
    )
    tenant = await make_tenant(
        redis, client="azure-app", provider="azure", upstream_url=endpoint, policy=policy
    )
    sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
    yield sdk
    await sdk.close()


async def test_chat_goes_to_the_deployment_with_api_key_and_version(
    azure: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    reply = await azure.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Hello from upstream"
    seen = upstream_server.seen[-1]
    assert seen.path == "/openai/deployments/gpt4o-mini-prod/chat/completions"
    assert seen.query == "api-version=2024-10-21"
    assert seen.headers["api-key"] == UPSTREAM_KEY
    assert "Authorization" not in seen.headers
    assert seen.headers["x-ms-client-tag"] == "gw"


async def test_stream_embeddings_and_responses_shapes(
    azure: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    stream = await azure.chat.completions.create(
        model="fast", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "Hello from the stream"
    await azure.embeddings.create(model="embed", input="a")
    await azure.responses.create(model="fast", input="hi")
    await azure.models.list()  # aliases: answered by the gateway, no upstream call
    paths = [(s.path, s.query) for s in upstream_server.seen]
    assert paths == [
        ("/openai/deployments/gpt4o-mini-prod/chat/completions", "api-version=2024-10-21"),
        ("/openai/deployments/embed-prod/embeddings", "api-version=2024-10-21"),
        ("/openai/responses", "api-version=2024-10-21"),
    ]
    assert upstream_server.seen[-1].json["model"] == "gpt4o-mini-prod"


async def test_unaliased_model_is_the_deployment_and_body_is_untouched(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    server, url = upstream
    tenant = await make_tenant(
        redis, client="azure-raw", provider="azure", upstream_url=url.removesuffix("/v1")
    )
    sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
    await sdk.chat.completions.create(
        model="my deployment", messages=[{"role": "user", "content": "hi"}]
    )
    listing = await sdk.models.list()
    await sdk.close()
    chat, models = server.seen
    assert chat.path == "/openai/deployments/my deployment/chat/completions"
    assert chat.json["model"] == "my deployment"
    assert chat.query == "api-version=2024-10-21"
    assert (models.path, models.query) == ("/openai/models", "api-version=2024-10-21")
    assert [m.id for m in listing.data] == ["gpt-test"]
