"""A small in-process TTL cache, and the pub/sub listener that keeps it true.

Warm tenants and keys cost no Redis round trip. The CLI and admin API announce every change on
`keys.INVALIDATION_CHANNEL`; each gateway drops what the message names (everything, to be safe,
when it cannot tell), and clears all caches whenever its subscription is (re)established, since
messages sent while it was away are lost. The TTL bounds staleness if all else fails.
"""

from __future__ import annotations

import asyncio
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


class TtlCache(Generic[K, V]):
    """Maps keys to values that expire `ttl` seconds after they were stored.

    `get_or_load` makes concurrent misses of one key share a single load (when an entry expires
    under load, Redis sees one GET, not one per waiting request), and a load that an
    invalidation overtook returns its value to its callers without caching it.
    """

    def __init__(self, ttl: float, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[K, tuple[float, V]] = {}
        self._loading: dict[K, asyncio.Task[V]] = {}
        self._generation = 0

    async def get_or_load(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        entry = self._entries.get(key)
        if entry is not None and entry[0] >= time.monotonic():
            return entry[1]
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
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires < time.monotonic():
            self._entries.pop(key, None)
            return False, None
        return True, value

    def store(self, key: K, value: V) -> None:
        if len(self._entries) >= self.max_entries:
            self._entries.clear()  # crude but bounded; a full cache is refilled from Redis
        self._entries[key] = (time.monotonic() + self.ttl, value)

    def discard(self, key: K) -> None:
        self._generation += 1
        self._entries.pop(key, None)
        self._loading.pop(key, None)

    def discard_where(self, predicate: Callable[[K, V], bool]) -> None:
        self._generation += 1
        self._loading.clear()
        for key in [k for k, (_, v) in self._entries.items() if predicate(k, v)]:
            self._entries.pop(key, None)

    def clear(self) -> None:
        self._generation += 1
        self._entries.clear()
        self._loading.clear()

    def __len__(self) -> int:
        return len(self._entries)


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
