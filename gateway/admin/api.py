"""The admin REST API under `/admin/v1/` (docs/admin-api.md, `/admin/v1/openapi.json`).

Thin views over the service layer, which holds every rule and writes the audit stream: each
view reads its path, query and JSON body, calls one service function, and answers the record
(201 on create) or `{"data": [...]}` for a list. Every route under `/accounts/{account}` first
checks that the actor may see the account and that it exists, so another account's resources
answer the same 404 as missing ones. Errors have OpenAI's shape (the admin middleware).
"""

from __future__ import annotations

import re
import time
from typing import Any

import orjson
from aiohttp import web

from gateway.admin.openapi import openapi_document
from gateway.admin.views import admin_context
from gateway.errors import InvalidRequestError, NotFoundError
from gateway.journal.reader import JournalFilter, JournalReader, check_cursor, check_status
from gateway.limits.admin import since_days
from gateway.limits.usage import days_back, read_end_user_usage, read_usage, totals
from gateway.services import accounts, admin_tokens, audit, clients, domains, keys, prices
from gateway.services.context import AdminContext
from gateway.store.accounts import AccountRepository

PREFIX = "/admin/v1"
_DURATION = re.compile(r"^(\d{1,6})([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_MAX_PAGE = 500


def _json(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def _list(items: list[dict[str, Any]], **extra: Any) -> web.Response:
    return _json({"data": items, **extra})


async def _body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()
    try:
        data = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(f"the body is not JSON: {exc}", code="invalid_json") from exc
    if not isinstance(data, dict):
        raise InvalidRequestError("the body must be a JSON object", code="invalid_json")
    return data


def expires_in(value: Any) -> float | None:
    """`expires_in`: seconds (a number) or a duration like `30d`; absent: never."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    match = _DURATION.match(value.strip()) if isinstance(value, str) else None
    if not match or int(match.group(1)) == 0:
        raise InvalidRequestError(
            "expires_in must be seconds or a duration like 30d, 12h or 90m", param="expires_in"
        )
    return int(match.group(1)) * _SECONDS[match.group(2)]


async def _account_ctx(request: web.Request) -> tuple[AdminContext, str]:
    """The context, and the path's account once it is known to exist and be the actor's."""
    ctx = admin_context(request)
    account = request.match_info["account"]
    ctx.see(account)
    await AccountRepository(ctx.redis).require(account)
    return ctx, account


# --- accounts ---------------------------------------------------------------------------


async def accounts_list(request: web.Request) -> web.StreamResponse:
    return _list(await accounts.list_accounts(admin_context(request)))


async def accounts_create(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    ctx.operator_only("create accounts")
    body = await _body(request)
    number = body.pop("account", None)
    return _json(await accounts.add_account(ctx, accounts.check_account(number), body), 201)


async def account_read(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await accounts.show_account(ctx, account))


async def account_update(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await accounts.update_account(ctx, account, await _body(request)))


async def account_delete(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await accounts.remove_account(ctx, account))


# --- clients ----------------------------------------------------------------------------


async def clients_list(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _list(await clients.list_clients(ctx, account))


async def clients_create(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    body = await _body(request)
    name = clients.check_client(body.pop("name", None))
    return _json(await clients.add_client(ctx, account, name, body), 201)


async def client_read(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await clients.show_client(ctx, account, request.match_info["client"]))


async def client_update(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    name = request.match_info["client"]
    return _json(await clients.update_client(ctx, account, name, await _body(request)))


async def client_delete(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await clients.remove_client(ctx, account, request.match_info["client"]))


# --- keys -------------------------------------------------------------------------------


async def keys_list(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _list(await keys.list_keys(ctx, account))


async def keys_create(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    body = await _body(request)
    expiry = expires_in(body.pop("expires_in", None))
    return _json(await keys.create_key(ctx, account, body, expires_in=expiry), 201)


async def key_read(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await keys.show_key(ctx, request.match_info["key_id"], account))


async def key_update(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    key_id = request.match_info["key_id"]
    return _json(await keys.update_key(ctx, key_id, await _body(request), account))


async def key_delete(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await keys.revoke_key(ctx, request.match_info["key_id"], account))


# --- domains ----------------------------------------------------------------------------


async def domains_list(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _list(await domains.list_domains(ctx, account, request.query.get("client") or None))


async def domains_create(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    body = await _body(request)
    hostname, client = body.get("hostname"), body.get("client")
    if not isinstance(hostname, str) or not isinstance(client, str):
        raise InvalidRequestError("a domain needs a hostname and a client", param="hostname")
    return _json(await domains.add_domain(ctx, hostname, account, client), 201)


async def domain_read(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await domains.show_domain(ctx, request.match_info["hostname"], account))


async def domain_update(request: web.Request) -> web.StreamResponse:
    """PATCH `{"verify": true}` checks the DNS TXT record now (`"force": true`: operator)."""
    ctx, account = await _account_ctx(request)
    body = await _body(request)
    if body.get("verify") is not True or set(body) - {"verify", "force"}:
        raise InvalidRequestError(
            'a domain changes only by verification: {"verify": true}', param="verify"
        )
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise InvalidRequestError("force must be true or false", param="force")
    hostname = request.match_info["hostname"]
    return _json(await domains.verify_domain(ctx, hostname, account=account, force=force))


async def domain_delete(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    return _json(await domains.remove_domain(ctx, request.match_info["hostname"], account))


# --- usage and journal ------------------------------------------------------------------


async def account_usage(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    days = days_back(time.time(), since_days(request.query.get("since", "7d")))
    client = request.query.get("client") or None
    rows = await read_usage(ctx.redis, [account], days, client)
    end_users = await read_end_user_usage(ctx.redis, [account], days, client)
    return _list(
        [r.to_dict() for r in rows],
        totals=totals(rows),
        end_users=[r.to_dict() for r in end_users],
    )


async def account_journal(request: web.Request) -> web.StreamResponse:
    ctx, account = await _account_ctx(request)
    query = request.query
    limit = query.get("limit", "50")
    if not limit.isdigit() or not 1 <= int(limit) <= _MAX_PAGE:
        raise InvalidRequestError(f"limit must be a number from 1 to {_MAX_PAGE}", param="limit")
    status, cursor = query.get("status") or None, query.get("cursor") or None
    flt = JournalFilter(
        account=account,
        client=query.get("client") or None,
        status=check_status(status) if status else None,
        outcome=query.get("outcome") or None,
    )
    records, next_cursor = await JournalReader(ctx.redis).page(
        flt, limit=int(limit), before=check_cursor(cursor) if cursor else None
    )
    return _list(records, next_cursor=next_cursor)


async def journal_record(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    request_id = request.match_info["request_id"]
    record = await JournalReader(ctx.redis).get(request_id)
    if record is None or ctx.actor.account not in (None, record["account"]):
        raise NotFoundError(f"no journal record for request id {request_id[:80]!r}")
    return _json(record)


# --- prices, audit, admin tokens --------------------------------------------------------


def _price_scope(request: web.Request) -> tuple[str | None, str | None]:
    query = request.query
    return query.get("account") or None, query.get("client") or None


async def prices_list(request: web.Request) -> web.StreamResponse:
    account, _ = _price_scope(request)
    return _list(await prices.list_prices(admin_context(request), account))


async def prices_create(request: web.Request) -> web.StreamResponse:
    admin_context(request).operator_only("change prices")
    body = await _body(request)
    allowed = {"model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok"}
    unknown = sorted(set(body) - allowed - {"account", "client"})
    if unknown:
        raise InvalidRequestError(f"a price has no field {unknown[0]!r}", param=unknown[0])
    account, client = body.get("account"), body.get("client")
    data = await prices.set_price(
        admin_context(request),
        prices.check_model(body.get("model")),
        input_per_mtok=body.get("input_per_mtok"),
        output_per_mtok=body.get("output_per_mtok"),
        cached_input_per_mtok=body.get("cached_input_per_mtok"),
        account=None if account is None else accounts.check_account(account),
        client=None if client is None else clients.check_client(client),
    )
    return _json(data, 201)


async def price_read(request: web.Request) -> web.StreamResponse:
    account, client = _price_scope(request)
    model = request.match_info["model"]
    return _json(await prices.show_price(admin_context(request), model, account, client))


async def price_update(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    account, client = _price_scope(request)
    model = request.match_info["model"]
    current = await prices.show_price(ctx, model, account, client)
    body = await _body(request)
    allowed = {"input_per_mtok", "output_per_mtok", "cached_input_per_mtok"}
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise InvalidRequestError(f"a price's update has no field {unknown[0]!r}", param=unknown[0])
    fields = {name: body.get(name, current[name]) for name in allowed}
    return _json(await prices.set_price(ctx, model, account=account, client=client, **fields))


async def price_delete(request: web.Request) -> web.StreamResponse:
    account, client = _price_scope(request)
    model = request.match_info["model"]
    return _json(await prices.remove_price(admin_context(request), model, account, client))


async def audit_list(request: web.Request) -> web.StreamResponse:
    limit = request.query.get("limit", "50")
    if not limit.isdigit():
        raise InvalidRequestError("limit must be a number", param="limit")
    account = request.query.get("account") or None
    return _list(await audit.audit_tail(admin_context(request), int(limit), account))


async def tokens_list(request: web.Request) -> web.StreamResponse:
    account = request.query.get("account") or None
    return _list(await admin_tokens.list_admin_tokens(admin_context(request), account))


async def tokens_create(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    ctx.operator_only("create admin tokens")
    body = await _body(request)
    unknown = sorted(set(body) - {"account", "name", "read_only", "expires_in"})
    if unknown:
        raise InvalidRequestError(f"an admin token has no field {unknown[0]!r}", param=unknown[0])
    data = await admin_tokens.create_admin_token(
        ctx,
        accounts.check_account(body.get("account")),
        name=body.get("name", ""),
        read_only=body.get("read_only", False),
        expires_in=expires_in(body.get("expires_in")),
    )
    return _json(data, 201)


async def token_read(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    return _json(await admin_tokens.show_admin_token(ctx, request.match_info["token_id"]))


async def token_delete(request: web.Request) -> web.StreamResponse:
    ctx = admin_context(request)
    return _json(await admin_tokens.revoke_admin_token(ctx, request.match_info["token_id"]))


async def openapi(request: web.Request) -> web.StreamResponse:
    return _json(openapi_document())


#: (path under PREFIX, {method: view}): the whole API; the OpenAPI document lists the same.
ROUTES: tuple[tuple[str, dict[str, Any]], ...] = (
    ("/accounts", {"GET": accounts_list, "POST": accounts_create}),
    (
        "/accounts/{account}",
        {"GET": account_read, "PATCH": account_update, "DELETE": account_delete},
    ),
    ("/accounts/{account}/clients", {"GET": clients_list, "POST": clients_create}),
    (
        "/accounts/{account}/clients/{client}",
        {"GET": client_read, "PATCH": client_update, "DELETE": client_delete},
    ),
    ("/accounts/{account}/keys", {"GET": keys_list, "POST": keys_create}),
    (
        "/accounts/{account}/keys/{key_id}",
        {"GET": key_read, "PATCH": key_update, "DELETE": key_delete},
    ),
    ("/accounts/{account}/domains", {"GET": domains_list, "POST": domains_create}),
    (
        "/accounts/{account}/domains/{hostname}",
        {"GET": domain_read, "PATCH": domain_update, "DELETE": domain_delete},
    ),
    ("/accounts/{account}/usage", {"GET": account_usage}),
    ("/accounts/{account}/journal", {"GET": account_journal}),
    ("/journal/{request_id}", {"GET": journal_record}),
    ("/prices", {"GET": prices_list, "POST": prices_create}),
    ("/prices/{model}", {"GET": price_read, "PATCH": price_update, "DELETE": price_delete}),
    ("/audit", {"GET": audit_list}),
    ("/admin-tokens", {"GET": tokens_list, "POST": tokens_create}),
    ("/admin-tokens/{token_id}", {"GET": token_read, "DELETE": token_delete}),
    ("/openapi.json", {"GET": openapi}),
)


def add_api_routes(app: web.Application) -> None:
    for path, views in ROUTES:
        pattern = path.replace("{model}", "{model:.+}")  # model names may hold '/'
        for method, view in views.items():
            app.router.add_route(method, PREFIX + pattern, view)
