"""The handler Protocols: what a provider's code must look like to serve a client.

A handler conforms structurally; there is no base class to inherit. It may return a JSON payload
(a chat completion as a dict), which the gateway renders, or an aiohttp response it built itself
(a stream, or a relayed upstream reply). Errors are raised as `gateway.errors.GatewayError`, never
returned, and are rendered in OpenAI's error shape by the error middleware.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeAlias

from aiohttp import web

from gateway.auth import UserProfile

#: A chat completion (or any OpenAI JSON payload) as plain data.
ChatCompletionPayload: TypeAlias = dict[str, Any]

#: What a passthrough handler returns: a payload to render, or a response it made.
OpenAICompatibleChatCompletionResponseType: TypeAlias = ChatCompletionPayload | web.StreamResponse


class OpenAICompatiblePassthroughProtocol(Protocol):
    """Serve `POST /v1/chat/completions` for a client.

    `request` is the aiohttp request (its raw body and client record are in the request context),
    `user_profile` says who is calling, `data` is the parsed, validated request body.
    """

    async def __call__(
        self, request: web.Request, user_profile: UserProfile, data: dict[str, Any]
    ) -> OpenAICompatibleChatCompletionResponseType: ...


class ModelsProtocol(Protocol):
    """Serve `GET /v1/models` for a client."""

    async def __call__(
        self, request: web.Request, user_profile: UserProfile
    ) -> OpenAICompatibleChatCompletionResponseType: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Provider:
    """The handlers one provider name stands for (the registry's values)."""

    name: str
    chat_completions: OpenAICompatiblePassthroughProtocol
    models: ModelsProtocol
