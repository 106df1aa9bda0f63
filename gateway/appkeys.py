"""Every `web.AppKey` of the gateway application, in one place."""

from __future__ import annotations

import ipaddress

import aiohttp
from aiohttp import web
from redis.asyncio import Redis

from gateway.auth import KeyVerifier
from gateway.config import Settings
from gateway.handlers.registry import Providers
from gateway.journal.writer import JournalWriter
from gateway.limits.metering import Metering
from gateway.metrics import GatewayMetrics
from gateway.tenancy import TenantResolver

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

SETTINGS = web.AppKey("settings", Settings)
SECRET = web.AppKey("secret", str)
TRUSTED_PROXIES = web.AppKey("trusted_proxies", tuple[Network, ...])
REDIS = web.AppKey("redis", Redis)
UPSTREAM_SESSION = web.AppKey("upstream_session", aiohttp.ClientSession)
PROVIDERS = web.AppKey("providers", Providers)
RESOLVER = web.AppKey("resolver", TenantResolver)
VERIFIER = web.AppKey("verifier", KeyVerifier)
JOURNAL = web.AppKey("journal", JournalWriter)
METRICS = web.AppKey("metrics", GatewayMetrics)
ADMIN_TOKEN = web.AppKey("admin_token", str)
ADMIN_REDIS = web.AppKey("admin_redis", Redis)
METERING = web.AppKey("metering", Metering)
