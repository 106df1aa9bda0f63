"""What a request cost, in US dollars, from its normalized token counts (see `docs/costs.md`).

Prices come from operator overrides first (the most specific wins: client, then account, then
global), else from the `genai-prices` package's bundled table. The bundled data is the only
source: nothing is fetched at run time, so a gateway's costs change only with its install.

A model that no source prices gets no cost and `price_unknown` (never a made-up number). The
upstream's answered model is tried before the requested one, in every source, because it names
the exact version that was billed (`gpt-4o-2024-08-06` rather than `gpt-4o`).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import genai_prices
import genai_prices.data_snapshot

CURRENCY = "USD"
_MTOK = Decimal(1_000_000)

#: The gateway's provider names (`client.provider`) that `genai-prices` knows by another id.
#: A provider absent here (echo, third-party handlers) is looked up by the model name alone.
PROVIDER_IDS: Mapping[str, str] = {"openai": "openai", "azure": "azure", "anthropic": "anthropic"}

#: Most dollars per million tokens an operator may set (keeps every figure a finite float).
MAX_PRICE = Decimal(1_000_000)

#: `source` of a cost priced from the bundled table.
SOURCE_TABLE = "genai-prices"


@dataclasses.dataclass(frozen=True, slots=True)
class TokenCounts:
    """Normalized usage: `input` includes `cached_input`; `output` includes reasoning tokens."""

    input: int
    cached_input: int = 0
    output: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Price:
    """Dollars per million tokens; `cached_input` None: cached input costs the input price."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Cost:
    input: Decimal
    cached_input: Decimal
    output: Decimal
    source: str

    @property
    def total(self) -> Decimal:
        return self.input + self.cached_input + self.output

    def to_dict(self) -> dict[str, Any]:
        """The journal's and the APIs' `cost` object (floats, as JSON numbers)."""
        return {
            "input": float(self.input),
            "cached_input": float(self.cached_input),
            "output": float(self.output),
            "total": float(self.total),
            "currency": CURRENCY,
            "source": self.source,
        }


@dataclasses.dataclass(frozen=True, slots=True)
class PriceOverrides:
    """Operator prices that apply to one request: model -> price at each level."""

    client: Mapping[str, Price] = dataclasses.field(default_factory=dict)
    account: Mapping[str, Price] = dataclasses.field(default_factory=dict)
    global_: Mapping[str, Price] = dataclasses.field(default_factory=dict)

    def find(self, model: str) -> tuple[Price, str] | None:
        for level, table in (
            ("client", self.client),
            ("account", self.account),
            ("global", self.global_),
        ):
            price = table.get(model)
            if price is not None:
                return price, f"override:{level}"
        return None


NO_OVERRIDES = PriceOverrides()


def price_with(price: Price, tokens: TokenCounts, source: str) -> Cost:
    cached = min(max(tokens.cached_input, 0), max(tokens.input, 0))
    uncached = max(tokens.input, 0) - cached
    cached_rate = price.input if price.cached_input is None else price.cached_input
    return Cost(
        input=price.input * uncached / _MTOK,
        cached_input=cached_rate * cached / _MTOK,
        output=price.output * max(tokens.output, 0) / _MTOK,
        source=source,
    )


class _Full:
    """A table price that only `genai_prices.calc_price` computes right (tiers, per-request
    or reasoning prices, no cache price)."""


_FULL = _Full()
#: Table prices change with the package, and by date within it: resolved prices are cached per
#: (provider, model, UTC hour), misses too (a miss scans the provider's models: ~0.2 ms).
_HOUR = 3600


def table_cost(tokens: TokenCounts, model: str, provider: str | None) -> Cost | None:
    """The bundled table's figure, split into uncached input, cached input and output."""
    provider_id = PROVIDER_IDS.get(provider or "")
    price = _table_price(provider_id, model, int(time.time() // _HOUR))
    if price is None:
        return None
    if isinstance(price, Price):
        return price_with(price, tokens, SOURCE_TABLE)
    return _full_table_cost(tokens, model, provider_id)


@functools.lru_cache(maxsize=4096)
def _table_price(provider_id: str | None, model: str, hour: int) -> Price | _Full | None:
    """The model's linear token prices, when they are all it has that our usage can carry."""
    snapshot = genai_prices.data_snapshot.get_snapshot()
    try:
        found_provider, found_model = snapshot.find_provider_model(model, None, provider_id, None)
        prices = found_model.get_prices(datetime.datetime.fromtimestamp(hour * _HOUR, datetime.UTC))
    except (LookupError, ValueError):
        return None
    del found_provider
    rate_in, rate_out, rate_cached = (
        getattr(prices, name, None) for name in ("input_mtok", "output_mtok", "cache_read_mtok")
    )
    special = [getattr(prices, name, None) for name in ("requests_kcount", "output_reasoning_mtok")]
    if (
        isinstance(rate_in, Decimal)
        and isinstance(rate_out, Decimal)
        and (rate_cached is None or isinstance(rate_cached, Decimal))
        and all(x is None for x in special)
    ):
        # No cache price: the table bills cached input at the input price, as `Price` does.
        return Price(input=rate_in, output=rate_out, cached_input=rate_cached)
    return _FULL


def _full_table_cost(tokens: TokenCounts, model: str, provider_id: str | None) -> Cost | None:
    cached = min(max(tokens.cached_input, 0), max(tokens.input, 0))
    try:
        full = genai_prices.calc_price(
            genai_prices.Usage(
                input_tokens=max(tokens.input, 0),
                cache_read_tokens=cached,
                output_tokens=max(tokens.output, 0),
            ),
            model,
            provider_id=provider_id,
        )
        cached_part = (
            genai_prices.calc_price(
                genai_prices.Usage(input_tokens=cached, cache_read_tokens=cached),
                model,
                provider_id=provider_id,
            ).input_price
            if cached
            else Decimal(0)
        )
    except (LookupError, ValueError):
        return None
    return Cost(
        input=full.input_price - cached_part,
        cached_input=cached_part,
        output=full.output_price,
        source=SOURCE_TABLE,
    )


def compute_cost(
    tokens: TokenCounts,
    *,
    provider: str | None,
    models: tuple[str | None, ...],
    overrides: PriceOverrides = NO_OVERRIDES,
) -> Cost | None:
    """The cost of `tokens`, or None when no price is known for any of `models`.

    `models` is tried in order (answered first, then requested), overrides before the table.
    """
    names = [m for m in dict.fromkeys(models) if m]
    for model in names:
        found = overrides.find(model)
        if found is not None:
            return price_with(found[0], tokens, found[1])
    for model in names:
        cost = table_cost(tokens, model, provider)
        if cost is not None:
            return cost
    return None


def parse_price(value: str) -> Decimal:
    """A price per million tokens from operator input: a finite, non-negative decimal."""
    try:
        number = Decimal(value.strip())
    except ArithmeticError as exc:
        raise ValueError(f"{value!r} is not a price like 2.50") from exc
    if not number.is_finite() or not 0 <= number <= MAX_PRICE:
        raise ValueError(f"{value[:40]!r} is not a price from 0 to {MAX_PRICE}")
    return number


def micro_usd(cost: Cost) -> int:
    """A cost in whole micro-dollars, rounded up (what dollar budgets count)."""
    return int((cost.total * _MTOK).to_integral_value(rounding="ROUND_CEILING"))
