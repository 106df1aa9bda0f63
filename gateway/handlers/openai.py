"""The `openai` provider: a passthrough to any OpenAI-compatible upstream.

The request body goes out byte for byte as the tenant sent it (unless a policy rewrote it);
the gateway injects the upstream key and the policy's extra headers, and drops the tenant's
credentials and hop-by-hop headers. Its targets are the client's deployments (or its own
upstream, then its fallbacks), sent through the one upstream transport, which routes among them.
`azure` subclasses this with another URL shape and header.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web
from multidict import CIMultiDict

from gateway.auth import UserProfile
from gateway.balancing import Deployment
from gateway.errors import UpstreamError
from gateway.exchange import exchange_of
from gateway.protocols import (
    HandlerDependencies,
    OpenAICompatibleChatCompletionResponseType,
    Provider,
)
from gateway.store.records import ClientRecord
from gateway.upstream.deployments import deployments_of
from gateway.upstream.headers import forward_request_headers
from gateway.upstream.transport import Target, UpstreamTransport
from gateway.urls import without_userinfo


def resolve_key(key_env: str, key: str) -> str | None:
    """The key to present upstream: from the named environment variable, else the stored one."""
    if key_env:
        value = os.environ.get(key_env)
        if not value:
            raise UpstreamError(
                f"the gateway has no upstream key for this client: variable {key_env} is not set",
                code="upstream_key_missing",
            )
        return value
    return key or None


def upstreams_of(client: ClientRecord) -> list[Deployment]:
    """The client's deployments, or its own upstream then its fallbacks (`deployments_of`)."""
    return deployments_of(client)


def _as_sent(deployment: Deployment, data: dict[str, Any] | None) -> dict[str, Any] | None:
    """`data` with the model `deployment` knows it by (an Azure URL names it)."""
    model = (data or {}).get("model")
    if data is None or not isinstance(model, str) or model not in deployment.models:
        return data
    return {**data, "model": deployment.upstream_model(model)}


class OpenAIPassthrough:
    """Forwards requests to the client's upstreams, OpenAI's URL layout and bearer key."""

    def __init__(self, transport: UpstreamTransport) -> None:
        self.transport = transport

    def url(self, client: ClientRecord, base: str, path: str, data: dict[str, Any] | None) -> str:
        """`path` under the base URL's path; a query the base carries (some upstreams take the
        key there) stays the query."""
        if "?" not in base:
            return base.rstrip("/") + path
        parts = urlsplit(base)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + path))

    def auth_headers(self, key: str) -> list[tuple[str, str]]:
        return [("Authorization", f"Bearer {key}")]

    def targets(
        self, request: web.Request, client: ClientRecord, path: str, data: dict[str, Any] | None
    ) -> list[Target]:
        request_id = exchange_of(request).request_id
        targets = []
        for upstream in upstreams_of(client):
            extra = [("x-request-id", request_id)]
            key = resolve_key(upstream.key_env, upstream.key)
            if key:
                extra.extend(self.auth_headers(key))
            extra.extend(client.policy.upstream_headers.items())
            headers: CIMultiDict[str] = forward_request_headers(request.headers, extra)
            if data is not None:
                headers["Content-Type"] = "application/json"
            url = self.url(client, upstream.url, path, _as_sent(upstream, data))
            if key:  # the key is the credential: userinfo beside it is a ValueError in aiohttp
                url = without_userinfo(url)
            label = upstream.public_url()
            targets.append(Target(url=url, headers=headers, label=label, deployment=upstream))
        return targets

    async def forward(
        self, request: web.Request, path: str, data: dict[str, Any] | None
    ) -> OpenAICompatibleChatCompletionResponseType:
        """POST `data` (or GET when None) to `path` at each upstream in turn."""
        exchange = exchange_of(request)
        identity = exchange.identity
        if identity is None:  # pragma: no cover - the pipeline identifies before any handler
            raise UpstreamError("the request has no tenant", code="upstream_not_configured")
        client = identity.client
        targets = self.targets(request, client, path, data)
        return await self.transport.forward(exchange, client, targets, data)

    async def chat_completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await self.forward(request, "/chat/completions", data)

    async def completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await self.forward(request, "/completions", data)

    async def embeddings(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await self.forward(request, "/embeddings", data)

    async def responses(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await self.forward(request, "/responses", data)

    async def models(
        self, request: web.Request, user_profile: UserProfile
    ) -> OpenAICompatibleChatCompletionResponseType:
        return await self.forward(request, "/models", None)

    def provider(self, name: str) -> Provider:
        return Provider(
            name=name,
            chat_completions=self.chat_completions,
            models=self.models,
            completions=self.completions,
            embeddings=self.embeddings,
            responses=self.responses,
        )


def create_openai_handler(deps: HandlerDependencies) -> Provider:
    return OpenAIPassthrough(deps.transport).provider("openai")
