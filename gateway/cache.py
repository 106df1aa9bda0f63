"""A small in-process TTL cache (bounded, LRU), and the pub/sub listener that keeps it true.

Warm tenants and keys cost no Redis round trip. The CLI and admin API announce every change on
`keys.INVALIDATION_CHANNEL`; each gateway drops what the message names (everything, to be safe,
when it cannot tell), and clears all caches whenever its subscription is (re)established, since
messages sent while it was away are lost. The TTL bounds staleness if all else fails.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.store import keys

log = structlog.get_logger("gateway.cache")


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


#: Default bounds of one cache: entries, and estimated bytes of keys and values.
MAX_ENTRIES = 50_000
MAX_BYTES = 32 * 1024 * 1024
#: Share of both bounds that cached misses (`None` values) may use.
MISS_SHARE = 0.25


def estimate_size(key: Hashable, value: object) -> int:
    """A cheap upper-ish estimate of what an entry holds: its key's text, a record's fields."""
    size = 96 + (len(key) if isinstance(key, str) else 32)
    if value is not None:
        fields = getattr(value, "__slots__", ())
        size += 64 + sum(_field_size(getattr(value, name, None)) for name in fields)
    return size


def _field_size(value: object) -> int:
    if isinstance(value, str | bytes):
        return 48 + len(value)
    if isinstance(value, tuple | list | frozenset | set):
        return 56 + sum(_field_size(item) for item in value)
    return 32


class _Segment(Generic[K, V]):
    """One LRU list with its own entry and byte bounds."""

    def __init__(self, max_entries: int, max_bytes: int) -> None:
        self.max_entries = max(1, max_entries)
        self.max_bytes = max(1, max_bytes)
        self.entries: collections.OrderedDict[K, tuple[float, V, int]] = collections.OrderedDict()
        self.bytes = 0

    def put(self, key: K, expires: float, value: V, size: int) -> None:
        self.pop(key)
        self.entries[key] = (expires, value, size)
        self.bytes += size
        while len(self.entries) > self.max_entries or (
            self.bytes > self.max_bytes and len(self.entries) > 1
        ):
            self.bytes -= self.entries.popitem(last=False)[1][2]

    def pop(self, key: K) -> None:
        entry = self.entries.pop(key, None)
        if entry is not None:
            self.bytes -= entry[2]


class TtlCache(Generic[K, V]):
    """Maps keys to values that expire `ttl` seconds after they were stored, bounded by entries
    and by estimated bytes, least recently used first out.

    Cached misses (`None`: an unknown host, an unknown key id) live in their own LRU segment
    with `MISS_SHARE` of the bounds, so a flood of distinct misses evicts only other misses,
    never a warm tenant. `get_or_load` makes concurrent misses of one key share a single load
    (when an entry expires under load, Redis sees one GET, not one per waiting request), and a
    load that an invalidation overtook returns its value to its callers without caching it.
    """

    def __init__(
        self, ttl: float, max_entries: int = MAX_ENTRIES, max_bytes: int = MAX_BYTES
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._hits: _Segment[K, V] = _Segment(max_entries, max_bytes)
        self._misses: _Segment[K, V] = _Segment(
            int(max_entries * MISS_SHARE), int(max_bytes * MISS_SHARE)
        )
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._generation = 0

    @property
    def bytes(self) -> int:
        return self._hits.bytes + self._misses.bytes

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        found, value = self.lookup(key)
        if found:
            return value  # type: ignore[return-value]
        task = self._loading.get(key)
        if task is None:
            load_task = self._load(key, load, self._generation)
            task = asyncio.get_running_loop().create_task(load_task)
            task.add_done_callback(_retrieve)
            self._loading[key] = task
        return await asyncio.shield(task)

    async def _load(self, key: K, load: Callable[[], Awaitable[V]], generation: int) -> V:
        try:
            value = await load()
        finally:
            if self._loading.get(key) is asyncio.current_task():
                del self._loading[key]
        if generation == self._generation:
            self.store(key, value)
        return value

    def lookup(self, key: K) -> tuple[bool, V | None]:
        for segment in (self._hits, self._misses):
            entry = segment.entries.get(key)
            if entry is None:
                continue
            if entry[0] < time.monotonic():
                segment.pop(key)
                return False, None
            segment.entries.move_to_end(key)
            return True, entry[1]
        return False, None

    def store(self, key: K, value: V) -> None:
        target, other = (self._misses, self._hits) if value is None else (self._hits, self._misses)
        other.pop(key)
        target.put(key, time.monotonic() + self.ttl, value, estimate_size(key, value))

    def discard(self, key: K) -> None:
        self._generation += 1
        self._hits.pop(key)
        self._misses.pop(key)
        self._loading.pop(key, None)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        self._generation += 1
        self._loading.clear()
        for segment in (self._hits, self._misses):
            for key in [k for k, (_, v, _) in segment.entries.items() if predicate(k, v)]:
                segment.pop(key)

    def clear(self) -> None:
        self._generation += 1
        for segment in (self._hits, self._misses):
            segment.entries.clear()
            segment.bytes = 0
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._hits.entries) + len(self._misses.entries)


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a shared load's failure as seen even when every waiter was cancelled."""
    if not task.cancelled():
        task.exception()


class InvalidationListener:
    """Subscribes to the invalidation channel and calls `on_message` for each message.

    While Redis is away it retries with a doubling delay (`retry_delay` up to `max_delay`, which
    stays near the cache TTL so invalidations resume soon after Redis does), and logs
    `invalidation_listener_lost` at once and then at most once per `log_interval`, with the
    number of failed attempts since the last line; `invalidation_listener_restored` says how many
    attempts failed in all.
    """

    def __init__(
        self,
        redis: Redis,
        on_message: Callable[[str], None],
        retry_delay: float = 0.5,
        *,
        max_delay: float = 5.0,
        log_interval: float = 30.0,
    ) -> None:
        self.redis = redis
        self.on_message = on_message
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.log_interval = log_interval
        self.subscribed = asyncio.Event()
        self.failures = 0  # failed attempts since the last successful subscription

    async def run(self) -> None:
        delay = self.retry_delay
        unlogged = 0
        logged_at = -math.inf
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                if self.subscribed.is_set():  # it had been up: a fresh outage
                    self.subscribed.clear()
                    delay, logged_at, unlogged = self.retry_delay, -math.inf, 0
                self.failures += 1
                unlogged += 1
                now = time.monotonic()
                if now - logged_at >= self.log_interval:
                    log.warning(
                        "invalidation_listener_lost",
                        error=str(exc),
                        failures=unlogged,
                        retry_in=round(delay, 3),
                    )
                    unlogged, logged_at = 0, now
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_delay)

    def _restored(self) -> None:
        if self.failures:
            log.info("invalidation_listener_restored", failures=self.failures)
        self.failures = 0

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(keys.INVALIDATION_CHANNEL)
            # Anything published while we were not subscribed is lost: start from nothing.
            self.on_message("*")
            self._restored()
            self.subscribed.set()
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                data = message["data"]
                self.on_message(data.decode() if isinstance(data, bytes) else str(data))
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
