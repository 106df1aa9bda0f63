"""Tenants never see each other, and changes reach a running gateway at once."""

from __future__ import annotations

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.conftest import OTHER_ACCOUNT, Tenant, make_tenant, sdk_kwargs
from tests.support.helpers import raw_request, wait_for

BODY = b'{"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}'
PATH = "/v1/chat/completions"


async def test_a_key_of_one_account_never_works_on_another_accounts_host(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    other = await make_tenant(redis, account=OTHER_ACCOUNT, client="echo-bot", provider="echo")
    for key, host in ((echo_tenant.key, other.hostname), (other.key, echo_tenant.hostname)):
        status, _, body = await raw_request(gateway, "POST", PATH, host=host, key=key, body=BODY)
        assert status == 401  # the same answer as an unknown key: existence is not revealed
        assert b"incorrect, revoked or expired" in body
    for tenant in (echo_tenant, other):
        status, _, _ = await raw_request(
            gateway, "POST", PATH, host=tenant.hostname, key=tenant.key, body=BODY
        )
        assert status == 200


async def test_revoked_key_stops_working_within_a_second(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as sdk:
        await sdk.models.list()  # warms the gateway's cache with the key's record
        await ApiKeyRepository(redis).revoke(echo_tenant.key_id)

        async def refused() -> bool:
            status, _, _ = await raw_request(
                gateway, "GET", "/v1/models", host=echo_tenant.hostname, key=echo_tenant.key
            )
            return status == 401

        took = await wait_for(refused, timeout=1.0)
        assert took < 1.0
        with pytest.raises(openai.AuthenticationError):
            await sdk.models.list()


async def test_removed_client_stops_routing_within_a_second(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    status, _, _ = await raw_request(
        gateway, "POST", PATH, host=echo_tenant.hostname, key=echo_tenant.key, body=BODY
    )
    assert status == 200
    await ClientRepository(redis).remove(echo_tenant.account, echo_tenant.client)

    async def gone() -> bool:
        status, _, _ = await raw_request(
            gateway, "POST", PATH, host=echo_tenant.hostname, key=echo_tenant.key, body=BODY
        )
        return status == 404

    await wait_for(gone, timeout=1.0)


async def test_a_client_added_after_a_miss_routes_at_once(
    gateway: TestServer, redis: Redis
) -> None:
    host = "late.3141-5926-5359.api.localhost"
    status, _, _ = await raw_request(gateway, "POST", PATH, host=host, key="k", body=BODY)
    assert status == 404  # the miss is cached ...
    tenant = await make_tenant(redis, client="late", provider="echo")

    async def routed() -> bool:  # ... and the announcement drops it
        status, _, _ = await raw_request(
            gateway, "POST", PATH, host=host, key=tenant.key, body=BODY
        )
        return status == 200

    await wait_for(routed, timeout=1.0)
