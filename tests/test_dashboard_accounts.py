"""Statistics by account for the dashboard (and `journal stats`, which calls the same
`journal_stats`): health probes left out; a scoped admin token sees its own account only."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.services.admin_tokens import create_admin_token
from gateway.services.context import OPERATOR_CLI, AdminContext
from tests.conftest import (
    OTHER_ACCOUNT,
    TEST_SECRET,
    AiohttpServer,
    Tenant,
    make_tenant,
    sdk_kwargs,
)
from tests.support.journal_helpers import wait_for_records

TOKEN = "stats-operator-token"


async def _stats(admin: TestServer, token: str, **params: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(admin.make_url("/admin/stats"), params=params) as response,
    ):
        assert response.status == 200, await response.text()
        body: dict[str, Any] = await response.json()
        return body


async def test_by_account_without_probes_and_scoped(
    aiohttp_server: AiohttpServer,
    gateway: TestServer,
    settings: Settings,
    redis: Redis,
    echo_tenant: Tenant,
) -> None:
    other = await make_tenant(redis, account=OTHER_ACCOUNT, client="other-bot", provider="echo")
    for tenant, count in ((echo_tenant, 3), (other, 1)):
        async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
            for _ in range(count):
                await sdk.chat.completions.create(
                    model="echo-1", messages=[{"role": "user", "content": "hello"}]
                )
    async with aiohttp.ClientSession() as session:
        for path in ("/healthz", "/readyz", "/healthz"):
            async with session.get(gateway.make_url(path)) as response:
                assert response.status == 200
    await wait_for_records(redis, 7)
    assert gateway.app is not None
    admin = await aiohttp_server(
        create_admin_app(
            settings.replace(admin_token=TOKEN), gateway.app[appkeys.METRICS], TEST_SECRET
        )
    )
    stats = await _stats(admin, TOKEN, since="15m", bucket="30s")
    assert stats["requests"] == 4, "the three probes are not counted"
    assert set(stats["by_account"]) == {echo_tenant.account, OTHER_ACCOUNT}
    mine = stats["by_account"][echo_tenant.account]
    assert mine["requests"] == 3
    assert mine["error_rate"] == 0.0
    assert mine["latency_ms"]["p50"] is not None
    assert mine["latency_ms"]["p95"] is not None
    assert mine["tokens"]["total"] > 0
    assert mine["cost"] == {"total": 0.0, "currency": "USD", "priced": 0}  # echo has no price
    assert sum(b["requests"] for b in stats["series"]) == 4
    assert all("cost" in b for b in stats["series"])

    # A scoped admin token (made the CLI's way, through the service layer) sees its account.
    ctx = AdminContext(redis, OPERATOR_CLI, settings.api_domain, TEST_SECRET)
    scoped = await create_admin_token(ctx, OTHER_ACCOUNT, read_only=True)
    theirs = await _stats(admin, scoped["token"], since="15m")
    assert theirs["requests"] == 1
    assert set(theirs["by_account"]) == {OTHER_ACCOUNT}
    # Asking for another account answers 404, like the API.
    headers = {"Authorization": f"Bearer {scoped['token']}"}
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.get(
            admin.make_url("/admin/stats"), params={"account": echo_tenant.account}
        ) as response,
    ):
        assert response.status == 404
