"""Cost, price_unknown and end_user on journal records, end to end through the openai SDK:
the genai-prices figure for a known model (JSON and stream), overrides by level, no number for
an unknown model (and the metric that counts it), and which end user a request was for."""

from __future__ import annotations

import time
from typing import Any

import genai_prices
import openai
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.limits.cli import usage_report
from gateway.metrics import GatewayMetrics
from gateway.store.prices import PriceRepository
from gateway.store.records import PriceRecord
from tests.conftest import TEST_SECRET, Tenant
from tests.support.journal_helpers import wait_for_record
from tests.support.limits_support import flush_usage

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


def table_total(model: str, input_tokens: int, output_tokens: int) -> float:
    price = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model,
        provider_id="openai",
    )
    return float(price.total_price)


async def test_known_model_json_and_stream_cost_the_table_figure(
    client: openai.AsyncOpenAI, redis: Redis
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HI, user="alice"
    )
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    # The upstream answers `gpt-4o-2024`, which the table does not know: the requested model
    # prices it.
    assert record["model"] == {"requested": "gpt-4o", "answered": "gpt-4o-2024"}
    assert record["usage"]["input_tokens"] == 7
    assert record["cost"]["total"] == table_total("gpt-4o", 7, 3)
    assert record["cost"]["source"] == "genai-prices"
    assert record["cost"]["currency"] == "USD"
    assert record["price_unknown"] is False
    assert record["end_user"] == "alice"

    stream = await client.chat.completions.create(model="gpt-4o", messages=HI, stream=True)
    async for _chunk in stream:
        pass
    streamed = await wait_for_record(redis, stream.response.headers["x-request-id"])
    assert streamed["usage"]["output_tokens"] == 4
    assert streamed["cost"]["total"] == table_total("gpt-4o", 7, 4)
    assert streamed["end_user"] is None


async def test_unknown_model_has_no_cost_and_is_counted(
    client: openai.AsyncOpenAI, redis: Redis, gateway: TestServer, tenant: Tenant
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-test", messages=HI, extra_headers={"x-gateway-end-user": "team-7"}
    )
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["usage"] is not None
    assert record["cost"] is None
    assert record["price_unknown"] is True
    assert record["end_user"] == "team-7"
    assert gateway.app is not None
    metrics = gateway.app[appkeys.METRICS].render().decode()
    labels = f'account="{tenant.account}",client="{tenant.client}"'
    assert f"gateway_price_unknown_total{{{labels}}} 1.0" in metrics


async def test_overrides_price_by_level(
    client: openai.AsyncOpenAI, redis: Redis, tenant: Tenant
) -> None:
    prices = PriceRepository(redis)
    await prices.put(PriceRecord("gpt-test", "1", "2"))
    await prices.put(PriceRecord("gpt-test", "10", "20", account=tenant.account))
    await prices.put(
        PriceRecord("gpt-test", "100", "200", account=tenant.account, client=tenant.client)
    )
    await prices.put(PriceRecord("gpt-4o", "1000", "1000"))  # beats the table
    raw = await client.chat.completions.with_raw_response.create(model="gpt-test", messages=HI)
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["cost"] == {
        "input": 7 * 100 / 1e6,
        "cached_input": 0.0,
        "output": 3 * 200 / 1e6,
        "total": 7 * 100 / 1e6 + 3 * 200 / 1e6,
        "currency": "USD",
        "source": "override:client",
    }
    raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    assert record["cost"]["source"] == "override:global"
    assert record["cost"]["total"] == 10 * 1000 / 1e6


async def test_usage_reports_cost_by_key_model_and_end_user(
    client: openai.AsyncOpenAI,
    redis: Redis,
    gateway: TestServer,
    tenant: Tenant,
    aiohttp_client: Any,
    settings: Settings,
) -> None:
    await PriceRepository(redis).put(PriceRecord("gpt-test", "1000", "2000"))
    for user in ("alice", "alice", "bob"):
        await client.chat.completions.create(model="gpt-test", messages=HI, user=user)
    await client.chat.completions.create(model="gpt-test", messages=HI)
    assert gateway.app is not None
    await flush_usage(gateway.app)
    one = (7 * 1000 + 3 * 2000) / 1e6  # dollars per request
    data, text = await usage_report(
        redis, time.time(), account=tenant.account, client=None, since_seconds=86400
    )
    [row] = data["rows"]
    assert (row["key_id"], row["model"], row["requests"]) == (tenant.key_id, "gpt-test", 4)
    assert row["cost_usd"] == pytest.approx(4 * one)
    assert data["totals"]["cost_usd"] == pytest.approx(4 * one)
    by_user = {r["end_user"]: r for r in data["end_users"]}
    assert set(by_user) == {"alice", "bob"}
    assert by_user["alice"]["requests"] == 2
    assert by_user["alice"]["cost_usd"] == pytest.approx(2 * one)
    assert "cost_usd" in text
    assert "by end user" in text
    # The admin API answers the same figures.
    admin = await aiohttp_client(
        create_admin_app(settings.replace(admin_token="t"), GatewayMetrics(), TEST_SECRET)
    )
    response = await admin.get(
        f"/admin/v1/accounts/{tenant.account}/usage", headers={"Authorization": "Bearer t"}
    )
    assert response.status == 200
    body = await response.json()
    assert body["totals"] == data["totals"]
    assert body["end_users"] == data["end_users"]


@pytest.mark.parametrize(
    ("endpoint", "model"),
    [
        ("chat", "gpt-4o-mini"),
        ("completions", "gpt-3.5-turbo-instruct"),
        ("embeddings", "text-embedding-3-small"),
        ("responses", "gpt-4o-mini"),
    ],
)
async def test_every_endpoint_with_usage_is_priced(
    client: openai.AsyncOpenAI, redis: Redis, endpoint: str, model: str
) -> None:
    """Whatever shape the usage came in, the record's cost is the table's figure for it."""
    if endpoint == "chat":
        raw: Any = await client.chat.completions.with_raw_response.create(model=model, messages=HI)
    elif endpoint == "completions":
        raw = await client.completions.with_raw_response.create(model=model, prompt="hi")
    elif endpoint == "embeddings":
        raw = await client.embeddings.with_raw_response.create(model=model, input=["a", "b"])
    else:
        raw = await client.responses.with_raw_response.create(model=model, input="hi")
    record = await wait_for_record(redis, raw.headers["x-request-id"])
    usage = record["usage"]
    assert usage is not None
    assert record["price_unknown"] is False
    assert record["cost"]["total"] == table_total(
        model, usage["input_tokens"], usage["output_tokens"]
    )
