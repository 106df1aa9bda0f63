"""Unauthenticated traffic cannot grow memory or Redis without bound (issue 10, item 5): the
tenancy cache is an LRU bounded by entries and bytes whose misses cannot evict warm tenants,
junk Hosts never reach the cache or Redis, and a record of a request that never authenticated
keeps at most 4 KB of its headers."""

from __future__ import annotations

import orjson
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway import appkeys
from gateway.cache import TtlCache
from gateway.journal.redact import UNAUTHENTICATED_HEADER_BYTES
from tests.conftest import Tenant
from tests.support.helpers import raw_request
from tests.support.journal_helpers import wait_for_record


def test_a_flood_of_misses_never_evicts_warm_entries() -> None:
    cache: TtlCache[str, str | None] = TtlCache(60.0, max_entries=100, max_bytes=1 << 30)
    for index in range(10):
        cache.store(f"warm-{index}", "record")
    for index in range(10_000):
        cache.store(f"miss-{index}", None)
    assert all(cache.lookup(f"warm-{index}") == (True, "record") for index in range(10))
    assert len(cache) <= 100 + 25
    assert cache.lookup("miss-9999") == (True, None)  # the newest misses are kept
    assert cache.lookup("miss-0") == (False, None)


def test_entries_are_evicted_least_recently_used_first_by_count_and_bytes() -> None:
    cache: TtlCache[str, str] = TtlCache(60.0, max_entries=3, max_bytes=1 << 30)
    for name in ("a", "b", "c"):
        cache.store(name, name)
    assert cache.lookup("a") == (True, "a")  # a is now the most recently used
    cache.store("d", "d")
    assert [cache.lookup(n)[0] for n in "abcd"] == [True, False, True, True]
    by_bytes: TtlCache[str, str] = TtlCache(60.0, max_entries=1000, max_bytes=20_000)
    for index in range(100):
        by_bytes.store(f"{index:04d}" + "x" * 1000, "v")
    assert by_bytes.bytes <= 20_000
    assert 5 < len(by_bytes) < 20


async def test_junk_and_unknown_hosts_cannot_fill_the_cache_or_evict_a_tenant(
    gateway: TestServer, tenant: Tenant
) -> None:
    resolver = gateway.app[appkeys.RESOLVER]
    resolver.cache = TtlCache(60.0, max_entries=40, max_bytes=1 << 30)
    status, _, _ = await raw_request(gateway, "GET", "/v1/models", host=tenant.hostname, key="x")
    assert status == 401  # resolved (and cached), then the key was refused
    junk = ["a" * 8000, "x" * 254, "bad_label.example.com", "-x.example.com", "a..b", "[::1]"]
    for index, host in enumerate(junk * 5):
        status, _, _ = await raw_request(gateway, "GET", f"/v1/models?{index}", host=host)
        assert status == 404
    assert len(resolver.cache) == 1  # junk never reached the cache (nor Redis)
    for index in range(300):
        host = f"nobody-{index}.3141-5926-5359.api.localhost"
        status, _, _ = await raw_request(gateway, "GET", "/v1/models", host=host)
        assert status == 404
    assert resolver.cache.lookup(tenant.hostname)[0]
    assert len(resolver.cache) <= 40 + 10


async def test_records_of_unauthenticated_requests_keep_at_most_4kb_of_headers(
    gateway: TestServer, tenant: Tenant, redis: Redis
) -> None:
    big = {f"x-junk-{index}": "j" * 4000 for index in range(5)}
    for host, key in (("nobody.3141-5926-5359.api.localhost", None), (tenant.hostname, "bad")):
        _, headers, _ = await raw_request(
            gateway, "GET", "/v1/models", host=host, key=key, headers=big
        )
        record = await wait_for_record(redis, headers["x-request-id"])
        kept = record["request"]["headers"]
        assert sum(len(k) + len(v) for k, v in kept.items()) <= UNAUTHENTICATED_HEADER_BYTES
        assert record["request"]["headers_truncated"] is True
        assert len(orjson.dumps(record)) < 8 * 1024
    # An authenticated request keeps all of its headers.
    _, headers, _ = await raw_request(
        gateway, "GET", "/v1/models", host=tenant.hostname, key=tenant.key, headers=big
    )
    record = await wait_for_record(redis, headers["x-request-id"])
    assert all(record["request"]["headers"][name] == value for name, value in big.items())
    assert "headers_truncated" not in record["request"]
