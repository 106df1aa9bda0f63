"""The handler Protocols: what a provider's code must look like to serve a client.

A handler conforms structurally; there is no base class to inherit, and it needs to know nothing
of the gateway's internals. It does provider work only and returns one of:
- a JSON payload (a dict), which the gateway sends as the response body;
- an `EventStream` (an async iterator of events), which the gateway's one SSE writer sends:
  each dict becomes a `data:` event (Anthropic routes: `event: <type>` too), bytes go out as
  they are, and OpenAI routes end with `data: [DONE]`;
- an `UpstreamReply` from the gateway's upstream transport (`HandlerDependencies.transport`),
  which the gateway relays (JSON or SSE, chunk by chunk);
- a `web.Response` it built (its body is journaled).
Capture, time to first byte, usage, limits and the journal are the pipeline's work, for every
handler alike. Errors are raised as `gateway.errors.GatewayError`, never returned, and are
rendered in the route's API error shape.

Handlers are found by provider name in the registry (`gateway.handlers.registry`); third-party
packages add factories (`HandlerDependencies -> Provider`) under the `gateway.handlers`
entry-point group.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from aiohttp import web

from gateway.auth import UserProfile
from gateway.config import Settings
from gateway.rewrite import Endpoint
from gateway.upstream.reply import UpstreamReply

if TYPE_CHECKING:
    from gateway.upstream.transport import UpstreamTransport

#: A chat completion (or any OpenAI JSON payload) as plain data.
ChatCompletionPayload: TypeAlias = dict[str, Any]

#: A stream a handler renders itself: events (dicts) or raw SSE bytes, in order.
EventStream: TypeAlias = AsyncIterator[dict[str, Any] | bytes]

#: What a handler returns (see the module docstring).
OpenAICompatibleChatCompletionResponseType: TypeAlias = (
    ChatCompletionPayload | EventStream | UpstreamReply | web.StreamResponse
)


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
    #: Anthropic's `/v1/messages` and `/v1/messages/count_tokens` (same signature). The registry
    #: serves `messages` by translation for a provider that speaks OpenAI's API and has none.
    messages: OpenAICompatiblePassthroughProtocol | None = None
    count_tokens: OpenAICompatiblePassthroughProtocol | None = None
    #: The API the provider's upstream speaks (the journal's `upstream_api`).
    api: Literal["openai", "anthropic"] = "openai"
    #: Can managed mode wrap this provider (its chat handler answers non-streamed JSON)?
    manageable: bool = True

    def handler(self, endpoint: Endpoint) -> OpenAICompatiblePassthroughProtocol | None:
        """The handler for a body-carrying endpoint, None when the provider does not serve it."""
        if endpoint == "chat":
            return self.chat_completions
        if endpoint == "models":
            return None
        handler: OpenAICompatiblePassthroughProtocol | None = getattr(self, endpoint)
        return handler


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerDependencies:
    """What a handler factory may use: settings and the process's upstream transport (its
    pooled session, retries, fallbacks and error mapping)."""

    settings: Settings
    transport: UpstreamTransport


HandlerFactory: TypeAlias = Callable[[HandlerDependencies], Provider]

#: A handler as the pipeline calls it (models handlers are adapted to this shape).
PipelineHandler: TypeAlias = Callable[
    [web.Request, UserProfile, dict[str, Any]],
    Awaitable[OpenAICompatibleChatCompletionResponseType],
]
