"""Price overrides: set, list, read and remove (writes are the operator's alone)."""

from __future__ import annotations

from typing import Any

from gateway.costs import parse_price
from gateway.errors import InvalidRequestError
from gateway.services.context import AdminContext
from gateway.store.prices import PriceRepository
from gateway.store.records import PriceRecord
from gateway.store.repositories import ClientRepository

_MAX_MODEL = 200


def check_model(model: Any) -> str:
    if not isinstance(model, str) or not model.strip() or len(model) > _MAX_MODEL:
        raise InvalidRequestError(
            f"model must be a name of 1 to {_MAX_MODEL} characters", param="model"
        )
    return model.strip()


def _price_text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidRequestError(f"{name} must be a number of dollars >= 0", param=name)
    try:
        return str(parse_price(str(value)))
    except ValueError as exc:
        raise InvalidRequestError(f"{name}: {exc}", param=name) from exc


def _level(account: str | None, client: str | None) -> None:
    if client is not None and account is None:
        raise InvalidRequestError("a client's price needs its account", param="client")


async def set_price(
    ctx: AdminContext,
    model: str,
    *,
    input_per_mtok: Any,
    output_per_mtok: Any,
    cached_input_per_mtok: Any = None,
    account: str | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    if account is not None:
        ctx.see(account)
    ctx.operator_only("change prices")
    _level(account, client)
    if account is not None and client is not None:
        await ClientRepository(ctx.redis).require(account, client)
    record = PriceRecord(
        model=check_model(model),
        input_per_mtok=_price_text(input_per_mtok, "input_per_mtok"),
        output_per_mtok=_price_text(output_per_mtok, "output_per_mtok"),
        cached_input_per_mtok=(
            None
            if cached_input_per_mtok is None
            else _price_text(cached_input_per_mtok, "cached_input_per_mtok")
        ),
        account=account,
        client=client,
    )
    repository = PriceRepository(ctx.redis)
    old = await repository.get(record.model, account, client)
    await repository.put(record)
    after = record.public_dict()
    await ctx.audit(
        "prices.set",
        account=account,
        target=record.model,
        before=None if old is None else old.public_dict(),
        after=after,
    )
    return after


async def list_prices(ctx: AdminContext, account: str | None = None) -> list[dict[str, Any]]:
    """Global overrides and every account's (the operator), or the global ones and one
    account's (a scoped token, or `account` given)."""
    repository = PriceRepository(ctx.redis)
    visible = ctx.visible_accounts(account)
    if visible is None:
        records = await repository.list()
    else:
        records = [r for r in await repository.list() if r.account in (None, visible)]
    return [r.public_dict() for r in records]


async def show_price(
    ctx: AdminContext, model: str, account: str | None = None, client: str | None = None
) -> dict[str, Any]:
    if account is not None:
        ctx.see(account)
    _level(account, client)
    return (await PriceRepository(ctx.redis).require(model, account, client)).public_dict()


async def remove_price(
    ctx: AdminContext, model: str, account: str | None = None, client: str | None = None
) -> dict[str, Any]:
    if account is not None:
        ctx.see(account)
    ctx.operator_only("change prices")
    _level(account, client)
    record = await PriceRepository(ctx.redis).remove(model, account, client)
    data = record.public_dict()
    await ctx.audit("prices.remove", account=account, target=model, before=data, after=None)
    return data
