"""The OpenAPI 3.1 document of the admin REST API, served at `/admin/v1/openapi.json`.

Built from tables here rather than from the views, so it is the contract the views are tested
against (tests/test_admin_api.py validates live answers with it), not a restatement of them.
Schemas are JSON Schema 2020-12, as OpenAPI 3.1 has them.
"""

from __future__ import annotations

import functools
from typing import Any

from gateway import __version__

_NUM = {"type": ["number", "null"], "minimum": 0}
_INT = {"type": ["integer", "null"], "minimum": 0}
_STR = {"type": "string"}
_TIME = {"type": "number"}
_OPT_TIME = {"type": ["number", "null"]}
_OPT_STR = {"type": ["string", "null"]}
_LIMITS = {
    "rpm": _INT,
    "tpm": _INT,
    "max_concurrent": _INT,
    "tokens_per_day": _INT,
    "tokens_per_month": _INT,
    "usd_per_day": _NUM,
    "usd_per_month": _NUM,
}


def _obj(properties: dict[str, Any], *, extra: bool = False) -> dict[str, Any]:
    return {
        "type": "object",
        "required": sorted(properties),
        "properties": properties,
        "additionalProperties": extra,
    }


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_KEY = {
    "id": _STR,
    "account": _STR,
    "name": _STR,
    "clients": {"type": "array", "items": _STR},
    "created_at": _TIME,
    "expires_at": _OPT_TIME,
    "revoked_at": _OPT_TIME,
    **_LIMITS,
}
_DOMAIN = {
    "hostname": _STR,
    "account": _STR,
    "client": _STR,
    "token": _STR,
    "verified": {"type": "boolean"},
    "created_at": _TIME,
    "verified_at": _OPT_TIME,
}
_TOKEN = {
    "id": _STR,
    "account": _STR,
    "name": _STR,
    "read_only": {"type": "boolean"},
    "created_at": _TIME,
    "expires_at": _OPT_TIME,
    "revoked_at": _OPT_TIME,
}
_OPT_OBJ = {"type": ["object", "null"]}

SCHEMAS: dict[str, Any] = {
    "Error": _obj(
        {"error": _obj({"message": _STR, "type": _STR, "param": _OPT_STR, "code": _OPT_STR})}
    ),
    "Account": _obj({"account": _STR, "name": _STR, "created_at": _TIME, **_LIMITS}),
    "Client": _obj(
        {
            "account": _STR,
            "name": _STR,
            "hostname": _STR,
            "provider": _STR,
            "upstream_url": _STR,
            "upstream_key_env": _STR,
            "upstream_key": {"enum": ["", "***"]},
            "cors_origins": {"type": "array", "items": _STR},
            "created_at": _TIME,
            "policy": {"type": "object"},
            "end_user_rpm": _INT,
            "end_user_usd_per_day": _NUM,
            **_LIMITS,
        }
    ),
    "Key": _obj(_KEY),
    "KeyCreated": _obj({**_KEY, "key": {"type": "string", "pattern": "^gwk_"}}),
    "Domain": _obj(_DOMAIN),
    "DomainCreated": _obj(
        {**_DOMAIN, "dns_record": _obj({"name": _STR, "type": _STR, "value": _STR})}
    ),
    "Price": _obj(
        {
            "model": _STR,
            "input_per_mtok": _STR,
            "output_per_mtok": _STR,
            "cached_input_per_mtok": _OPT_STR,
            "account": _OPT_STR,
            "client": _OPT_STR,
            "level": {"enum": ["global", "account", "client"]},
            "updated_at": _TIME,
        }
    ),
    "AdminToken": _obj(_TOKEN),
    "AdminTokenCreated": _obj({**_TOKEN, "token": {"type": "string", "pattern": "^gwa_"}}),
    "AuditRecord": _obj(
        {
            "id": _STR,
            "at": _TIME,
            "actor": {"type": "string", "pattern": "^(operator|token:[0-9a-f]+)$"},
            "via": {"enum": ["cli", "api"]},
            "action": _STR,
            "account": _OPT_STR,
            "target": _STR,
            "before": _OPT_OBJ,
            "after": _OPT_OBJ,
        }
    ),
    "UsageRow": _obj(
        {
            "day": _STR,
            "account": _STR,
            "client": _STR,
            "key_id": _STR,
            "model": _STR,
            "requests": {"type": "integer"},
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "cost_usd": {"type": "number"},
        }
    ),
    "EndUserRow": _obj(
        {
            "day": _STR,
            "account": _STR,
            "client": _STR,
            "model": _STR,
            "end_user": _STR,
            "requests": {"type": "integer"},
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "cost_usd": {"type": "number"},
        }
    ),
    "JournalRecord": {
        "type": "object",
        "description": "A journal record: docs/journal.schema.json",
        "required": ["v", "request_id", "account", "status"],
    },
}

_LISTS = {
    "AccountList": "Account",
    "ClientList": "Client",
    "KeyList": "Key",
    "DomainList": "Domain",
    "PriceList": "Price",
    "AdminTokenList": "AdminToken",
    "AuditList": "AuditRecord",
}
for _name, _item in _LISTS.items():
    SCHEMAS[_name] = _obj({"data": {"type": "array", "items": _ref(_item)}})
SCHEMAS["UsageReport"] = _obj(
    {
        "data": {"type": "array", "items": _ref("UsageRow")},
        "end_users": {"type": "array", "items": _ref("EndUserRow")},
        "totals": _obj(
            {
                "requests": {"type": "integer"},
                "prompt_tokens": {"type": "integer"},
                "completion_tokens": {"type": "integer"},
                "cost_usd": {"type": "number"},
            }
        ),
    }
)
SCHEMAS["JournalPage"] = _obj(
    {"data": {"type": "array", "items": _ref("JournalRecord")}, "next_cursor": _OPT_STR}
)

# path -> method -> (summary, request body schema or None, success status, answer schema)
_A = "/accounts/{account}"
OPERATIONS: dict[str, dict[str, tuple[str, str | None, int, str]]] = {
    "/accounts": {
        "get": ("List accounts (a scoped token: its own)", None, 200, "AccountList"),
        "post": ("Create an account (operator)", "AccountCreate", 201, "Account"),
    },
    _A: {
        "get": ("Read an account", None, 200, "Account"),
        "patch": ("Change an account (limits: operator)", "AccountUpdate", 200, "Account"),
        "delete": ("Remove an empty account (operator)", None, 200, "Account"),
    },
    f"{_A}/clients": {
        "get": ("List the account's clients", None, 200, "ClientList"),
        "post": ("Add a client (operator)", "ClientCreate", 201, "Client"),
    },
    f"{_A}/clients/{{client}}": {
        "get": ("Read a client", None, 200, "Client"),
        "patch": ("Change a client", "ClientUpdate", 200, "Client"),
        "delete": ("Remove a client (operator)", None, 200, "Client"),
    },
    f"{_A}/keys": {
        "get": ("List the account's keys", None, 200, "KeyList"),
        "post": ("Create a key; the answer holds it, once", "KeyCreate", 201, "KeyCreated"),
    },
    f"{_A}/keys/{{key_id}}": {
        "get": ("Read a key", None, 200, "Key"),
        "patch": ("Change a key's limits", "KeyUpdate", 200, "Key"),
        "delete": ("Revoke a key", None, 200, "Key"),
    },
    f"{_A}/domains": {
        "get": ("List the account's custom domains", None, 200, "DomainList"),
        "post": ("Claim a hostname for a client", "DomainCreate", 201, "DomainCreated"),
    },
    f"{_A}/domains/{{hostname}}": {
        "get": ("Read a custom domain", None, 200, "Domain"),
        "patch": ("Verify the domain's DNS TXT record", "DomainVerify", 200, "Domain"),
        "delete": ("Release a hostname", None, 200, "Domain"),
    },
    f"{_A}/usage": {"get": ("Usage by day, client, key and model", None, 200, "UsageReport")},
    f"{_A}/journal": {"get": ("The account's journal, newest first", None, 200, "JournalPage")},
    "/journal/{request_id}": {"get": ("One journal record", None, 200, "JournalRecord")},
    "/prices": {
        "get": ("List price overrides", None, 200, "PriceList"),
        "post": ("Set a price override (operator)", "PriceCreate", 201, "Price"),
    },
    "/prices/{model}": {
        "get": ("Read a price override", None, 200, "Price"),
        "patch": ("Change a price override (operator)", "PriceUpdate", 200, "Price"),
        "delete": ("Remove a price override (operator)", None, 200, "Price"),
    },
    "/audit": {"get": ("Audit records, newest first", None, 200, "AuditList")},
    "/admin-tokens": {
        "get": ("List admin tokens", None, 200, "AdminTokenList"),
        "post": (
            "Create a scoped admin token (operator)",
            "AdminTokenCreate",
            201,
            "AdminTokenCreated",
        ),
    },
    "/admin-tokens/{token_id}": {
        "get": ("Read an admin token", None, 200, "AdminToken"),
        "delete": ("Revoke an admin token (operator)", None, 200, "AdminToken"),
    },
}

_PRICE_FIELDS = {
    "input_per_mtok": {"type": ["string", "number"]},
    "output_per_mtok": {"type": ["string", "number"]},
    "cached_input_per_mtok": {"type": ["string", "number", "null"]},
}
_EXPIRES = {"type": ["number", "string"], "description": "seconds, or a duration like 30d"}
REQUESTS: dict[str, Any] = {
    "AccountCreate": {"type": "object", "required": ["account"],
                      "properties": {"account": _STR, "name": _STR, **_LIMITS}},
    "AccountUpdate": {"type": "object", "properties": {"name": _STR, **_LIMITS}},
    "ClientCreate": {"type": "object", "required": ["name", "provider"],
                     "properties": {"name": _STR, "provider": _STR}},
    "ClientUpdate": {"type": "object"},
    "KeyCreate": {"type": "object", "required": ["name"],
                  "properties": {"name": _STR, "clients": {"type": "array", "items": _STR},
                                 "expires_in": _EXPIRES, **_LIMITS}},
    "KeyUpdate": {"type": "object", "properties": _LIMITS},
    "DomainCreate": {"type": "object", "required": ["hostname", "client"],
                     "properties": {"hostname": _STR, "client": _STR}},
    "DomainVerify": {"type": "object", "required": ["verify"],
                     "properties": {"verify": {"const": True}, "force": {"type": "boolean"}}},
    "PriceCreate": {"type": "object", "required": ["model", "input_per_mtok", "output_per_mtok"],
                    "properties": {"model": _STR, "account": _STR, "client": _STR,
                                   **_PRICE_FIELDS}},
    "PriceUpdate": {"type": "object", "properties": _PRICE_FIELDS},
    "AdminTokenCreate": {"type": "object", "required": ["account"],
                         "properties": {"account": _STR, "name": _STR,
                                        "read_only": {"type": "boolean"},
                                        "expires_in": _EXPIRES}},
}  # fmt: skip

_ERRORS = {
    "400": "Bad input",
    "401": "No valid admin token",
    "403": "The token may not do this (read-only, or the operator's alone)",
    "404": "No such resource, or another account's",
    "409": "Already exists, or still in use",
}


def _parameters(path: str) -> list[dict[str, Any]]:
    names = [part[1:-1] for part in path.split("/") if part.startswith("{")]
    return [{"name": n, "in": "path", "required": True, "schema": _STR} for n in names]


def _operation(summary: str, body: str | None, status: int, answer: str) -> dict[str, Any]:
    responses: dict[str, Any] = {
        str(status): {
            "description": summary,
            "content": {"application/json": {"schema": _ref(answer)}},
        }
    }
    for code, text in _ERRORS.items():
        responses[code] = {
            "description": text,
            "content": {"application/json": {"schema": _ref("Error")}},
        }
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(body)}},
        }
    return operation


@functools.cache
def openapi_document() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for path, methods in OPERATIONS.items():
        item: dict[str, Any] = {"parameters": _parameters(path)} if "{" in path else {}
        for method, spec in methods.items():
            item[method] = _operation(*spec)
        paths[path] = item
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Gateway admin API",
            "version": __version__,
            "description": 'See docs/admin-api.md. Lists answer {"data": [...]}; errors '
            "have OpenAI's shape.",
        },
        "servers": [{"url": "/admin/v1"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": {**SCHEMAS, **REQUESTS},
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
