"""The `anthropic` SDK on an `anthropic` client: Anthropic's routes served natively.

The body goes upstream byte for byte with the gateway's key as `x-api-key`, replies (JSON and SSE)
come back as they arrive, errors are in Anthropic's shape, limits, policies and the journal
apply. The upstream is the loopback Messages API server in tests/support/anthropic_upstream.py.
"""

from __future__ import annotations

import asyncio

import anthropic
import openai
import orjson
import pytest
import redis as sync_redis_lib
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.balancing import Deployment
from gateway.rewrite import ClientPolicy
from gateway.store import keys
from gateway.store.records import ClientRecord
from tests.conftest import ACCOUNT, AiohttpServer, Cli, Tenant, make_tenant
from tests.support.anthropic_clients import HI, WEATHER_ANTHROPIC, anthropic_kwargs, openai_kwargs
from tests.support.anthropic_upstream import TEXT, AnthropicUpstream
from tests.support.helpers import raw_request
from tests.support.journal_helpers import wait_for_record
from tests.support.upstream_server import UPSTREAM_KEY

# -- anthropic caller, anthropic upstream: native ----------------------------------------------


async def test_native_messages_relayed_byte_for_byte(
    gateway: TestServer,
    claude_tenant: Tenant,
    claude_upstream: tuple[AnthropicUpstream, str],
    redis: Redis,
) -> None:
    behaviour, _ = claude_upstream
    body = b'{"model":"claude-test","max_tokens":20,  "messages":[{"role":"user","content":"Hi"}]}'
    status, headers, reply = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=claude_tenant.hostname,
        body=body,
        headers={
            "x-api-key": claude_tenant.key,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "tools-2099",
        },
    )
    assert status == 200, reply
    assert orjson.loads(reply)["content"][0]["text"] == TEXT
    seen = behaviour.seen[-1]
    assert seen.body == body
    assert seen.headers["x-api-key"] == UPSTREAM_KEY
    assert seen.headers["anthropic-version"] == "2023-06-01"
    assert seen.headers["anthropic-beta"] == "tools-2099"
    assert "Authorization" not in seen.headers
    assert all(claude_tenant.key not in value for value in seen.headers.values())
    assert headers["request-id"] == headers["x-request-id"]
    record = await wait_for_record(redis, headers["x-request-id"])
    assert record["request"]["headers"]["x-api-key"] == "[REDACTED]"
    assert (record["api"], record["upstream_api"]) == ("anthropic", "anthropic")
    assert record["usage"] == {
        "input_tokens": 19,
        "output_tokens": 4,
        "total_tokens": 23,
        "cached_input_tokens": 3,
        "cache_creation_input_tokens": 5,
    }


async def test_native_sdk_sync_async_stream_and_count_tokens(
    gateway: TestServer,
    claude_tenant: Tenant,
    claude_upstream: tuple[AnthropicUpstream, str],
    redis: Redis,
) -> None:
    behaviour, _ = claude_upstream

    def sync_call() -> str:
        with anthropic.Anthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
            message = sdk.messages.create(model="claude-test", max_tokens=20, messages=HI)
        block = message.content[0]
        assert block.type == "text"
        return block.text

    assert await asyncio.to_thread(sync_call) == TEXT
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        message = await sdk.messages.create(model="claude-test", max_tokens=20, messages=HI)
        assert message.usage.cache_read_input_tokens == 3
        async with sdk.messages.stream(
            model="tool-caller", max_tokens=20, messages=HI, tools=[WEATHER_ANTHROPIC]
        ) as stream:
            final = await stream.get_final_message()
        count = await sdk.messages.count_tokens(model="claude-test", messages=HI)
        raw = await sdk.messages.with_raw_response.create(
            model="claude-test", max_tokens=20, messages=HI, stream=True
        )
        text = ""
        async for event in await raw.parse():
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                text += event.delta.text
    block = final.content[0]
    assert block.type == "tool_use"
    assert block.input == {"city": "Paris"}
    assert count.input_tokens == 2
    assert text == TEXT
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["stream"]["text"] == TEXT
    assert record["usage"]["output_tokens"] == 4
    assert record["usage"]["input_tokens"] == 19
    assert behaviour.seen[-1].path == "/v1/messages"


async def test_native_stream_first_event_before_upstream_finishes(
    gateway: TestServer, claude_tenant: Tenant, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, _ = claude_upstream
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        stream = await sdk.messages.create(
            model="pause-stream", max_tokens=20, messages=HI, stream=True
        )
        iterator = stream.__aiter__()
        first = await asyncio.wait_for(iterator.__anext__(), 5)
        assert first.type == "message_start"
        assert not behaviour.released.is_set()
        behaviour.release()
        rest = [event.type async for event in iterator]
    assert rest[-1] == "message_stop"


@pytest.mark.parametrize(
    ("model", "exception", "status"),
    [
        ("error-400", anthropic.BadRequestError, 400),
        ("error-404", anthropic.NotFoundError, 404),
        ("error-429", anthropic.RateLimitError, 429),
        ("error-529", anthropic.InternalServerError, 529),
    ],
)
async def test_native_upstream_errors_reach_the_sdk(
    gateway: TestServer,
    claude_tenant: Tenant,
    model: str,
    exception: type[anthropic.APIStatusError],
    status: int,
) -> None:
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, claude_tenant)) as sdk:
        with pytest.raises(exception) as caught:
            await sdk.messages.create(model=model, max_tokens=5, messages=HI)
    assert caught.value.status_code == status
    assert caught.value.request_id is not None


async def test_gateway_errors_in_anthropic_shape(
    gateway: TestServer, claude_tenant: Tenant
) -> None:
    async with anthropic.AsyncAnthropic(
        **anthropic_kwargs(gateway, claude_tenant, api_key="sk-wrong")
    ) as sdk:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    assert isinstance(auth.value.body, dict)
    assert auth.value.body["error"]["type"] == "authentication_error"
    assert auth.value.request_id is not None
    unknown = {"default_headers": {"Host": "nobody.1111-2222-3333.api.localhost"}}
    async with anthropic.AsyncAnthropic(
        **anthropic_kwargs(gateway, claude_tenant, **unknown)
    ) as sdk:
        with pytest.raises(anthropic.NotFoundError):
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    status, _, body = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=claude_tenant.hostname,
        key=claude_tenant.key,
        body=b'{"model": "claude-test", "messages": "nope"',
    )
    error = orjson.loads(body)
    assert status == 400
    assert error["type"] == "error"
    assert error["error"]["type"] == "invalid_request_error"
    assert claude_tenant.key not in body.decode()


async def test_limits_apply_on_anthropic_routes(
    gateway: TestServer, redis: Redis, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    tenant = await make_tenant(
        redis, client="claude-limited", provider="anthropic", upstream_url=claude_upstream[1], rpm=1
    )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "rate_limit_error"


def test_cli_adds_an_anthropic_client(cli: Cli, sync_redis: sync_redis_lib.Redis) -> None:
    added = cli(
        "clients",
        "add",
        "claude-cli",
        "--account",
        ACCOUNT,
        "--provider",
        "anthropic",
        "--upstream-url",
        "https://api.anthropic.com",
        "--upstream-key-env",
        "ANTHROPIC_KEY",
        "--json",
    )
    assert added.code == 0, added.err
    assert added.json["provider"] == "anthropic"
    stored = ClientRecord.from_json(sync_redis.get(keys.client(ACCOUNT, "claude-cli")) or b"")
    assert (stored.provider, stored.upstream_key_env) == ("anthropic", "ANTHROPIC_KEY")
    assert stored.upstream_url == "https://api.anthropic.com"
    missing = cli("clients", "add", "x", "--account", ACCOUNT, "--provider", "anthropic")
    assert missing.code != 0
    assert "--upstream-url" in missing.err


async def test_anthropic_sdk_unmodified_with_the_tenant_in_the_path(
    gateway: TestServer, claude_tenant: Tenant
) -> None:
    """No Host header: `base_url` names the tenant (`/tenants/{client}.{account}`)."""
    base = gateway.make_url(f"/tenants/{claude_tenant.client}.{claude_tenant.account}")
    async with anthropic.AsyncAnthropic(base_url=str(base), api_key=claude_tenant.key) as sdk:
        message = await sdk.messages.create(model="claude-test", max_tokens=5, messages=HI)
    block = message.content[0]
    assert block.type == "text"
    assert block.text == TEXT


async def test_browsers_may_read_request_id_on_anthropic_routes(
    gateway: TestServer, redis: Redis, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    tenant = await make_tenant(
        redis,
        client="claude-web",
        provider="anthropic",
        upstream_url=claude_upstream[1],
        cors_origins=("https://app.test",),
    )
    body = orjson.dumps({"model": "claude-test", "max_tokens": 5, "messages": HI})
    status, headers, _ = await raw_request(
        gateway,
        "POST",
        "/v1/messages",
        host=tenant.hostname,
        key=tenant.key,
        body=body,
        headers={"Origin": "https://app.test"},
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://app.test"
    assert "request-id" in headers["access-control-expose-headers"].split(", ")


async def test_client_policy_applies_to_anthropic_messages(
    gateway: TestServer, redis: Redis, claude_upstream: tuple[AnthropicUpstream, str]
) -> None:
    behaviour, url = claude_upstream
    policy = ClientPolicy(
        aliases={"fast": "claude-test"},
        max_tokens_ceiling=16,
        system_prompt="Answer briefly.",
        system_prompt_mode="always",
    )
    tenant = await make_tenant(
        redis, client="claude-policy", provider="anthropic", upstream_url=url, policy=policy
    )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        await sdk.messages.create(model="fast", max_tokens=500, messages=HI, system="Be kind.")
        await sdk.messages.create(
            model="fast", max_tokens=5, messages=HI, system=[{"type": "text", "text": "Be kind."}]
        )
    first, second = (seen.json for seen in behaviour.seen[-2:])
    assert (first["model"], first["max_tokens"]) == ("claude-test", 16)
    assert first["system"] == "Answer briefly.\n\nBe kind."
    assert second["max_tokens"] == 5
    assert second["system"] == [
        {"type": "text", "text": "Answer briefly."},
        {"type": "text", "text": "Be kind."},
    ]


async def test_anthropic_deployments_rename_models_and_fall_over(
    gateway: TestServer, redis: Redis, aiohttp_server: AiohttpServer
) -> None:
    """The routing half of issue 12 applies to `anthropic` clients: deployments with model maps,
    and a failing deployment's retry moving to the other one (both over the native and the
    translated route)."""
    first, second = AnthropicUpstream(), AnthropicUpstream()
    urls = [str((await aiohttp_server(u.app())).make_url("")) for u in (first, second)]
    deployments = tuple(
        Deployment(url=url, key=UPSTREAM_KEY, models={"fast": "claude-test"}) for url in urls
    )
    policy = ClientPolicy(strategy="ordered", deployments=deployments)
    tenant = await make_tenant(
        redis, client="claude-deployed", provider="anthropic", upstream_url=urls[0], policy=policy
    )
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        message = await sdk.messages.create(model="fast", max_tokens=5, messages=HI)
        with pytest.raises(anthropic.BadRequestError) as unknown:
            await sdk.messages.create(model="other", max_tokens=5, messages=HI)
    assert message.model == "claude-test-20250101"
    assert first.seen[-1].json["model"] == "claude-test"
    assert first.seen[-1].headers["x-api-key"] == UPSTREAM_KEY
    assert isinstance(unknown.value.body, dict)
    assert unknown.value.body["error"]["type"] == "invalid_request_error"
    assert (len(first.seen), len(second.seen)) == (1, 0)
    first.failures = [529]
    async with anthropic.AsyncAnthropic(**anthropic_kwargs(gateway, tenant)) as sdk:
        moved = await sdk.messages.create(model="fast", max_tokens=5, messages=HI)
    async with openai.AsyncOpenAI(**openai_kwargs(gateway, tenant)) as chat:
        first.failures = [529]
        translated = await chat.chat.completions.create(model="fast", messages=HI)
    assert moved.content[0].type == "text"
    assert translated.choices[0].message.content == TEXT
    assert (len(first.seen), len(second.seen)) == (3, 2)
    assert second.seen[-1].json["model"] == "claude-test"
