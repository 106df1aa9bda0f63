"""The `anthropic` provider: an upstream that speaks Anthropic's Messages API.

`/v1/messages` and `/v1/messages/count_tokens` go upstream byte for byte (unless a policy
rewrote the body) and come back as they arrive, through the one transport: the gateway presents
its upstream key as `x-api-key`, keeps the caller's `anthropic-version` (default
`ANTHROPIC_VERSION`) and `anthropic-beta`, and drops the caller's credentials. OpenAI callers
(`/v1/chat/completions`) are served through `gateway.handlers.translated.chat_over_messages`;
`/v1/models` lists the upstream's models in OpenAI's shape. Targets are the client's deployments
(or its own upstream, then its fallbacks), as for `openai`; the transport routes among them.

The upstream URL is the API's root (`https://api.anthropic.com`); one that already ends in
`/v1` is taken as it is.
"""

from __future__ import annotations

import datetime
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from gateway.auth import UserProfile
from gateway.errors import UpstreamError
from gateway.exchange import exchange_of
from gateway.handlers.openai import resolve_key, upstreams_of
from gateway.handlers.translated import chat_over_messages
from gateway.protocols import (
    HandlerDependencies,
    OpenAICompatibleChatCompletionResponseType,
    Provider,
)
from gateway.store.records import ClientRecord
from gateway.upstream.headers import forward_request_headers
from gateway.upstream.reply import UpstreamReply
from gateway.upstream.transport import Target, UpstreamTransport
from gateway.urls import without_userinfo

#: The API version sent when the caller names none (an OpenAI SDK never does).
ANTHROPIC_VERSION = "2023-06-01"

Result = OpenAICompatibleChatCompletionResponseType


def _epoch(value: Any) -> int:
    """An RFC 3339 time as Unix seconds (0 when it is not one)."""
    try:
        return int(datetime.datetime.fromisoformat(str(value)).timestamp())
    except ValueError:
        return 0


def api_url(base: str, path: str) -> str:
    root = base.rstrip("/")
    return (root if root.endswith("/v1") else root + "/v1") + path


class AnthropicPassthrough:
    def __init__(self, transport: UpstreamTransport) -> None:
        self.transport = transport

    def targets(self, request: web.Request, client: ClientRecord, path: str) -> list[Target]:
        request_id = exchange_of(request).request_id
        targets = []
        for upstream in upstreams_of(client):
            extra = [("x-request-id", request_id)]
            key = resolve_key(upstream.key_env, upstream.key)
            if key:
                extra.append(("x-api-key", key))
            extra.extend(client.policy.upstream_headers.items())
            headers: CIMultiDict[str] = forward_request_headers(request.headers, extra)
            headers.setdefault("anthropic-version", ANTHROPIC_VERSION)
            headers["Content-Type"] = "application/json"
            url = api_url(upstream.url, path)
            if key:  # the key is the credential: userinfo beside it is a ValueError in aiohttp
                url = without_userinfo(url)
            label = upstream.public_url()
            targets.append(Target(url=url, headers=headers, label=label, deployment=upstream))
        return targets

    async def forward(self, request: web.Request, path: str, data: dict[str, Any] | None) -> Result:
        exchange = exchange_of(request)
        identity = exchange.identity
        if identity is None:  # pragma: no cover - the pipeline identifies before any handler
            raise UpstreamError("the request has no tenant", code="upstream_not_configured")
        client = identity.client
        targets = self.targets(request, client, path)
        return await self.transport.forward(exchange, client, targets, data)

    async def messages(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> Result:
        return await self.forward(request, "/messages", data)

    async def count_tokens(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> Result:
        return await self.forward(request, "/messages/count_tokens", data)

    async def models(self, request: web.Request, user_profile: UserProfile) -> Result:
        """Anthropic's model list (`{"data": [{"id", "created_at", ...}]}`) as OpenAI's; an
        upstream error is relayed (it is in Anthropic's shape, as the relay accepts)."""
        reply = await self.forward(request, "/models", None)
        if not isinstance(reply, UpstreamReply) or reply.status >= 400:
            return reply
        try:
            listing = await reply.json_object()
        finally:
            reply.close()
        models = listing.get("data") if isinstance(listing.get("data"), list) else []
        assert isinstance(models, list)
        return {
            "object": "list",
            "data": [
                {
                    "id": str(model.get("id", "")),
                    "object": "model",
                    "created": _epoch(model.get("created_at")),
                    "owned_by": "anthropic",
                }
                for model in models
                if isinstance(model, dict)
            ],
        }

    def provider(self, name: str) -> Provider:
        return Provider(
            name=name,
            chat_completions=chat_over_messages(self.messages),
            models=self.models,
            messages=self.messages,
            count_tokens=self.count_tokens,
            api="anthropic",
            manageable=False,
        )


def create_anthropic_handler(deps: HandlerDependencies) -> Provider:
    return AnthropicPassthrough(deps.transport).provider("anthropic")
