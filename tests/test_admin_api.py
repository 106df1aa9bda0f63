"""The admin REST API end to end: every route with the operator token, answers validated against
the live OpenAPI document; scoped tokens; one audit record per write; errors in OpenAI's shape."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from redis.asyncio import Redis

from gateway.admin.api import ROUTES
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.metrics import GatewayMetrics
from gateway.store import keys
from tests.conftest import ACCOUNT, OTHER_ACCOUNT, TEST_SECRET, Tenant, sdk_kwargs
from tests.support.admin_api import AdminApi
from tests.support.journal_helpers import wait_for_records

OPERATOR = "operator-token-for-tests"
UPSTREAM_SECRET = "sk-upstream-secret-never-answered"
AiohttpClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
async def api(aiohttp_client: AiohttpClient, settings: Settings, redis: Redis) -> AdminApi:
    app = create_admin_app(settings.replace(admin_token=OPERATOR), GatewayMetrics(), TEST_SECRET)
    client = await aiohttp_client(app)
    return await AdminApi.open(client)


async def _audit_count(redis: Redis) -> int:
    return int(await redis.xlen(keys.AUDIT_STREAM))


async def test_every_route_with_the_operator_token(
    api: AdminApi, redis: Redis, gateway: TestServer, echo_tenant: Tenant
) -> None:
    op = OPERATOR
    audit = await _audit_count(redis)

    async def write(method: str, template: str, status: int, **kw: Any) -> Any:
        nonlocal audit
        answer = await api.call(method, template, op, **kw)
        assert answer.status == status, answer.body
        audit += 1
        assert await _audit_count(redis) == audit, f"{method} {template}: one audit record"
        return answer.body

    async def read(template: str, **kw: Any) -> Any:
        answer = await api.call("GET", template, op, **kw)
        assert answer.status == 200, answer.body
        assert await _audit_count(redis) == audit, "reads are not audited"
        return answer.body

    # echo_tenant's account has a client but no record yet: it reads as a bare account.
    assert ACCOUNT in [a["account"] for a in (await read("/accounts"))["data"]]
    created = await write(
        "POST", "/accounts", 201, body={"account": OTHER_ACCOUNT, "name": "Bravo", "rpm": 60}
    )
    assert created == {**created, "account": OTHER_ACCOUNT, "name": "Bravo", "rpm": 60}
    acct = {"account": OTHER_ACCOUNT}
    assert (await read("/accounts/{account}", **acct))["name"] == "Bravo"
    patched = await write("PATCH", "/accounts/{account}", 200, body={"usd_per_day": 12.5}, **acct)
    assert patched["usd_per_day"] == 12.5
    assert patched["rpm"] == 60

    client = await write(
        "POST",
        "/accounts/{account}/clients",
        201,
        body={
            "name": "bot",
            "provider": "openai",
            "upstream_url": "http://127.0.0.1:9/v1/",
            "upstream_key": UPSTREAM_SECRET,
        },
        **acct,
    )
    assert client["upstream_key"] == "***"
    assert client["upstream_url"] == "http://127.0.0.1:9/v1"
    assert client["hostname"] == f"bot.{OTHER_ACCOUNT}.api.localhost"
    one = {**acct, "client": "bot"}
    assert [c["name"] for c in (await read("/accounts/{account}/clients", **acct))["data"]] == [
        "bot"
    ]
    assert (await read("/accounts/{account}/clients/{client}", **one))["provider"] == "openai"
    changed = await write(
        "PATCH",
        "/accounts/{account}/clients/{client}",
        200,
        body={"rpm": 10, "end_user_rpm": 2, "policy": {"aliases": {"fast": "gpt-4o-mini"}}},
        **one,
    )
    assert changed["rpm"] == 10
    assert changed["policy"]["aliases"] == {"fast": "gpt-4o-mini"}

    key = await write(
        "POST",
        "/accounts/{account}/keys",
        201,
        body={"name": "ci", "clients": ["bot"], "expires_in": "30d", "usd_per_month": 5},
        **acct,
    )
    assert key["key"].startswith("gwk_")
    assert key["usd_per_month"] == 5.0
    kid = {**acct, "key_id": key["id"]}
    listed = (await read("/accounts/{account}/keys", **acct))["data"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert "key" not in listed[0]
    assert (await read("/accounts/{account}/keys/{key_id}", **kid))["name"] == "ci"
    assert (await write("PATCH", "/accounts/{account}/keys/{key_id}", 200, body={"tpm": 9}, **kid))[
        "tpm"
    ] == 9
    assert (await write("DELETE", "/accounts/{account}/keys/{key_id}", 200, **kid))["revoked_at"]

    domain = await write(
        "POST",
        "/accounts/{account}/domains",
        201,
        body={"hostname": "api.bravo.test", "client": "bot"},
        **acct,
    )
    assert domain["dns_record"]["type"] == "TXT"
    host = {**acct, "hostname": "api.bravo.test"}
    assert (await read("/accounts/{account}/domains", **acct))["data"][0]["verified"] is False
    assert (await read("/accounts/{account}/domains/{hostname}", **host))["client"] == "bot"
    verified = await write(
        "PATCH",
        "/accounts/{account}/domains/{hostname}",
        200,
        body={"verify": True, "force": True},
        **host,
    )
    assert verified["verified"] is True
    await write("DELETE", "/accounts/{account}/domains/{hostname}", 200, **host)

    price = await write(
        "POST",
        "/prices",
        201,
        body={"model": "org/model-7b", "input_per_mtok": "0.2", "output_per_mtok": 0.4},
    )
    assert price["level"] == "global"
    assert price["output_per_mtok"] == "0.4"
    model = {"model": "org/model-7b"}
    assert (await read("/prices/{model}", **model))["input_per_mtok"] == "0.2"
    updated = await write("PATCH", "/prices/{model}", 200, body={"input_per_mtok": 1}, **model)
    assert updated["input_per_mtok"] == "1"
    assert updated["output_per_mtok"] == "0.4"
    assert [p["model"] for p in (await read("/prices"))["data"]] == ["org/model-7b"]
    await write("DELETE", "/prices/{model}", 200, **model)

    token = await write(
        "POST", "/admin-tokens", 201, body={"account": OTHER_ACCOUNT, "read_only": True}
    )
    assert token["token"].startswith("gwa_")
    tid = {"token_id": token["id"]}
    assert (await read("/admin-tokens"))["data"][0]["id"] == token["id"]
    assert (await read("/admin-tokens/{token_id}", **tid))["read_only"] is True
    assert (await write("DELETE", "/admin-tokens/{token_id}", 200, **tid))["revoked_at"]

    # Usage and journal, with a real request through the gateway.
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as sdk:
        reply = await sdk.chat.completions.with_raw_response.create(
            model="echo-1", messages=[{"role": "user", "content": "hi"}]
        )
    request_id = reply.headers["x-request-id"]
    await wait_for_records(redis, 1)
    mine = {"account": ACCOUNT}
    page = await read("/accounts/{account}/journal", query={"limit": "5"}, **mine)
    assert [r["request_id"] for r in page["data"]] == [request_id]
    assert (await read("/journal/{request_id}", request_id=request_id))["status"] == 200
    usage = await read("/accounts/{account}/usage", query={"since": "1d"}, **mine)
    assert "totals" in usage

    await write("DELETE", "/accounts/{account}/clients/{client}", 200, **one)
    await write("DELETE", "/accounts/{account}", 200, **acct)
    trail = (await read("/audit", query={"limit": "100"}))["data"]
    assert len(trail) == audit
    assert all(r["via"] == "api" for r in trail)
    assert UPSTREAM_SECRET.encode() not in orjson.dumps(trail)
    assert key["key"].encode() not in orjson.dumps(trail)
    assert token["token"].encode() not in orjson.dumps(trail)
    # Every operation of the document answered successfully at least once.
    succeeded = {(p, m) for p, m, status in api.exercised if status < 300}
    assert api.operations() - succeeded <= {("/openapi.json", "get")}


async def test_scoped_tokens(api: AdminApi, redis: Redis) -> None:
    op = OPERATOR
    for number in (ACCOUNT, OTHER_ACCOUNT):
        await api.call("POST", "/accounts", op, body={"account": number, "name": number})
        await api.call(
            "POST",
            "/accounts/{account}/clients",
            op,
            body={"name": "bot", "provider": "echo"},
            account=number,
        )
    writer = (await api.call("POST", "/admin-tokens", op, body={"account": ACCOUNT})).body
    reader = (
        await api.call("POST", "/admin-tokens", op, body={"account": ACCOUNT, "read_only": True})
    ).body
    mine, theirs = {"account": ACCOUNT}, {"account": OTHER_ACCOUNT}
    rw, ro = writer["token"], reader["token"]

    listed = (await api.call("GET", "/accounts", rw)).body["data"]
    assert [a["account"] for a in listed] == [ACCOUNT]
    assert (await api.call("GET", "/accounts/{account}", rw, **theirs)).status == 404
    assert (await api.call("GET", "/accounts/{account}/clients", rw, **theirs)).status == 404
    missing = await api.call("GET", "/accounts/{account}", rw, account="9999-9999-9999")
    other = await api.call("GET", "/accounts/{account}", rw, **theirs)
    assert missing.status == other.status == 404
    assert missing.body["error"]["code"] == other.body["error"]["code"]

    # Own account: keys yes; routing, account creation, prices and own limits no.
    key = await api.call("POST", "/accounts/{account}/keys", rw, body={"name": "x"}, **mine)
    assert key.status == 201
    patch = await api.call(
        "PATCH", "/accounts/{account}/clients/{client}", rw, body={"rpm": 3}, client="bot", **mine
    )
    assert patch.status == 200
    assert patch.body["rpm"] == 3
    for method, template, body, params in (
        ("POST", "/accounts", {"account": "1111-1111-1111"}, {}),
        ("PATCH", "/accounts/{account}", {"usd_per_day": 1000}, mine),
        ("POST", "/prices", {"model": "m", "input_per_mtok": 0, "output_per_mtok": 0}, {}),
        (
            "PATCH",
            "/accounts/{account}/clients/{client}",
            {"upstream_url": "http://127.0.0.1:1/v1"},
            {**mine, "client": "bot"},
        ),
        ("POST", "/accounts/{account}/clients", {"name": "new", "provider": "echo"}, mine),
        ("POST", "/admin-tokens", {"account": ACCOUNT}, {}),
    ):
        answer = await api.call(method, template, rw, body=body, **params)
        assert answer.status == 403, (method, template, answer.body)
    renamed = await api.call("PATCH", "/accounts/{account}", rw, body={"name": "Acme"}, **mine)
    assert renamed.status == 200
    assert renamed.body["name"] == "Acme"

    # Read-only: reads its own account, writes nothing.
    assert (await api.call("GET", "/accounts/{account}/keys", ro, **mine)).status == 200
    refused = await api.call("POST", "/accounts/{account}/keys", ro, body={"name": "y"}, **mine)
    assert refused.status == 403
    assert refused.body["error"]["code"] == "read_only_admin_token"
    assert (await api.call("GET", "/accounts/{account}/keys", ro, **theirs)).status == 404

    # The audit names the token; a scoped token sees its own account's records only.
    trail = (await api.call("GET", "/audit", rw, query={"limit": "100"})).body["data"]
    assert trail
    assert all(r["account"] == ACCOUNT for r in trail)
    assert trail[0]["actor"] == f"token:{writer['id']}"

    # Revoked tokens stop working at once.
    await api.call("DELETE", "/admin-tokens/{token_id}", op, token_id=writer["id"])
    gone = await api.call("GET", "/accounts", rw)
    assert gone.status == 401
    assert gone.body["error"]["code"] == "invalid_admin_token"


async def test_expired_token_and_bad_requests(api: AdminApi, redis: Redis) -> None:
    await api.call("POST", "/accounts", OPERATOR, body={"account": ACCOUNT})
    token = (
        await api.call(
            "POST", "/admin-tokens", OPERATOR, body={"account": ACCOUNT, "expires_in": 1e-9}
        )
    ).body
    assert (await api.call("GET", "/accounts", token["token"])).status == 401
    for bad in ("", "gwa_nothex_x", "gwa_" + "0" * 12 + "_guess", OPERATOR + "x"):
        assert (await api.call("GET", "/accounts", bad)).status == 401
    client = api.client
    for method, path, data, status in (
        ("POST", "/admin/v1/accounts", b"{not json", 400),
        ("POST", "/admin/v1/accounts", b"[1]", 400),
        ("POST", "/admin/v1/accounts", b'{"account": "12"}', 400),
        ("POST", "/admin/v1/accounts", b'{"account": "1234-5678-9012", "rpm": -1}', 400),
        ("POST", "/admin/v1/accounts", b'{"account": "1234-5678-9012", "colour": 1}', 400),
        ("PATCH", f"/admin/v1/accounts/{ACCOUNT}", b'{"usd_per_day": "lots"}', 400),
        ("PUT", f"/admin/v1/accounts/{ACCOUNT}", b"{}", 405),
        ("GET", "/admin/v1/nothing-here", b"", 404),
        ("POST", "/admin/v1/prices", b'{"model": "m", "input_per_mtok": "1e400"}', 400),
    ):
        response = await client.request(
            method, path, data=data, headers={"Authorization": f"Bearer {OPERATOR}"}
        )
        body = await response.json()
        assert response.status == status, (method, path, body)
        assert set(body["error"]) == {"message", "type", "param", "code"}


async def test_the_openapi_document_is_valid_openapi_3_1(api: AdminApi) -> None:
    """The live document (served without a token) passes the OpenAPI 3.1 validator, and names
    exactly the routes the app serves."""
    validate(api.document)
    assert api.document["openapi"] == "3.1.0"
    served = {
        (path, method.lower())
        for path, views in ROUTES
        for method in views
        if path != "/openapi.json"
    }
    assert api.operations() == served
    anonymous = await api.client.get("/admin/v1/openapi.json")
    assert anonymous.status == 200
