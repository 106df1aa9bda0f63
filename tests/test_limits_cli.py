"""Limits set with the CLI take effect; usage reads back through `gateway usage` and the admin
API."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.app import create_app
from gateway.config import Settings
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.conftest import ACCOUNT, TEST_SECRET, AiohttpServer, Tenant, sdk_kwargs
from tests.support.limits_support import flush_usage

ADMIN_TOKEN = "admin-test-token"
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def gateway_cli(redis_url: str, tmp_path: Path, *args: str) -> tuple[int, Any, str]:
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_SECRET": TEST_SECRET,
        "GATEWAY_VAR_DIR": str(tmp_path / "var"),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    data = orjson.loads(out) if process.returncode == 0 and "--json" in args else out.decode()
    return process.returncode, data, err.decode()


async def test_cli_sets_limits_that_the_gateway_enforces(
    redis_url: str, redis: Redis, tenant: Tenant, client: openai.AsyncOpenAI, tmp_path: Path
) -> None:
    code, data, _ = await gateway_cli(
        redis_url, tmp_path, "clients", "update", tenant.client, "--account", ACCOUNT,
        "--rpm", "1", "--json",
    )  # fmt: skip
    assert code == 0
    assert data["rpm"] == 1
    assert (await ClientRepository(redis).require(ACCOUNT, tenant.client)).rpm == 1
    await client.chat.completions.create(model="gpt-test", messages=HI)
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="gpt-test", messages=HI)

    code, data, _ = await gateway_cli(
        redis_url, tmp_path, "keys", "update", tenant.key_id, "--tokens-per-day", "500",
        "--tpm", "none", "--json",
    )  # fmt: skip
    assert code == 0
    assert (data["tokens_per_day"], data["tpm"]) == (500, None)
    stored = await ApiKeyRepository(redis).require(tenant.key_id)
    assert stored.tokens_per_day == 500

    code, data, _ = await gateway_cli(
        redis_url, tmp_path, "keys", "create", "--account", ACCOUNT, "--name", "batch",
        "--max-concurrent", "4", "--json",
    )  # fmt: skip
    assert code == 0
    assert data["max_concurrent"] == 4

    code, _, err = await gateway_cli(
        redis_url, tmp_path, "clients", "update", tenant.client, "--account", ACCOUNT,
        "--rpm", "-3",
    )  # fmt: skip
    assert code == 2
    assert "whole number" in err


async def test_usage_reads_back_through_cli_and_admin_api(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    redis_url: str,
    redis: Redis,
    tenant: Tenant,
    tmp_path: Path,
) -> None:
    configured = settings.replace(admin_token=ADMIN_TOKEN)
    gateway = await aiohttp_server(create_app(configured, TEST_SECRET))
    assert gateway.app is not None
    admin = await aiohttp_server(create_admin_app(configured, gateway.app[appkeys.METRICS]))
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        for _ in range(2):
            await sdk.chat.completions.create(model="gpt-test", messages=HI)
    await flush_usage(gateway.app)
    expected = {"requests": 2, "prompt_tokens": 14, "completion_tokens": 6}

    code, data, _ = await gateway_cli(
        redis_url, tmp_path, "usage", "--account", ACCOUNT, "--since", "7d", "--json"
    )
    assert code == 0
    assert data["totals"] == expected
    [row] = data["rows"]
    assert (row["client"], row["key_id"], row["model"]) == (
        tenant.client,
        tenant.key_id,
        "gpt-test",
    )
    code, text, _ = await gateway_cli(redis_url, tmp_path, "usage", "--client", tenant.client)
    assert code == 0
    assert tenant.key_id in text

    url = admin.make_url("/admin/usage")
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        async with session.get(url, params={"account": ACCOUNT}, headers=headers) as response:
            assert response.status == 200
            body = await response.json()
        assert body["totals"] == expected
        async with session.get(url, params={"since": "week"}, headers=headers) as response:
            assert response.status == 400
            assert (await response.json())["error"]["param"] == "since"
        async with session.get(url) as response:
            assert response.status == 401
            assert (await response.json())["error"]["code"] == "invalid_admin_token"
