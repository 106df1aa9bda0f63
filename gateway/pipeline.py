"""The one request pipeline: the stages every tenant route runs, in order, defined here only.

    (middleware)  request id, timing, errors in the caller's API shape, journal + access log
    identify      Host (or /tenants/{client}.{account}/ path) -> client; key -> user profile;
                  client -> provider (managed mode wraps it)
    read          the body: size, type, JSON, the route's required fields
    rewrite       the client's policy (the raw bytes go upstream when nothing changed); a stream
                  that may carry usage asks for it (`stream_options.include_usage`)
    limits        check and reserve (rpm, tpm, concurrency, token and dollar budgets; account,
                  client, key and end user), after pricing the request (`gateway.costs`)
    handler       the provider's handler for the route: provider work only
    deliver       send what the handler returned; capture the body or stream (`gateway.relay`)
    settle        real usage against the reservation (`gateway.usage`)

A route is a row of `TENANT_ROUTES`; `gateway.routes` registers each under `/v1/...` and, with
`path_routing`, under `/tenants/{tenant}/v1/...`. Views are made by `pipeline_view`, and
`is_pipeline_view` lets a test prove that every tenant route is served here. No view or handler
calls a stage itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import ipaddress
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from aiohttp import web
from redis.exceptions import RedisError

from gateway import appkeys
from gateway.auth import UserProfile, presented_key
from gateway.end_users import end_user_of
from gateway.errors import InvalidRequestError, ServiceUnavailableError
from gateway.exchange import Addressing, ApiFormat, Exchange, Identity, exchange_of
from gateway.protocols import OpenAICompatibleChatCompletionResponseType, PipelineHandler, Provider
from gateway.relay import deliver
from gateway.rewrite import Endpoint, alias_listing, apply_policy
from gateway.store.records import ClientRecord
from gateway.validation import (
    read_json_object,
    validate_chat_request,
    validate_messages_request,
    validate_model_request,
)

#: Reads the parsed body; returns (model, stream) or raises InvalidRequestError.
Validator = Callable[[dict[str, Any]], tuple[str | None, bool]]


@dataclasses.dataclass(frozen=True, slots=True)
class TenantRoute:
    """One tenant endpoint: where it is, what its body must hold, what serves it."""

    method: Literal["GET", "POST"]
    path: str
    endpoint: Endpoint
    #: None: the route has no body (GET).
    validate: Validator | None
    api: ApiFormat = "openai"
    #: A stream on this route can carry usage when `stream_options.include_usage` is set.
    stream_usage_option: bool = False


def _required(*names: str) -> Validator:
    def validate(data: dict[str, Any]) -> tuple[str | None, bool]:
        return validate_model_request(data, names)

    return validate


TENANT_ROUTES: tuple[TenantRoute, ...] = (
    TenantRoute("POST", "/v1/chat/completions", "chat", validate_chat_request, "openai", True),
    TenantRoute("POST", "/v1/completions", "completions", _required("prompt"), "openai", True),
    TenantRoute("POST", "/v1/embeddings", "embeddings", _required("input")),
    TenantRoute("POST", "/v1/responses", "responses", _required()),
    TenantRoute("GET", "/v1/models", "models", None),
    TenantRoute("POST", "/v1/messages", "messages", validate_messages_request, "anthropic"),
    TenantRoute(
        "POST",
        "/v1/messages/count_tokens",
        "count_tokens",
        functools.partial(validate_messages_request, max_tokens=False),
        "anthropic",
    ),
)

_VIEWS: weakref.WeakSet[Callable[..., Any]] = weakref.WeakSet()


def pipeline_view(route: TenantRoute) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler that runs `route` through the pipeline."""

    async def view(request: web.Request) -> web.StreamResponse:
        return await run(request, route)

    view.__name__ = f"pipeline_{route.endpoint}"
    _VIEWS.add(view)
    return view


def is_pipeline_view(handler: Any) -> bool:
    return handler in _VIEWS


async def run(request: web.Request, route: TenantRoute) -> web.StreamResponse:
    """Every stage after the middleware's, in order."""
    app = request.app
    exchange = exchange_of(request)
    exchange.api = route.api
    exchange.endpoint = route.endpoint
    identity = await identify(request, exchange)
    data = await read_body(request, exchange, route)
    exchange.end_user_named(end_user_of(request.headers, data))
    handler = handler_for(identity, route)
    data, answer = rewrite(identity, route, exchange, data)
    metering = app[appkeys.METERING]
    admission = await metering.admit(identity, exchange, data)
    try:
        result = answer if answer is not None else await handler(request, identity.user, data)
        response = await deliver(
            request, exchange, result, app[appkeys.SETTINGS].journal_capture_bytes
        )
    except asyncio.CancelledError:
        metering.settle_later(admission, exchange)
        raise
    except BaseException:
        with contextlib.suppress(Exception):
            await metering.settle(admission, exchange, None)
        raise
    await metering.settle(admission, exchange, response)
    return response


# -- identify ------------------------------------------------------------------------------------
def effective_host(request: web.Request) -> str:
    """The Host header, or X-Forwarded-Host when the peer is a trusted proxy."""
    forwarded = request.headers.get("X-Forwarded-Host")
    if forwarded and peer_is_trusted(request):
        return forwarded.split(",", 1)[0].strip()
    return request.headers.get("Host", "")


def peer_is_trusted(request: web.Request) -> bool:
    proxies = request.app[appkeys.TRUSTED_PROXIES]
    if not proxies or not request.remote:
        return False
    try:
        peer = ipaddress.ip_address(request.remote)
    except ValueError:
        return False
    return any(peer in net for net in proxies)


def tenant_host(request: web.Request) -> tuple[str, Addressing]:
    """The hostname that names the tenant: from a `/tenants/{client}.{account}` path, else the
    Host header (custom domains are reached by Host only)."""
    tenant = request.match_info.get("tenant")
    if tenant is not None:
        return f"{tenant}.{request.app[appkeys.SETTINGS].api_domain}", "path"
    return effective_host(request), "host"


async def resolve_client(
    request: web.Request, exchange: Exchange
) -> tuple[ClientRecord, Addressing]:
    host, addressing = tenant_host(request)
    try:
        client = await request.app[appkeys.RESOLVER].resolve(host)
    except RedisError as exc:
        raise ServiceUnavailableError("the gateway's store is unavailable; retry shortly") from exc
    exchange.tenant_resolved(client, addressing)
    return client, addressing


async def identify(request: web.Request, exchange: Exchange) -> Identity:
    """Host to client, key to user profile, client to provider."""
    client, addressing = await resolve_client(request, exchange)
    try:
        user = await request.app[appkeys.VERIFIER].authenticate(
            presented_key(request.headers), client
        )
    except RedisError as exc:
        raise ServiceUnavailableError("the gateway's store is unavailable; retry shortly") from exc
    provider = request.app[appkeys.PROVIDERS].for_client(client)
    identity = Identity(client=client, user=user, provider=provider, addressing=addressing)
    exchange.identified(identity)
    return identity


# -- read ----------------------------------------------------------------------------------------
async def read_body(request: web.Request, exchange: Exchange, route: TenantRoute) -> dict[str, Any]:
    """The parsed, checked body (an empty dict for a route without one)."""
    if route.validate is None:
        return {}
    limit = request.app[appkeys.SETTINGS].max_body_bytes
    timeout = request.app[appkeys.SETTINGS].body_timeout
    data = await read_json_object(request, limit, exchange.body_received, timeout)
    model, stream = route.validate(data)
    exchange.body_parsed(data, model, stream)
    return data


def handler_for(identity: Identity, route: TenantRoute) -> PipelineHandler:
    provider = identity.provider
    if route.endpoint == "models":
        return _models_handler(provider)
    handler = provider.handler(route.endpoint)
    if handler is None:
        raise InvalidRequestError(
            f"{route.path} is not served for this client (provider {provider.name!r})",
            code="endpoint_not_supported",
        )
    return handler


def _models_handler(provider: Provider) -> PipelineHandler:
    async def models(
        request: web.Request, user: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await provider.models(request, user)

    return models


# -- rewrite -------------------------------------------------------------------------------------
def wants_usage(data: dict[str, Any]) -> bool:
    """Did the caller ask for the stream's usage chunk (`stream_options.include_usage`)?"""
    options = data.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def rewrite(
    identity: Identity, route: TenantRoute, exchange: Exchange, data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The body the handler gets, and the answer when the policy answers itself (a client
    with model aliases lists them as its models)."""
    policy = identity.client.policy
    if route.endpoint == "models":
        return data, alias_listing(policy) if policy.aliases else None
    rewritten = apply_policy(policy, route.endpoint, data)
    if rewritten is not None:
        data = rewritten
        exchange.body_rewritten(data)
    if route.stream_usage_option and exchange.stream and not wants_usage(data):
        # The journal and the limits always get a stream's usage: ask for it, and hide that
        # chunk from the caller (the relay drops it).
        options = data.get("stream_options")
        options = (
            {**options, "include_usage": True}
            if isinstance(options, dict)
            else {"include_usage": True}
        )
        data = {**data, "stream_options": options}
        exchange.body_rewritten(data)
        exchange.usage_requested()
    return data, None
