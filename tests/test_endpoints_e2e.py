"""`/v1/completions`, `/v1/embeddings` and `/v1/responses` through the openai SDK: relayed, with
the client's policy applied and journaled like chat."""

from __future__ import annotations

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.rewrite import ClientPolicy
from tests.conftest import make_tenant, sdk_kwargs
from tests.support.journal_helpers import journal_record
from tests.support.upstream_server import UpstreamServer


async def test_completions_json_and_stream(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    reply = await client.completions.create(model="davinci-test", prompt="hello")
    assert reply.choices[0].text == " world"
    stream = await client.completions.create(model="davinci-test", prompt="hello", stream=True)
    text = "".join([chunk.choices[0].text async for chunk in stream])
    assert text == " world"
    assert [s.path for s in upstream_server.seen] == ["/v1/completions"] * 2


async def test_embeddings(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer, redis: Redis
) -> None:
    reply = await client.embeddings.create(
        model="embed-test", input=["a", "b"], extra_headers={"X-Client-Request-Id": "req-embed"}
    )
    assert [item.index for item in reply.data] == [0, 1]
    assert upstream_server.seen[-1].path == "/v1/embeddings"
    record = await journal_record(redis, "req-embed")
    assert (record["path"], record["model"]["requested"], record["status"]) == (
        "/v1/embeddings",
        "embed-test",
        200,
    )


async def test_responses_json_and_stream(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    reply = await client.responses.create(model="gpt-test", input="hi")
    assert reply.output_text == "Hi from responses"
    stream = await client.responses.create(model="gpt-test", input="hi", stream=True)
    kinds = [event.type async for event in stream]
    assert kinds == ["response.created", "response.output_text.delta", "response.completed"]
    assert upstream_server.seen[-1].json["stream"] is True


async def test_policy_applies_to_every_endpoint(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    server, url = upstream
    policy = ClientPolicy(
        aliases={"embed": "text-embedding-3-small", "fast": "gpt-4o-mini"},
        allowed_models=("embed", "fast"),
        max_tokens_ceiling=100,
        system_prompt="Be brief.",
        strip=("user",),
    )
    tenant = await make_tenant(redis, upstream_url=url, policy=policy)
    sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
    await sdk.embeddings.create(model="embed", input="a", user="u1")
    await sdk.completions.create(model="fast", prompt="x", max_tokens=1000)
    await sdk.responses.create(model="fast", input="hi", max_output_tokens=1000)
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.embeddings.create(model="text-embedding-3-large", input="a")
    await sdk.close()
    assert caught.value.code == "model_not_allowed"
    embedding, completion, response = (s.json for s in server.seen)
    assert embedding == {
        "model": "text-embedding-3-small",
        "input": "a",
        "encoding_format": "base64",
    }
    assert (completion["model"], completion["max_tokens"]) == ("gpt-4o-mini", 100)
    assert (response["model"], response["max_output_tokens"]) == ("gpt-4o-mini", 100)
    assert response["instructions"] == "Be brief."


async def test_missing_required_field_is_a_400(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.post("/embeddings", body={"model": "embed-test"}, cast_to=object)
    assert caught.value.code == "invalid_request"
    assert "input" in caught.value.message
    assert upstream_server.seen == []
