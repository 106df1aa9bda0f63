"""Costs: the bundled genai-prices figure for known models, operator overrides (most specific
wins), answered model before requested, and no number at all for an unknown model."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from redis.asyncio import Redis

from gateway.costs import (
    SOURCE_TABLE,
    Price,
    PriceOverrides,
    TokenCounts,
    _full_table_cost,
    compute_cost,
    parse_price,
)
from gateway.store.prices import PriceBook, PriceRepository
from gateway.store.records import PriceRecord
from tests.conftest import ACCOUNT, OTHER_ACCOUNT


@pytest.mark.parametrize(
    ("provider", "model", "tokens"),
    [
        ("openai", "gpt-4o", TokenCounts(input=1234, cached_input=0, output=567)),
        ("openai", "gpt-4o", TokenCounts(input=10_000, cached_input=4_096, output=900)),
        ("openai", "gpt-4o-mini", TokenCounts(input=1_000_000, cached_input=0, output=1)),
        ("azure", "gpt-4o", TokenCounts(input=42, cached_input=0, output=42)),
        ("anthropic", "claude-3-5-sonnet-latest", TokenCounts(input=2000, output=300)),
        ("openai", "gpt-4", TokenCounts(input=1000, cached_input=400, output=10)),  # no cache price
        ("openai", "text-embedding-3-small", TokenCounts(input=1000)),
        ("openai", "o1", TokenCounts(input=5000, cached_input=1000, output=2000)),
    ],
)
def test_known_model_costs_the_genai_prices_figure(
    provider: str, model: str, tokens: TokenCounts
) -> None:
    cost = compute_cost(tokens, provider=provider, models=(model,))
    assert cost is not None
    expected = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=tokens.input,
            cache_read_tokens=tokens.cached_input,
            output_tokens=tokens.output,
        ),
        model,
        provider_id=provider,
    )
    assert cost.total == expected.total_price
    assert cost.input + cost.cached_input == expected.input_price
    assert cost.output == expected.output_price
    data = cost.to_dict()
    assert data["total"] == float(expected.total_price)
    assert data["currency"] == "USD"
    assert data["source"] == SOURCE_TABLE


def test_the_full_table_path_matches_too() -> None:
    """Prices the linear shortcut does not handle (tiers, per-request prices) go through
    `genai_prices.calc_price` itself; both paths give the table's figure."""
    tokens = TokenCounts(input=3000, cached_input=1000, output=500)
    full = _full_table_cost(tokens, "gpt-4o", "openai")
    fast = compute_cost(tokens, provider="openai", models=("gpt-4o",))
    assert full is not None
    assert fast is not None
    assert (full.input, full.cached_input, full.output) == (
        fast.input,
        fast.cached_input,
        fast.output,
    )
    assert _full_table_cost(tokens, "no-such-model", "openai") is None


def test_cached_input_is_split_out_at_its_own_rate() -> None:
    cost = compute_cost(
        TokenCounts(input=1_000_000, cached_input=400_000, output=0),
        provider="openai",
        models=("gpt-4o",),
    )
    assert cost is not None
    table = genai_prices.calc_price(
        genai_prices.Usage(input_tokens=400_000, cache_read_tokens=400_000),
        "gpt-4o",
        provider_id="openai",
    )
    assert cost.cached_input == table.input_price
    assert cost.cached_input < cost.input  # cheaper per token, and fewer of them here


def test_answered_model_first_then_requested() -> None:
    tokens = TokenCounts(input=1000, output=1000)
    answered = compute_cost(tokens, provider="openai", models=("gpt-4o-mini", "gpt-4o"))
    requested = compute_cost(tokens, provider="openai", models=("no-such-model-x", "gpt-4o"))
    only_requested = compute_cost(tokens, provider="openai", models=("gpt-4o",))
    assert answered is not None
    assert requested is not None
    assert only_requested is not None
    assert answered.total < only_requested.total  # mini is cheaper: the answered one counted
    assert requested.total == only_requested.total  # unknown answered name: requested counts


@pytest.mark.parametrize("models", [("gpt-test",), ("gpt-test-2024", "gpt-test"), (None, None), ()])
def test_unknown_model_has_no_cost(models: tuple[str | None, ...]) -> None:
    assert compute_cost(TokenCounts(input=10, output=10), provider="echo", models=models) is None


def test_most_specific_override_wins() -> None:
    tokens = TokenCounts(input=2_000_000, cached_input=1_000_000, output=1_000_000)
    glob = Price(Decimal("1"), Decimal("2"))
    account = Price(Decimal("3"), Decimal("4"), Decimal("0.5"))
    client = Price(Decimal("5"), Decimal("6"))
    levels = PriceOverrides(client={"m": client}, account={"m": account}, global_={"m": glob})
    cost = compute_cost(tokens, provider="openai", models=("m",), overrides=levels)
    assert cost is not None
    assert cost.source == "override:client"
    # cached input has no price of its own here: it costs the input price
    assert (cost.input, cost.cached_input, cost.output) == (
        Decimal(5),
        Decimal(5),
        Decimal(6),
    )  # cached at input price
    levels = PriceOverrides(account={"m": account}, global_={"m": glob})
    cost = compute_cost(tokens, provider="openai", models=("m",), overrides=levels)
    assert cost is not None
    assert cost.source == "override:account"
    assert (cost.input, cost.cached_input, cost.output) == (Decimal(3), Decimal("0.5"), Decimal(4))
    cost = compute_cost(
        tokens, provider="openai", models=("m",), overrides=PriceOverrides(global_={"m": glob})
    )
    assert cost is not None
    assert cost.source == "override:global"
    assert cost.total == 4
    # An override beats the table for a model the table knows.
    cost = compute_cost(
        tokens,
        provider="openai",
        models=("gpt-4o",),
        overrides=PriceOverrides(global_={"gpt-4o": glob}),
    )
    assert cost is not None
    assert cost.source == "override:global"


@pytest.mark.parametrize("text", ["-1", "nan", "inf", "abc", "", "1e999999999"])
def test_bad_prices_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="price"):
        parse_price(text)


async def test_overrides_from_redis_by_level(redis: Redis) -> None:
    repository = PriceRepository(redis)
    await repository.put(PriceRecord("m", "1", "2"))
    await repository.put(PriceRecord("m", "3", "4", account=ACCOUNT))
    await repository.put(PriceRecord("m", "5", "6", account=ACCOUNT, client="bot"))
    await repository.put(PriceRecord("m", "7", "8", account=OTHER_ACCOUNT))
    mine = await repository.overrides_for(ACCOUNT, "bot")
    assert mine.find("m") == (Price(Decimal(5), Decimal(6)), "override:client")
    sibling = await repository.overrides_for(ACCOUNT, "other-bot")
    assert sibling.find("m") == (Price(Decimal(3), Decimal(4)), "override:account")
    stranger = await repository.overrides_for("1111-2222-3333", "bot")
    assert stranger.find("m") == (Price(Decimal(1), Decimal(2)), "override:global")
    book = PriceBook(repository, ttl=60.0)
    assert (await book.overrides_for(ACCOUNT, "bot")).find("m") is not None
    await repository.remove("m", ACCOUNT, "bot")
    cached = await book.overrides_for(ACCOUNT, "bot")
    assert cached.find("m") == (Price(Decimal(5), Decimal(6)), "override:client")
    book.clear()
    fresh = await book.overrides_for(ACCOUNT, "bot")
    assert fresh.find("m") == (Price(Decimal(3), Decimal(4)), "override:account")


def test_metrics_count_cost_and_unknown_prices() -> None:
    from gateway.metrics import GatewayMetrics

    metrics = GatewayMetrics()
    base: dict[str, Any] = {
        "account": ACCOUNT,
        "client": "bot",
        "status": 200,
        "latency_ms": {"total": 1.0, "upstream": None, "ttfb": None},
        "usage": {"input_tokens": 1, "output_tokens": 1, "total_tokens": 2},
    }
    metrics.observe({**base, "cost": None, "price_unknown": True})
    metrics.observe({**base, "cost": None, "price_unknown": True})
    metrics.observe({**base, "cost": {"total": 0.25}, "price_unknown": False})
    text = metrics.render().decode()
    labels = f'account="{ACCOUNT}",client="bot"'
    assert f"gateway_price_unknown_total{{{labels}}} 2.0" in text
    assert f"gateway_cost_usd_total{{{labels}}} 0.25" in text
