"""Each client policy end to end: the openai SDK calls the gateway, the upstream test server
records what it received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.rewrite import ClientPolicy
from tests.conftest import Tenant, make_tenant, sdk_kwargs
from tests.support.upstream_server import UpstreamServer

MakeClient = Callable[[ClientPolicy], Awaitable[openai.AsyncOpenAI]]
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def policy_client(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> AsyncIterator[MakeClient]:
    made: list[openai.AsyncOpenAI] = []

    async def make(policy: ClientPolicy) -> openai.AsyncOpenAI:
        tenant = await make_tenant(redis, upstream_url=upstream[1], policy=policy)
        sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
        made.append(sdk)
        return sdk

    yield make
    for sdk in made:
        await sdk.close()


async def _post_raw(gateway: TestServer, tenant: Tenant, body: bytes) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.make_url("/v1/chat/completions"),
            data=body,
            headers={
                "Host": tenant.hostname,
                "Authorization": f"Bearer {tenant.key}",
                "Content-Type": "application/json",
            },
        ) as response,
    ):
        await response.read()
        return response.status


@pytest.mark.parametrize(
    "policy",
    [
        ClientPolicy(),
        ClientPolicy(aliases={"fast": "gpt-4o-mini"}, allowed_models=("gpt-test", "fast")),
    ],
    ids=["no-policy", "policy-not-applying"],
)
async def test_body_goes_upstream_byte_for_byte_when_no_rule_applies(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    policy: ClientPolicy,
) -> None:
    server, url = upstream
    tenant = await make_tenant(redis, upstream_url=url, policy=policy)
    # Odd spacing, key order and a unicode escape: any re-serialisation would change them.
    body = b'{ "messages":[{"content":"h\\u00e9","role":"user"}] ,  "model" : "gpt-test"}'
    assert await _post_raw(gateway, tenant, body) == 200
    assert server.seen[-1].body == body


async def test_alias_rewrites_model_and_reply_keeps_upstream_model(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(aliases={"fast": "gpt-4o-mini"}))
    reply = await sdk.chat.completions.create(model="fast", messages=HI)
    assert upstream_server.seen[-1].json["model"] == "gpt-4o-mini"
    assert reply.model == "gpt-4o-mini-2024"


async def test_models_lists_aliases(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(aliases={"fast": "gpt-4o-mini", "smart": "gpt-4o"}))
    listing = await sdk.models.list()
    assert [m.id for m in listing.data] == ["fast", "smart"]
    assert upstream_server.seen == []


async def test_models_without_aliases_asks_upstream(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(defaults={"temperature": 0.5}))
    listing = await sdk.models.list()
    assert [m.id for m in listing.data] == ["gpt-test"]


async def test_disallowed_model_is_refused_before_upstream(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(
        ClientPolicy(aliases={"fast": "gpt-4o-mini"}, allowed_models=("gpt-4o",))
    )
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.chat.completions.create(model="gpt-4-32k", messages=HI)
    assert caught.value.code == "model_not_allowed"
    assert "fast" in caught.value.message
    assert upstream_server.seen == []
    await sdk.chat.completions.create(model="gpt-4o", messages=HI)
    await sdk.chat.completions.create(model="fast", messages=HI)
    assert [s.json["model"] for s in upstream_server.seen] == ["gpt-4o", "gpt-4o-mini"]


async def test_defaults_fill_only_missing_parameters(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(defaults={"temperature": 0.2, "top_p": 0.9}))
    await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await sdk.chat.completions.create(model="gpt-test", messages=HI, temperature=1.5)
    first, second = (s.json for s in upstream_server.seen)
    assert (first["temperature"], first["top_p"]) == (0.2, 0.9)
    assert (second["temperature"], second["top_p"]) == (1.5, 0.9)


async def test_forced_values_always_win(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(forced={"temperature": 0, "store": False}))
    await sdk.chat.completions.create(model="gpt-test", messages=HI, temperature=1.5, store=True)
    sent = upstream_server.seen[-1].json
    assert (sent["temperature"], sent["store"]) == (0, False)


async def test_ceiling_bounds_max_tokens_fields(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(max_tokens_ceiling=256))
    await sdk.chat.completions.create(model="gpt-test", messages=HI, max_tokens=5000)
    await sdk.chat.completions.create(model="gpt-test", messages=HI, max_completion_tokens=100)
    await sdk.chat.completions.create(model="gpt-test", messages=HI, max_completion_tokens=9000)
    sent = [s.json for s in upstream_server.seen]
    assert sent[0]["max_tokens"] == 256
    assert sent[1]["max_completion_tokens"] == 100
    assert sent[2]["max_completion_tokens"] == 256


async def test_strip_removes_fields(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(strip=("user", "logit_bias")))
    await sdk.chat.completions.create(
        model="gpt-test", messages=HI, user="alice@example.com", logit_bias={"50256": -100}
    )
    sent = upstream_server.seen[-1].json
    assert "user" not in sent
    assert "logit_bias" not in sent
    assert sent["messages"] == HI


async def test_system_prompt_if_missing(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(system_prompt="Be brief."))
    await sdk.chat.completions.create(model="gpt-test", messages=HI)
    own: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Mine."}, *HI]
    await sdk.chat.completions.create(model="gpt-test", messages=own)
    first, second = (s.json["messages"] for s in upstream_server.seen)
    assert first == [{"role": "system", "content": "Be brief."}, *HI]
    assert second == own


async def test_system_prompt_always(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(ClientPolicy(system_prompt="Be brief.", system_prompt_mode="always"))
    own: list[ChatCompletionMessageParam] = [{"role": "system", "content": "Mine."}, *HI]
    await sdk.chat.completions.create(model="gpt-test", messages=own)
    assert upstream_server.seen[-1].json["messages"] == [
        {"role": "system", "content": "Be brief."},
        *own,
    ]


async def test_extra_upstream_headers_are_sent(
    policy_client: MakeClient, upstream_server: UpstreamServer
) -> None:
    sdk = await policy_client(
        ClientPolicy(upstream_headers={"OpenAI-Organization": "org-1", "OpenAI-Project": "proj-1"})
    )
    await sdk.chat.completions.create(
        model="gpt-test", messages=HI, extra_headers={"OpenAI-Organization": "tenant-org"}
    )
    headers = upstream_server.seen[-1].headers
    assert headers["OpenAI-Organization"] == "org-1"
    assert headers["OpenAI-Project"] == "proj-1"
    # The unchanged body still went out as the SDK sent it.
    assert orjson.loads(upstream_server.seen[-1].body)["model"] == "gpt-test"


async def test_policy_survives_the_store(
    redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    from gateway.store.repositories import ClientRepository

    policy = ClientPolicy.from_dict(
        {
            "aliases": {"fast": "gpt-4o-mini"},
            "allowed_models": ["gpt-4o"],
            "defaults": {"temperature": 0.2},
            "fallbacks": [{"url": "http://127.0.0.1:9/v1", "key_env": "FB_KEY"}],
        }
    )
    tenant = await make_tenant(redis, upstream_url=upstream[1], policy=policy)
    stored = await ClientRepository(redis).require(tenant.account, tenant.client)
    assert stored.policy == policy
