"""TtlCache: shared loads under concurrency, and invalidations that overtake a load."""

from __future__ import annotations

import asyncio

import pytest

from gateway.cache import TtlCache


class Loader:
    """Counts its calls and answers only when released."""

    def __init__(self, value: str = "record") -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.value = value
        self.fail: Exception | None = None

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return self.value


async def test_concurrent_misses_share_one_load() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    loader = Loader()
    waiters = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(20)]
    await asyncio.sleep(0)
    loader.release.set()
    assert await asyncio.gather(*waiters) == ["record"] * 20
    assert loader.calls == 1
    assert await cache.get_or_load("k", loader) == "record"
    assert loader.calls == 1  # served from the cache


async def test_a_load_overtaken_by_an_invalidation_is_not_cached() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    stale = Loader("before-revocation")
    waiter = asyncio.create_task(cache.get_or_load("k", stale))
    await asyncio.sleep(0)
    cache.discard("k")  # the record changed while the load was in flight
    stale.release.set()
    assert await waiter == "before-revocation"
    fresh = Loader("after-revocation")
    fresh.release.set()
    assert await cache.get_or_load("k", fresh) == "after-revocation"
    assert fresh.calls == 1


async def test_a_failed_load_reaches_every_waiter_and_caches_nothing() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    loader = Loader()
    loader.fail = ConnectionError("redis down")
    waiters = [asyncio.create_task(cache.get_or_load("k", loader)) for _ in range(3)]
    await asyncio.sleep(0)
    loader.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, ConnectionError) for result in results)
    loader.fail = None
    assert await cache.get_or_load("k", loader) == "record"
    assert loader.calls == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl=60)
    loader = Loader()
    first = asyncio.create_task(cache.get_or_load("k", loader))
    second = asyncio.create_task(cache.get_or_load("k", loader))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    loader.release.set()
    assert await second == "record"
    assert loader.calls == 1


async def test_entries_expire_after_the_ttl() -> None:
    cache: TtlCache[str, str] = TtlCache(ttl=0.0)
    loader = Loader()
    loader.release.set()
    await cache.get_or_load("k", loader)
    await asyncio.sleep(0.001)
    await cache.get_or_load("k", loader)
    assert loader.calls == 2
