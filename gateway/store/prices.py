"""The price-override repository, and the read-through cache the request path prices with.

Global overrides live in one hash (`gw:prices`, field = model); an account's and its clients'
in the account's hash (`gw:{A}:prices`, field = `<client or *>|<model>`), so one HGETALL
gives every override a request of that account can use.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from gateway.cache import TtlCache
from gateway.costs import Price, PriceOverrides, parse_price
from gateway.errors import NotFoundError
from gateway.store import keys
from gateway.store.records import PriceRecord

_ACCOUNT_WIDE = "*"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _field(record: PriceRecord) -> tuple[str, str]:
    if record.account is None:
        return keys.PRICES, record.model
    return keys.account_prices(record.account), f"{record.client or _ACCOUNT_WIDE}|{record.model}"


def to_price(record: PriceRecord) -> Price:
    cached = record.cached_input_per_mtok
    return Price(
        input=parse_price(record.input_per_mtok),
        output=parse_price(record.output_per_mtok),
        cached_input=None if cached is None else parse_price(cached),
    )


class PriceRepository:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def get(
        self, model: str, account: str | None = None, client: str | None = None
    ) -> PriceRecord | None:
        probe = PriceRecord(model, "0", "0", account=account, client=client)
        raw = await self.redis.hget(*_field(probe))
        return None if raw is None else PriceRecord.from_json(raw)

    async def require(
        self, model: str, account: str | None = None, client: str | None = None
    ) -> PriceRecord:
        record = await self.get(model, account, client)
        if record is None:
            where = f" for {account}" + (f"/{client}" if client else "") if account else ""
            raise NotFoundError(f"no price override for {model!r}{where}", code="price_not_found")
        return record

    async def put(self, record: PriceRecord) -> PriceRecord:
        await self.redis.hset(*_field(record), record.to_json())
        await self._announce(record.account)
        return record

    async def remove(
        self, model: str, account: str | None = None, client: str | None = None
    ) -> PriceRecord:
        record = await self.require(model, account, client)
        await self.redis.hdel(*_field(record))
        await self._announce(account)
        return record

    async def list(self, accounts: list[str] | None = None) -> list[PriceRecord]:
        """Global overrides (when `accounts` is None), then each account's."""
        hashes = [] if accounts is not None else [keys.PRICES]
        if accounts is None:
            members = await self.redis.smembers(keys.ACCOUNTS)
            accounts = sorted(_text(m) for m in members)
        hashes += [keys.account_prices(a) for a in accounts]
        records: list[PriceRecord] = []
        for name in hashes:
            raw: Mapping[bytes | str, bytes | str] = await self.redis.hgetall(name)
            records += sorted(
                (PriceRecord.from_json(v) for v in raw.values()),
                key=lambda r: (r.client or "", r.model),
            )
        return records

    async def overrides_for(self, account: str, client: str) -> PriceOverrides:
        """Every override that can price a request of `account`/`client` (two Redis reads)."""
        glob: Mapping[bytes | str, bytes | str] = await self.redis.hgetall(keys.PRICES)
        mine: Mapping[bytes | str, bytes | str] = await self.redis.hgetall(
            keys.account_prices(account)
        )
        account_level: dict[str, Price] = {}
        client_level: dict[str, Price] = {}
        for field, raw in mine.items():
            owner, _, model = _text(field).partition("|")
            if owner == _ACCOUNT_WIDE:
                account_level[model] = to_price(PriceRecord.from_json(raw))
            elif owner == client:
                client_level[model] = to_price(PriceRecord.from_json(raw))
        return PriceOverrides(
            client=client_level,
            account=account_level,
            global_={_text(f): to_price(PriceRecord.from_json(v)) for f, v in glob.items()},
        )

    async def _announce(self, account: str | None) -> None:
        await self.redis.publish(keys.INVALIDATION_CHANNEL, keys.invalidation_prices(account))


class PriceBook:
    """Overrides per (account, client), kept `ttl` seconds and dropped when a change is
    announced: pricing a warm tenant's request costs no Redis round trip."""

    def __init__(self, repository: PriceRepository, ttl: float = 5.0) -> None:
        self.repository = repository
        self._cache: TtlCache[tuple[str, str], PriceOverrides] = TtlCache(ttl)

    async def overrides_for(self, account: str, client: str) -> PriceOverrides:
        return await self._cache.get_or_load(
            (account, client), lambda: self.repository.overrides_for(account, client)
        )

    def invalidate(self, account: str) -> None:
        """Drop one account's entries (`*`: every entry, for a global change)."""
        if account == "*":
            self._cache.clear()
        else:
            self._cache.discard_where(lambda key, _value: key[0] == account)

    def clear(self) -> None:
        self._cache.clear()
