"""`HealthBoard`: each gateway instance's view of a client's deployments, shared through Redis.

Outlier ejection is per instance (in memory, `gateway.routing`); `gateway clients health NAME`
runs in another process, so every instance writes its view to one hash per client when a
deployment is ejected or comes back: field = the instance, value = JSON with wall-clock times,
so a reader can tell how long each ejection has left without asking the instance. The hash
expires a day after the last change, so instances that stopped do not linger for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from gateway.routing import ClientKey, DeploymentHealth, Router
from gateway.store import keys

log = structlog.get_logger("gateway.routing")

#: Seconds a client's health hash outlives its last change.
HEALTH_TTL = 86400


def instance_name() -> str:
    """This process, as the health board names it."""
    return f"{socket.gethostname()}:{os.getpid()}"


def health_entry(health: Sequence[DeploymentHealth], now: float | None = None) -> dict[str, Any]:
    """What an instance publishes: its view, with ejections as wall-clock end times."""
    wall = time.time() if now is None else now
    return {
        "at": round(wall, 3),
        "deployments": [
            {
                "url": item.url,
                "ejected_until": round(wall + item.ejected_for, 3) if item.ejected else None,
                "failures": item.failures,
                "ejections": item.ejections,
            }
            for item in health
        ],
    }


class HealthBoard:
    def __init__(self, redis: Redis, instance: str | None = None) -> None:
        self.redis = redis
        self.instance = instance or instance_name()

    async def publish(self, client: ClientKey, health: Sequence[DeploymentHealth]) -> None:
        key = keys.client_health(*client)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, self.instance, orjson.dumps(health_entry(health)))
            pipe.expire(key, HEALTH_TTL)
            await pipe.execute()

    async def read(self, client: ClientKey) -> dict[str, dict[str, Any]]:
        """Every instance's last published view of `client`, by instance name."""
        raw = await self.redis.hgetall(keys.client_health(*client))
        out = {}
        for name, value in sorted(raw.items()):
            instance = name.decode() if isinstance(name, bytes) else str(name)
            out[instance] = orjson.loads(value)
        return out


class HealthPublisher:
    """Writes a router's view of a client to the board whenever an ejection starts or ends,
    off the request path (a task per change; a failed write is logged, never raised)."""

    def __init__(self, board: HealthBoard, router: Router) -> None:
        self.board = board
        self.router = router
        self._tasks: set[asyncio.Task[None]] = set()

    def changed(self, client: ClientKey, url: str, ejected: bool) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a scrape from a thread): the next change publishes
            return
        task = loop.create_task(self._publish(client))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _publish(self, client: ClientKey) -> None:
        try:
            await self.board.publish(client, self.router.health_of(client))
        except Exception as exc:  # Redis down must not touch a request
            log.warning("health_publish_failed", client=client[1], error=type(exc).__name__)

    async def drain(self) -> None:
        """Let the writes under way finish (at shutdown)."""
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task
