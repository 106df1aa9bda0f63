"""`gateway accounts | prices | admin-tokens | audit`: the tenancy and money commands.

Each command calls the service layer (`gateway/services/`) as the operator, like the admin
API's operator token, so the CLI and the API share every rule and every write is audited.
`gateway/cli.py` wires them in with its own argument types and printer.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from gateway.config import Settings, resolve_secret
from gateway.costs import parse_price
from gateway.limits.cli import add_limit_arguments, limit_changes, limits_text
from gateway.services import accounts, admin_tokens, audit, prices
from gateway.services.context import OPERATOR_CLI, AdminContext

ArgType = Callable[[str], Any]
Emit = Callable[[argparse.Namespace, Any, str], None]
AddCommand = Callable[..., None]


def operator_context(settings: Settings, redis: Redis, *, secret: bool = False) -> AdminContext:
    """The CLI acts as the operator; the key-hashing secret is read only by the commands that
    hash something (keys, admin tokens)."""
    return AdminContext(
        redis, OPERATOR_CLI, settings.api_domain, resolve_secret(settings) if secret else ""
    )


def price_arg(value: str) -> str:
    try:
        parse_price(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return value


def _account_line(data: dict[str, Any]) -> str:
    return f"{data['account']}  {data['name'] or '-'}  {limits_text(data)}"


def _price_line(data: dict[str, Any]) -> str:
    where = data["account"] or "*"
    if data["client"]:
        where += "/" + data["client"]
    cached = data["cached_input_per_mtok"] or "-"
    return (
        f"{data['model']}  {data['level']} {where}  input={data['input_per_mtok']}  "
        f"cached_input={cached}  output={data['output_per_mtok']}  (USD per 1M tokens)"
    )


def _token_line(data: dict[str, Any]) -> str:
    state = "revoked" if data["revoked_at"] else "active"
    mode = "read-only" if data["read_only"] else "read-write"
    return f"{data['id']}  {data['account']}  {data['name'] or '-'}  {mode}  {state}"


def _audit_line(data: dict[str, Any]) -> str:
    return (
        f"{data['id']}  {data['actor']} via {data['via']}  {data['action']}  "
        f"{data['account'] or '-'}  {data['target']}"
    )


async def accounts_add(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    changes = {"name": args.name or "", **limit_changes(args)}
    data = await accounts.add_account(operator_context(settings, redis), args.account, changes)
    args.emit(args, data, "added " + _account_line(data))


async def accounts_update(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    changes = limit_changes(args)
    if args.name is not None:
        changes["name"] = args.name
    data = await accounts.update_account(operator_context(settings, redis), args.account, changes)
    args.emit(args, data, "updated " + _account_line(data))


async def accounts_show(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await accounts.show_account(operator_context(settings, redis), args.account)
    args.emit(args, data, "\n".join(f"{k}: {v}" for k, v in data.items()))


async def accounts_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = await accounts.list_accounts(operator_context(settings, redis))
    args.emit(args, records, "\n".join(map(_account_line, records)) or "no accounts")


async def accounts_remove(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await accounts.remove_account(operator_context(settings, redis), args.account)
    args.emit(args, data, f"removed {data['account']}")


async def prices_set(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await prices.set_price(
        operator_context(settings, redis),
        args.model,
        input_per_mtok=args.input_per_mtok,
        output_per_mtok=args.output_per_mtok,
        cached_input_per_mtok=args.cached_input_per_mtok,
        account=args.account,
        client=args.client,
    )
    args.emit(args, data, "set " + _price_line(data))


async def prices_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = await prices.list_prices(operator_context(settings, redis), args.account)
    args.emit(args, records, "\n".join(map(_price_line, records)) or "no price overrides")


async def prices_remove(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await prices.remove_price(
        operator_context(settings, redis), args.model, args.account, args.client
    )
    args.emit(args, data, "removed " + _price_line(data))


async def tokens_create(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await admin_tokens.create_admin_token(
        operator_context(settings, redis, secret=True),
        args.account,
        name=args.name or "",
        read_only=args.read_only,
        expires_in=args.expires_in,
    )
    args.emit(args, data, f"admin token {data['id']}\n{data['token']}\n(shown once; store it now)")


async def tokens_list(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = await admin_tokens.list_admin_tokens(operator_context(settings, redis), args.account)
    args.emit(args, records, "\n".join(map(_token_line, records)) or "no admin tokens")


async def tokens_revoke(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    data = await admin_tokens.revoke_admin_token(operator_context(settings, redis), args.id)
    args.emit(args, data, f"revoked admin token {data['id']}")


async def audit_tail(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    records = await audit.audit_tail(operator_context(settings, redis), args.n, args.account)
    args.emit(args, records, "\n".join(map(_audit_line, reversed(records))) or "no audit records")


def add_admin_commands(
    groups: Any,
    command: AddCommand,
    emit: Emit,
    *,
    account_arg: ArgType,
    client_arg: ArgType,
    duration_arg: ArgType,
) -> None:
    def sub(parent: Any, name: str, func: Any, help_text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(name, help=help_text)
        parser.set_defaults(emit=emit)
        command(parser, func)
        return parser

    def group(name: str, help_text: str) -> Any:
        return groups.add_parser(name, help=help_text).add_subparsers(
            dest="action", required=True, metavar="ACTION"
        )

    acct = group("accounts", "manage accounts and their account-wide limits")
    for name, func, help_text in (
        ("add", accounts_add, "add an account"),
        ("update", accounts_update, "change an account's name or limits"),
    ):
        parser = sub(acct, name, func, help_text)
        parser.add_argument("account", type=account_arg)
        parser.add_argument("--name", help="a name for people")
        add_limit_arguments(parser)
    sub(acct, "list", accounts_list, "list accounts")
    for name, func in (("show", accounts_show), ("remove", accounts_remove)):
        sub(acct, name, func, f"{name} an account").add_argument("account", type=account_arg)

    price = group("prices", "override model prices (USD per million tokens)")
    setp = sub(price, "set", prices_set, "set a model's price (most specific wins)")
    setp.add_argument("model")
    setp.add_argument("--input-per-mtok", type=price_arg, required=True, metavar="USD")
    setp.add_argument("--output-per-mtok", type=price_arg, required=True, metavar="USD")
    setp.add_argument("--cached-input-per-mtok", type=price_arg, metavar="USD")
    for parser in (setp, sub(price, "remove", prices_remove, "remove a price override")):
        if parser is not setp:
            parser.add_argument("model")
        parser.add_argument("--account", type=account_arg, help="for this account only")
        parser.add_argument("--client", type=client_arg, help="for this client only")
    sub(price, "list", prices_list, "list price overrides").add_argument(
        "--account", type=account_arg, help="the global ones and this account's"
    )

    tokens = group("admin-tokens", "account-scoped admin API tokens")
    create = sub(tokens, "create", tokens_create, "create a token (printed once)")
    create.add_argument("--account", type=account_arg, required=True)
    create.add_argument("--name", help="a label for people")
    create.add_argument("--read-only", action="store_true", help="reads only, no writes")
    create.add_argument("--expires-in", type=duration_arg, metavar="DURATION", help="e.g. 30d")
    sub(tokens, "list", tokens_list, "list admin tokens").add_argument(
        "--account", type=account_arg
    )
    sub(tokens, "revoke", tokens_revoke, "revoke a token by id").add_argument("id")

    aud = group("audit", "the audit stream of admin writes")
    tail = sub(aud, "tail", audit_tail, "the newest audit records, oldest first")
    tail.add_argument("-n", type=int, default=50, help="how many (default 50)")
    tail.add_argument("--account", type=account_arg)
