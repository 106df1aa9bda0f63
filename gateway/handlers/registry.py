"""The handler registry: the one table from provider name to `Provider`.

Built-in providers are listed here explicitly; third-party packages add theirs through the
entry-point group `gateway.handlers`, whose objects are factories taking `HandlerDependencies`
and returning a `Provider`. A third-party name never replaces a built-in one. Managed mode is
not a provider name of its own: `Providers.for_client` wraps the client's provider in the
managed tool loop when the client's policy says `mode: managed`. A provider that speaks OpenAI's
API gets Anthropic's `/v1/messages` by translation (`with_messages`).
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points

import structlog

from gateway.errors import InvalidRequestError, ServiceUnavailableError
from gateway.handlers.anthropic import create_anthropic_handler
from gateway.handlers.azure import create_azure_handler
from gateway.handlers.echo import create_echo_handler
from gateway.handlers.managed import create_managed_provider
from gateway.handlers.openai import create_openai_handler
from gateway.handlers.translated import messages_over_chat
from gateway.protocols import HandlerDependencies, HandlerFactory, Provider
from gateway.store.records import ClientRecord

ENTRY_POINT_GROUP = "gateway.handlers"

log = structlog.get_logger("gateway.handlers")


#: Built-in providers that forward to an upstream, so a client of theirs needs `--upstream-url`.
_NEEDS_UPSTREAM_URL = frozenset({"openai", "azure", "anthropic"})


def needs_upstream_url(provider: str) -> bool:
    return provider in _NEEDS_UPSTREAM_URL


def builtin_factories() -> dict[str, HandlerFactory]:
    return {
        "openai": create_openai_handler,
        "echo": create_echo_handler,
        "azure": create_azure_handler,
        "anthropic": create_anthropic_handler,
    }


def discover_factories() -> dict[str, HandlerFactory]:
    """Built-ins plus every `gateway.handlers` entry point that loads."""
    factories = builtin_factories()
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        if entry.name in factories:
            continue
        try:
            factories[entry.name] = entry.load()
        except Exception as exc:  # a broken plugin must not take the gateway down
            log.error("handler_load_failed", provider=entry.name, error=repr(exc))
    return factories


def provider_names() -> list[str]:
    return sorted(discover_factories())


class Providers:
    """The providers of this process, and their managed-mode wrappers (made once each)."""

    def __init__(self, providers: dict[str, Provider]) -> None:
        self.providers = providers
        self._managed: dict[str, Provider] = {}

    def get(self, name: str) -> Provider | None:
        return self.providers.get(name)

    def for_client(self, client: ClientRecord) -> Provider:
        provider = self.providers.get(client.provider)
        if provider is None:
            raise ServiceUnavailableError(
                f"provider {client.provider!r} is not installed on this gateway",
                code="provider_unavailable",
            )
        if client.policy.mode != "managed":
            return provider
        if not provider.manageable:
            raise InvalidRequestError(
                f"managed mode cannot wrap provider {client.provider!r}",
                code="managed_mode_unsupported",
            )
        managed = self._managed.get(provider.name)
        if managed is None:
            wrapped = create_managed_provider(dataclasses.replace(provider, messages=None))
            managed = self._managed[provider.name] = with_messages(wrapped)
        return managed


def with_messages(provider: Provider) -> Provider:
    """A provider that speaks OpenAI's API serves Anthropic's `/v1/messages` by translation
    (`gateway.handlers.translated`), unless it serves that route itself."""
    if provider.messages is not None or provider.api != "openai":
        return provider
    return dataclasses.replace(provider, messages=messages_over_chat(provider.chat_completions))


def create_registry(deps: HandlerDependencies) -> Providers:
    factories = discover_factories()
    return Providers({name: with_messages(factory(deps)) for name, factory in factories.items()})
