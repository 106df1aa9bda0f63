"""`create_app(settings)`: wiring only. Resources open in `cleanup_ctx` and unwind in reverse."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
from collections.abc import AsyncIterator

from aiohttp import web
from redis.asyncio import RedisCluster

from gateway import appkeys
from gateway.auth import KeyVerifier
from gateway.cache import InvalidationListener, TtlCache
from gateway.config import Settings
from gateway.errors import ConfigError
from gateway.handlers.registry import create_registry
from gateway.journal.redact import RedactionPolicy
from gateway.journal.writer import JournalOptions, JournalWriter
from gateway.limits.admin import LimiterCollector
from gateway.limits.limiter import RateLimiter
from gateway.limits.metering import Metering
from gateway.limits.usage import UsageRecorder
from gateway.metrics import GatewayMetrics, RoutingCollector
from gateway.middlewares import request_middleware, stamp_response
from gateway.protocols import HandlerDependencies
from gateway.routes import add_routes
from gateway.routing import Router, outlier_settings
from gateway.store.health import HealthBoard, HealthPublisher
from gateway.store.records import ApiKeyRecord, ClientRecord
from gateway.store.redis import create_redis
from gateway.store.repositories import ApiKeyRepository, ClientRepository, DomainRepository
from gateway.tenancy import TenantResolver
from gateway.upstream.transport import UpstreamTransport, create_upstream_session
from gateway.urls import public_url

#: Longest wait at start-up for the cache-invalidation subscription.
SUBSCRIBE_WAIT = 2.0


def parse_trusted_proxies(value: str) -> tuple[appkeys.Network, ...]:
    networks = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError as exc:
            raise ConfigError(f"trusted_proxies: {item!r} is not an IP address or network") from exc
    return tuple(networks)


def create_app(settings: Settings, secret: str) -> web.Application:
    """The gateway application; `settings.redis_url` must name a reachable-or-not Redis."""
    if not settings.redis_url:
        raise ConfigError("create_app needs settings.redis_url (serve starts an embedded Redis)")
    app = web.Application(middlewares=[request_middleware], client_max_size=settings.max_body_bytes)
    app[appkeys.SETTINGS] = settings
    app[appkeys.METRICS] = GatewayMetrics()
    app[appkeys.SECRET] = secret
    app[appkeys.TRUSTED_PROXIES] = parse_trusted_proxies(settings.trusted_proxies)
    app.on_response_prepare.append(stamp_response)
    # The journal after metering: it closes first, so the records it drains at shutdown still
    # reach the usage tally before that is flushed.
    app.cleanup_ctx.extend([_redis_ctx, _upstream_ctx, _tenancy_ctx, _metering_ctx, _journal_ctx])
    add_routes(app)
    return app


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    redis = create_redis(app[appkeys.SETTINGS].redis_url)
    if isinstance(redis, RedisCluster):
        # Learn the slot map now: pub/sub on a cluster client that has not is a KeyError.
        await redis.initialize()
    app[appkeys.REDIS] = redis
    yield
    await redis.aclose()


async def _upstream_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    session = create_upstream_session(settings)
    app[appkeys.UPSTREAM_SESSION] = session
    router = Router(outlier_settings(settings))
    publisher = HealthPublisher(HealthBoard(app[appkeys.REDIS]), router)
    router.on_change = publisher.changed
    app[appkeys.METRICS].registry.register(RoutingCollector(router))
    transport = UpstreamTransport(session, settings, router)
    app[appkeys.PROVIDERS] = create_registry(HandlerDependencies(settings, transport))
    yield
    await publisher.drain()
    await session.close()


async def _tenancy_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    redis = app[appkeys.REDIS]
    client_cache: TtlCache[str, ClientRecord | None] = TtlCache(settings.cache_ttl)
    key_cache: TtlCache[str, ApiKeyRecord | None] = TtlCache(settings.cache_ttl)
    app[appkeys.RESOLVER] = TenantResolver(
        ClientRepository(redis), DomainRepository(redis), settings.api_domain, client_cache
    )
    app[appkeys.VERIFIER] = KeyVerifier(ApiKeyRepository(redis), app[appkeys.SECRET], key_cache)

    def invalidate(message: str) -> None:
        kind, _, ident = message.partition(":")
        if kind == "key":
            key_cache.discard(ident)
        elif kind == "client":
            # Hosts map to clients many-to-one (default and custom names): drop every entry
            # that resolved to this client, and every cached miss, which it may now fill.
            account, _, name = ident.partition("/")
            client_cache.discard_where(
                lambda _host, rec: rec is None or (rec.account, rec.name) == (account, name)
            )
        elif kind == "domain":
            client_cache.clear()
        else:
            client_cache.clear()
            key_cache.clear()

    listener = InvalidationListener(redis, invalidate)
    task = asyncio.create_task(listener.run(), name="cache-invalidation")
    # Serve only once announcements are heard, so no change can slip past a warm cache; a
    # Redis that is down at start does not hold the gateway up for long.
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(listener.subscribed.wait(), SUBSCRIBE_WAIT)
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _journal_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    options = JournalOptions(
        policy=RedactionPolicy.from_settings(
            settings.journal_redact_headers, settings.journal_redact_paths
        ),
        capture_limit=settings.journal_capture_bytes,
        max_records=settings.journal_max_records,
        retention=settings.journal_retention,
        queue_size=settings.journal_queue_size,
        queue_bytes=settings.journal_queue_bytes,
        persist=settings.journal_enabled,
    )
    metrics = app[appkeys.METRICS]
    usage = app[appkeys.METERING].usage
    writer = JournalWriter(
        app[appkeys.REDIS],
        settings.var_path / "journal",
        options,
        observers=(metrics.observe, usage.observe),
        store=public_url(settings.redis_url),
    )
    metrics.watch_journal(writer.counters)
    app[appkeys.JOURNAL] = writer
    writer.start()
    yield
    await writer.close()


async def _metering_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[appkeys.SETTINGS]
    redis = app[appkeys.REDIS]
    limiter = RateLimiter(
        redis, fail_open=settings.rate_limit_fail_open, lease_seconds=settings.rate_limit_lease
    )
    usage = UsageRecorder(
        redis,
        retention_days=settings.usage_retention_days,
        flush_interval=settings.usage_flush_interval,
    )
    metering = Metering(limiter, usage, app[appkeys.VERIFIER])
    app[appkeys.METERING] = metering
    app[appkeys.METRICS].registry.register(LimiterCollector(metering))
    usage.start()
    yield
    await metering.close()
