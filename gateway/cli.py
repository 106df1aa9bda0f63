"""The `gateway` command: `serve`, and the admin groups `clients`, `keys`, `usage`, `domains`,
`journal` and `plugins` (`gateway COMMAND --help` for each).

Exit codes: 0 success, 2 usage error (argparse), 1 any other failure with a one-line reason on
stderr. Commands that print records take `--json`. With no `GATEWAY_REDIS_URL`, admin commands
use the embedded Redis under `var/` (the running gateway's, or one started for the command).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import re
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway import __version__
from gateway.cli_text import fields_text, key_state
from gateway.config import Settings, load_settings, read_or_create_token, resolve_secret
from gateway.demo import DEMO_ADMIN_TOKEN_FILE
from gateway.domains import (
    add_domain,
    challenge_name,
    challenge_value,
    lookup_name,
    verify_domain,
)
from gateway.errors import GatewayError, InvalidRequestError
from gateway.handlers.registry import needs_upstream_url, provider_names
from gateway.health_cli import client_health
from gateway.journal.cli import add_journal_commands
from gateway.keys_service import issue_key
from gateway.limits.cli import add_limit_arguments, limit_changes, limits_text, usage_report
from gateway.plugins.cli import add_plugin_commands
from gateway.policy_cli import add_policy_arguments, apply_policy_arguments
from gateway.redis_server import embedded_url
from gateway.redis_url import redis_failure
from gateway.server import redis_for, serve
from gateway.store.records import ClientRecord
from gateway.store.redis import create_redis
from gateway.store.repositories import ApiKeyRepository, ClientRepository, DomainRepository
from gateway.tenancy import is_account_number, is_client_name
from gateway.urls import refuse_link_local

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

Command = Callable[[argparse.Namespace, Settings, Redis], Awaitable[Any]]


def account_arg(value: str) -> str:
    if not is_account_number(value):
        raise argparse.ArgumentTypeError(f"{value!r} is not an account number like 3141-5926-5359")
    return value


def client_arg(value: str) -> str:
    if not is_client_name(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a client name: lower-case letters, digits and '-' (a DNS label)"
        )
    return value


def duration_arg(value: str) -> float:
    match = _DURATION.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value!r} is not a duration like 30d, 12h or 90m")
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def url_arg(value: str) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http(s) URL")
    return value.rstrip("/")


def upstream_urls(record: ClientRecord) -> tuple[str, ...]:
    return (record.upstream_url, *(f.url for f in record.policy.fallbacks))


def emit(args: argparse.Namespace, data: Any, text: str) -> None:
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def _client_text(record: dict[str, Any]) -> str:
    upstream = record["upstream_url"] or "-"
    return f"{record['hostname']}  provider={record['provider']}  upstream={upstream}"


async def clients_add(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    if args.provider not in provider_names():
        raise InvalidRequestError(
            f"unknown provider {args.provider!r}; installed: {', '.join(provider_names())}"
        )
    record = ClientRecord(
        account=args.account,
        name=args.name,
        provider=args.provider,
        upstream_url=args.upstream_url or "",
        upstream_key_env=args.upstream_key_env or "",
        upstream_key=args.upstream_key or "",
        cors_origins=tuple(args.cors_origin or ()),
    )
    record = apply_policy_arguments(record, args)
    if needs_upstream_url(args.provider) and not (args.upstream_url or record.policy.deployments):
        raise InvalidRequestError(
            f"provider {args.provider!r} needs --upstream-url (or a policy with deployments)"
        )
    limits = limit_changes(args)
    record = dataclasses.replace(record, **limits)
    refuse_link_local(upstream_urls(record), args.allow_link_local)
    await ClientRepository(redis).add(record)
    data = record.public_dict(settings.api_domain)
    emit(args, data, "added " + _client_text(data) + ("  " + limits_text(record) if limits else ""))


async def clients_update(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    repository = ClientRepository(redis)
    record = await repository.require(args.account, args.name)
    record = apply_policy_arguments(record, args)
    record = dataclasses.replace(record, **limit_changes(args))
    refuse_link_local(upstream_urls(record), args.allow_link_local)
    await repository.put(record)
    data = record.public_dict(settings.api_domain)
    emit(args, data, "updated " + _client_text(data) + "  " + limits_text(record))


async def clients_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = [
        r.public_dict(settings.api_domain) for r in await ClientRepository(redis).list(args.account)
    ]
    emit(args, records, "\n".join(_client_text(r) for r in records) or "no clients")


async def clients_show(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await ClientRepository(redis).require(args.account, args.name)
    data = record.public_dict(settings.api_domain)
    emit(args, data, fields_text({"hostname": data["hostname"], **data}, nested=("policy",)))


async def clients_health(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data, text = await client_health(redis, args.account, args.name)
    emit(args, data, text)


async def clients_remove(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await ClientRepository(redis).remove(args.account, args.name)
    data = record.public_dict(settings.api_domain)
    emit(args, data, f"removed {data['hostname']}")


async def keys_create(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    clients = ClientRepository(redis)
    for name in args.client or ():
        await clients.require(args.account, name)
    issued = await issue_key(
        ApiKeyRepository(redis),
        resolve_secret(settings),
        account=args.account,
        name=args.name,
        clients=tuple(args.client or ()),
        expires_in=args.expires_in,
        limits=limit_changes(args),
    )
    data = {**issued.record.public_dict(), "key": issued.key}
    emit(args, data, f"key id {issued.record.id}\n{issued.key}\n(shown once; store it now)")


async def keys_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = [r.public_dict() for r in await ApiKeyRepository(redis).list(args.account)]
    lines = [
        f"{r['id']}  {r['name']}  clients={','.join(r['clients']) or '*'}  {key_state(r)}"
        for r in records
    ]
    emit(args, records, "\n".join(lines) or "no keys")


async def keys_revoke(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await ApiKeyRepository(redis).revoke(args.id)
    emit(args, record.public_dict(), f"revoked {record.id}")


async def keys_update(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    repository = ApiKeyRepository(redis)
    record = await repository.require(args.id)
    record = await repository.put(dataclasses.replace(record, **limit_changes(args)))
    emit(args, record.public_dict(), f"updated {record.id}  {limits_text(record)}")


async def usage_show(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data, text = await usage_report(
        redis, time.time(), account=args.account, client=args.client, since_seconds=args.since
    )
    emit(args, data, text)


async def domains_add(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await add_domain(
        DomainRepository(redis),
        ClientRepository(redis),
        settings.api_domain,
        hostname=args.hostname,
        account=args.account,
        client=args.client,
    )
    txt = {"name": challenge_name(record.hostname), "type": "TXT", "value": challenge_value(record)}
    data = {**record.to_dict(), "dns_record": txt}
    emit(
        args,
        data,
        f"added {record.hostname} (unverified). Create this DNS record, then run "
        f"`gateway domains verify {record.hostname}`:\n"
        f'  {txt["name"]}. TXT "{txt["value"]}"',
    )


async def domains_verify(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await verify_domain(
        DomainRepository(redis),
        args.hostname,
        force=args.force,
        nameserver=args.nameserver,
        port=args.dns_port,
    )
    emit(args, record.to_dict(), f"verified {record.hostname}: it now routes to {record.client}")


async def domains_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = [r.to_dict() for r in await DomainRepository(redis).list(args.account, args.client)]
    lines = [
        f"{r['hostname']}  {r['account']}/{r['client']}  "
        f"{'verified' if r['verified'] else 'unverified'}"
        for r in records
    ]
    emit(args, records, "\n".join(lines) or "no domains")


async def domains_remove(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await DomainRepository(redis).remove(lookup_name(args.hostname))
    emit(args, record.to_dict(), f"removed {record.hostname}")


def _command(parser: argparse.ArgumentParser, func: Command, *, json_flag: bool = True) -> None:
    if json_flag:
        parser.add_argument("--json", action="store_true", help="print JSON on stdout")
    parser.set_defaults(func=func)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"gateway {__version__}")
    groups = parser.add_subparsers(dest="group", required=True, metavar="COMMAND")

    serve_parser = groups.add_parser("serve", help="run the gateway")
    serve_parser.add_argument("--host", help="address to bind (default from settings)")
    serve_parser.add_argument("--port", type=int, help="port to bind (default from settings)")
    serve_parser.add_argument("--workers", type=int, help="worker processes sharing the port")
    serve_parser.add_argument(
        "--demo", action="store_true", help="create and print the demo tenant"
    )

    clients = groups.add_parser("clients", help="manage clients").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    add = clients.add_parser("add", help="add a client")
    add.add_argument("name", type=client_arg)
    add.add_argument("--account", type=account_arg, required=True)
    add.add_argument(
        "--provider",
        required=True,
        help=f"a provider installed here: {', '.join(provider_names())}",
    )
    add.add_argument(
        "--upstream-url", type=url_arg, help="base URL, e.g. https://api.openai.com/v1"
    )
    secret_source = add.add_mutually_exclusive_group()
    secret_source.add_argument(
        "--upstream-key-env", metavar="VAR", help="read the upstream key from VAR"
    )
    secret_source.add_argument("--upstream-key", help="store the upstream key in Redis (less safe)")
    add.add_argument("--cors-origin", action="append", metavar="ORIGIN", help="repeatable")
    add_policy_arguments(add)
    add_limit_arguments(add)
    _link_local_option(add)
    _command(add, clients_add)
    update = clients.add_parser("update", help="change a client's settings and policy")
    update.add_argument("name", type=client_arg)
    update.add_argument("--account", type=account_arg, required=True)
    add_policy_arguments(update)
    _link_local_option(update)
    add_limit_arguments(update)
    _command(update, clients_update)
    listing = clients.add_parser("list", help="list clients")
    listing.add_argument("--account", type=account_arg)
    _command(listing, clients_list)
    for action, func in (("show", clients_show), ("remove", clients_remove)):
        sub = clients.add_parser(action, help=f"{action} a client")
        sub.add_argument("name", type=client_arg)
        sub.add_argument("--account", type=account_arg, required=True)
        _command(sub, func)
    health = clients.add_parser("health", help="outlier ejection of a client's deployments")
    health.add_argument("name", type=client_arg)
    health.add_argument("--account", type=account_arg, required=True)
    _command(health, clients_health)

    keys = groups.add_parser("keys", help="manage API keys").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    create = keys.add_parser("create", help="create a key (printed once)")
    create.add_argument("--account", type=account_arg, required=True)
    create.add_argument("--name", required=True, help="a label for people")
    create.add_argument(
        "--client", type=client_arg, action="append", help="limit to client (repeatable)"
    )
    create.add_argument("--expires-in", type=duration_arg, metavar="DURATION", help="e.g. 30d")
    add_limit_arguments(create)
    _command(create, keys_create)
    key_update = keys.add_parser("update", help="change a key's limits")
    key_update.add_argument("id")
    add_limit_arguments(key_update)
    _command(key_update, keys_update)
    key_list = keys.add_parser("list", help="list an account's keys")
    key_list.add_argument("--account", type=account_arg, required=True)
    _command(key_list, keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by id")
    revoke.add_argument("id")
    _command(revoke, keys_revoke)

    usage = groups.add_parser("usage", help="requests and tokens by day, client, key and model")
    usage.add_argument("--account", type=account_arg)
    usage.add_argument("--client", type=client_arg)
    usage.add_argument(
        "--since", type=duration_arg, default=7 * 86400.0, metavar="DURATION", help="default 7d"
    )
    _command(usage, usage_show)

    domains = groups.add_parser("domains", help="manage custom domains").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    dadd = domains.add_parser("add", help="claim a hostname for a client")
    dadd.add_argument("hostname")
    dadd.add_argument("--account", type=account_arg, required=True)
    dadd.add_argument("--client", type=client_arg, required=True)
    _command(dadd, domains_add)
    verify = domains.add_parser("verify", help="check the DNS TXT record and enable routing")
    verify.add_argument("hostname")
    verify.add_argument("--force", action="store_true", help="mark verified without DNS")
    verify.add_argument("--nameserver", help="ask this DNS server (IP) instead of the system's")
    verify.add_argument("--dns-port", type=int, default=53, help="port of --nameserver")
    _command(verify, domains_verify)
    dlist = domains.add_parser("list", help="list custom domains")
    dlist.add_argument("--account", type=account_arg)
    dlist.add_argument("--client", type=client_arg)
    _command(dlist, domains_list)
    dremove = domains.add_parser("remove", help="release a hostname")
    dremove.add_argument("hostname")
    _command(dremove, domains_remove)

    add_journal_commands(
        groups,
        _command,
        account_arg=account_arg,
        client_arg=client_arg,
        duration_arg=duration_arg,
    )

    def plugin_target(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("--account", type=account_arg, required=True)
        sub.add_argument("--client", type=client_arg, required=True)
        sub.set_defaults(emit=emit)

    add_plugin_commands(groups, plugin_target, _command)
    return parser


def _link_local_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-link-local",
        action="store_true",
        help="accept an upstream or fallback at a link-local address (169.254.0.0/16, fe80::/10)",
    )


def _serve(args: argparse.Namespace, settings: Settings) -> None:
    overrides = {
        key: value
        for key, value in (("host", args.host), ("port", args.port), ("workers", args.workers))
        if value is not None
    }
    settings = settings.replace(**overrides)
    if args.demo and not settings.admin_token:
        # The demo opens the dashboard too, with a private token kept beside the secret.
        token = read_or_create_token(settings.var_path / DEMO_ADMIN_TOKEN_FILE, create=True)
        settings = settings.replace(admin_token=token or "")
    serve(settings, resolve_secret(settings, create=args.demo), demo=args.demo)


def _run_admin(func: Command, args: argparse.Namespace, settings: Settings) -> None:
    async def run(url: str) -> None:
        redis = create_redis(url)
        try:
            await func(args, settings, redis)
        finally:
            await redis.aclose()

    with redis_for(settings) as live:
        asyncio.run(run(live.redis_url))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        settings = load_settings()
        if args.group == "serve":
            _serve(args, settings)
        else:
            _run_admin(args.func, args, settings)
    except GatewayError as exc:
        sys.stderr.write(f"gateway: {exc.message}\n")
        return 1
    except RedisError as exc:
        url = settings.redis_url or embedded_url(settings.var_path)
        failure = redis_failure(url, exc, configured=bool(settings.redis_url))
        sys.stderr.write(f"gateway: {failure}\n")
        return 1
    except OSError as exc:
        sys.stderr.write(f"gateway: {type(exc).__name__}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
