"""The handler registry: the one table from provider name to `Provider`.

Built-in providers are listed here explicitly; third-party packages add theirs through the
entry-point group `gateway.handlers`, whose objects are factories taking `HandlerDependencies`
and returning a `Provider`. A third-party name never replaces a built-in one. Managed mode is
not a provider name of its own: `Providers.for_client` wraps the client's provider in the
managed tool loop when the client's policy says `mode: managed`.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import structlog

from gateway.errors import InvalidRequestError, ServiceUnavailableError
from gateway.handlers.azure import create_azure_handler
from gateway.handlers.echo import create_echo_handler
from gateway.handlers.managed import create_managed_provider
from gateway.handlers.openai import create_openai_handler
from gateway.protocols import HandlerDependencies, HandlerFactory, Provider
from gateway.store.records import ClientRecord

ENTRY_POINT_GROUP = "gateway.handlers"

log = structlog.get_logger("gateway.handlers")


#: Built-in providers that forward to an upstream, so a client of theirs needs `--upstream-url`.
_NEEDS_UPSTREAM_URL = frozenset({"openai", "azure"})


def needs_upstream_url(provider: str) -> bool:
    return provider in _NEEDS_UPSTREAM_URL


def builtin_factories() -> dict[str, HandlerFactory]:
    return {
        "openai": create_openai_handler,
        "echo": create_echo_handler,
        "azure": create_azure_handler,
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
            managed = self._managed[provider.name] = create_managed_provider(provider)
        return managed


def create_registry(deps: HandlerDependencies) -> Providers:
    return Providers({name: factory(deps) for name, factory in discover_factories().items()})
