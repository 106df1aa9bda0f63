"""The `openai` provider: a passthrough to any OpenAI-compatible upstream.

The request body goes out byte for byte as the tenant sent it (unless a policy rewrote it);
the gateway injects the upstream key and drops the tenant's credentials and hop-by-hop headers.
"""

from __future__ import annotations

import os
import time
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from gateway.auth import UserProfile
from gateway.context import context_of
from gateway.errors import UpstreamError
from gateway.handlers.registry import HandlerDependencies
from gateway.protocols import OpenAICompatibleChatCompletionResponseType, Provider
from gateway.store.records import ClientRecord
from gateway.upstream import forward_request_headers, relay, upstream_errors


def upstream_key(client: ClientRecord) -> str | None:
    """The key to present upstream: from the named environment variable, else the stored one."""
    if client.upstream_key_env:
        value = os.environ.get(client.upstream_key_env)
        if not value:
            raise UpstreamError(
                f"the gateway has no upstream key for this client: variable "
                f"{client.upstream_key_env} is not set",
                code="upstream_key_missing",
            )
        return value
    return client.upstream_key or None


class OpenAIPassthrough:
    """Forwards chat completions and model listings to the client's upstream."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    def _target(self, client: ClientRecord, path: str) -> str:
        if not client.upstream_url:
            raise UpstreamError("this client has no upstream URL", code="upstream_not_configured")
        return client.upstream_url.rstrip("/") + path

    def _headers(self, request: web.Request, client: ClientRecord) -> dict[str, str] | Any:
        ctx = context_of(request)
        extra = [("x-request-id", ctx.request_id)]
        key = upstream_key(client)
        if key:
            extra.append(("Authorization", f"Bearer {key}"))
        return forward_request_headers(request.headers, extra)

    async def chat_completions(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType:
        ctx = context_of(request)
        assert ctx.client is not None
        url = self._target(ctx.client, "/chat/completions")
        body = ctx.raw_body or orjson.dumps(data)
        headers = self._headers(request, ctx.client)
        headers["Content-Type"] = "application/json"
        async with upstream_errors(url):
            ctx.upstream_started = time.perf_counter()
            async with self.session.post(url, data=body, headers=headers) as upstream:
                return await relay(request, upstream, ctx)

    async def models(
        self, request: web.Request, user_profile: UserProfile
    ) -> OpenAICompatibleChatCompletionResponseType:
        ctx = context_of(request)
        assert ctx.client is not None
        url = self._target(ctx.client, "/models")
        async with upstream_errors(url):
            ctx.upstream_started = time.perf_counter()
            async with self.session.get(url, headers=self._headers(request, ctx.client)) as up:
                return await relay(request, up, ctx)


def create_openai_handler(deps: HandlerDependencies) -> Provider:
    handler = OpenAIPassthrough(deps.session)
    return Provider(name="openai", chat_completions=handler.chat_completions, models=handler.models)
