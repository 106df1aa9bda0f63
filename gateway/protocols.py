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


class ChatHandlerProtocol(Protocol):
    """Serve a managed client's chat completion (`docs/managed.md`).

    `prompt` is the latest user message's text (what plugins are selected by), `data` the
    request body after the client's policy, `plugins` the plugins selected for this request
    (`gateway.plugins.manifest.Plugin`), `functions` their function names.
    """

    async def __call__(
        self,
        user_profile: UserProfile,
        prompt: str,
        data: dict[str, Any],
        plugins: list[Any] | None,
        functions: list[str] | None,
    ) -> OpenAICompatibleChatCompletionResponseType: ...


@dataclasses.dataclass(frozen=True, slots=True)
class Provider:
    """The handlers one provider name stands for (the registry's values)."""

    name: str
    chat_completions: OpenAICompatiblePassthroughProtocol
    models: ModelsProtocol
    #: Further OpenAI endpoints, for providers that serve them (None: the gateway answers
    #: 400 `endpoint_not_supported`). Same signature as `chat_completions`.
    completions: OpenAICompatiblePassthroughProtocol | None = None
    embeddings: OpenAICompatiblePassthroughProtocol | None = None
    responses: OpenAICompatiblePassthroughProtocol | None = None
