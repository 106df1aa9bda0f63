"""`create_redis(url)`: the one way the gateway opens a Redis client (server or cluster)."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis, RedisCluster

from gateway.store.packing import use_hiredis_packing

#: URL schemes that name a Redis Cluster (any one node; the rest are discovered).
CLUSTER_SCHEMES = ("redis+cluster://", "rediss+cluster://")


def create_redis(url: str) -> Redis:
    """A client for `url`; `redis+cluster://host:port` (or `rediss+cluster://`) is a Redis
    Cluster. The cluster client speaks the same commands for everything the gateway does
    (single-key commands, same-slot scripts, non-transactional pipelines, pub/sub), so it is
    handed around under the `Redis` type. A server's commands are packed by hiredis
    (`packing.py`); the cluster client keeps redis-py's packer."""
    if url.startswith(CLUSTER_SCHEMES):
        cluster = RedisCluster.from_url(
            url.replace("+cluster", "", 1), socket_connect_timeout=2.0, socket_timeout=5.0
        )
        return cast(Redis, cluster)
    return use_hiredis_packing(Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=5.0))
