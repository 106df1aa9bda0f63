"""The handler registry: provider name to `Provider`.

Built-in providers are listed here explicitly; third-party packages add theirs through the
entry-point group `gateway.handlers`, whose objects are factories taking `HandlerDependencies`
and returning a `Provider`. A third-party name never replaces a built-in one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from importlib.metadata import entry_points

import aiohttp
import structlog

from gateway.config import Settings
from gateway.protocols import Provider

ENTRY_POINT_GROUP = "gateway.handlers"

log = structlog.get_logger("gateway.handlers")


@dataclasses.dataclass(frozen=True, slots=True)
class HandlerDependencies:
    """What a handler factory may use: settings and the process's pooled upstream session."""

    settings: Settings
    session: aiohttp.ClientSession


HandlerFactory = Callable[[HandlerDependencies], Provider]


def builtin_factories() -> dict[str, HandlerFactory]:
    from gateway.handlers.azure import create_azure_handler
    from gateway.handlers.echo import create_echo_handler
    from gateway.handlers.openai import create_openai_handler

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


def create_registry(deps: HandlerDependencies) -> dict[str, Provider]:
    return {name: factory(deps) for name, factory in discover_factories().items()}
