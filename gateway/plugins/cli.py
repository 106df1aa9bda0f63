"""`gateway plugins add FILE | list | remove NAME`: a client's managed-mode plugins.

Plugins are stored in the client's policy (`policy.plugins`), so they travel with the cached
client record and need no Redis round trip per request.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from redis.asyncio import Redis

from gateway.config import Settings
from gateway.errors import InvalidRequestError, NotFoundError, PolicyError
from gateway.plugins.manifest import parse_plugin, read_manifest
from gateway.store.repositories import ClientRepository

Emit = Callable[[argparse.Namespace, Any, str], None]


async def plugins_add(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    repository = ClientRepository(redis)
    record = await repository.require(args.account, args.client)
    try:
        manifest = read_manifest(args.file)
    except PolicyError as exc:
        raise InvalidRequestError(f"plugin manifest: {exc}") from exc
    others = [p for p in record.policy.plugins if p.get("name") != manifest["name"]]
    policy = dataclasses.replace(record.policy, plugins=(*others, manifest))
    await repository.put(dataclasses.replace(record, policy=policy))
    plugin = parse_plugin(manifest)
    args.emit(
        args, plugin.summary(), f"added plugin {plugin.name} ({plugin.kind}) to {args.client}"
    )


async def plugins_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await ClientRepository(redis).require(args.account, args.client)
    plugins = [parse_plugin(p).summary() for p in record.policy.plugins]
    lines = [
        f"{p['name']}  {p['kind']}  "
        + ("always" if p["always"] else "terms=" + ",".join(p["search_terms"]))
        for p in plugins
    ]
    args.emit(args, plugins, "\n".join(lines) or "no plugins")


async def plugins_remove(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    repository = ClientRepository(redis)
    record = await repository.require(args.account, args.client)
    kept = tuple(p for p in record.policy.plugins if p.get("name") != args.name)
    if len(kept) == len(record.policy.plugins):
        raise NotFoundError(
            f"client {args.client} has no plugin {args.name!r}", code="plugin_not_found"
        )
    policy = dataclasses.replace(record.policy, plugins=kept)
    await repository.put(dataclasses.replace(record, policy=policy))
    args.emit(args, {"removed": args.name}, f"removed plugin {args.name} from {args.client}")


def add_plugin_commands(
    groups: Any,
    target: Callable[[argparse.ArgumentParser], None],
    command: Callable[..., None],
) -> None:
    """`target(parser)` adds --account/--client; `command(parser, func)` registers `func`."""
    plugins = groups.add_parser("plugins", help="manage managed-mode plugins").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = plugins.add_parser("add", help="add or replace a plugin from a YAML or JSON manifest")
    add.add_argument("file", type=Path)
    target(add)
    command(add, plugins_add)
    listing = plugins.add_parser("list", help="list a client's plugins")
    target(listing)
    command(listing, plugins_list)
    remove = plugins.add_parser("remove", help="remove a plugin by name")
    remove.add_argument("name")
    target(remove)
    command(remove, plugins_remove)
