"""Path addressing: `/tenants/{client}.{account}/v1/...` serves what the tenant's hostname serves.

For clients that cannot set a Host header (Node's fetch drops it; many tools take only a base
URL). The ways in: the official Node and Python SDKs (JSON, stream, models) on the echo tenant and
on a passthrough tenant with a real upstream; raw requests for the key rules (missing, foreign,
not allowed for this client), unknown and malformed tenants; the setting that turns it off; and
the journal's `addressing` field for both ways.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import Settings, load_settings
from tests.conftest import (
    OTHER_ACCOUNT,
    TEST_SECRET,
    AiohttpServer,
    Tenant,
    make_tenant,
    sdk_kwargs,
)
from tests.support.helpers import error_of, raw_request
from tests.support.journal_helpers import wait_for_record
from tests.support.node_sdk import PATH_CLIENT, node_openai, run_node
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello from python"}]
BODY = b'{"model": "echo-1", "messages": [{"role": "user", "content": "x"}]}'
LOOPBACK = "127.0.0.1"


def tenant_path(tenant: Tenant, rest: str = "/v1") -> str:
    return f"/tenants/{tenant.client}.{tenant.account}{rest}"


def path_sdk(gateway: TestServer, tenant: Tenant) -> openai.AsyncOpenAI:
    """An SDK given only a base URL and a key: no Host header, no resolver tricks."""
    base_url = str(gateway.make_url(tenant_path(tenant)))
    return openai.AsyncOpenAI(base_url=base_url, api_key=tenant.key, max_retries=0, timeout=10.0)


async def _calls(sdk: openai.AsyncOpenAI, model: str) -> dict[str, Any]:
    """What a tenant serves, as the Python SDK sees it: models, a JSON reply and a stream."""
    models = [m.id async for m in sdk.models.list()]
    reply = await sdk.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    text, chunks = "", 0
    async for chunk in await sdk.chat.completions.create(
        model=model, messages=MESSAGES, stream=True
    ):
        chunks += 1
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    return {
        "models": models,
        "json": reply.parse().choices[0].message.content,
        "stream": text,
        "chunks": chunks,
        "request_id": reply.headers["x-request-id"],
    }


async def test_python_sdk_by_path_gets_what_the_hostname_serves_echo(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    async with path_sdk(gateway, echo_tenant) as by_path:
        seen = await _calls(by_path, "echo-1")
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as by_host:
        expected = await _calls(by_host, "echo-1")
    assert seen["json"] == seen["stream"] == "echo: Hello from python"
    assert seen["models"] == ["echo-1"]
    assert {k: v for k, v in seen.items() if k != "request_id"} == {
        k: v for k, v in expected.items() if k != "request_id"
    }
    path_record = await wait_for_record(redis, seen["request_id"])
    host_record = await wait_for_record(redis, expected["request_id"])
    assert path_record["addressing"] == "path"
    assert host_record["addressing"] == "host"
    for record in (path_record, host_record):
        assert (record["account"], record["client"], record["key_id"]) == (
            echo_tenant.account,
            echo_tenant.client,
            echo_tenant.key_id,
        )
        assert record["status"] == 200


async def test_python_sdk_by_path_reaches_the_upstream_as_plain_v1(
    gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer
) -> None:
    async with path_sdk(gateway, tenant) as sdk:
        seen = await _calls(sdk, "gpt-test")
        embedding = await sdk.embeddings.create(model="emb-test", input="hi")
    assert seen["models"] == ["gpt-test"]
    assert seen["json"] == "Hello from upstream"
    assert seen["stream"]
    assert len(embedding.data) == 1
    # The upstream sees its own API's paths and the gateway's upstream key, never the tenant's.
    paths = [request.path for request in upstream_server.seen]
    assert paths == ["/v1/models"] + ["/v1/chat/completions"] * 2 + ["/v1/embeddings"]
    for request in upstream_server.seen:
        assert request.headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
        assert all(tenant.key not in value for value in request.headers.values())


@pytest.fixture
def node_modules() -> Path:
    return node_openai()


async def _node(modules: Path, gateway: TestServer, tenant: Tenant, model: str) -> dict[str, Any]:
    base_url = str(gateway.make_url(tenant_path(tenant)))
    out = await run_node(modules, PATH_CLIENT, base_url, tenant.key, model)
    result: dict[str, Any] = orjson.loads(out)
    return result


def _served(result: dict[str, Any]) -> dict[str, Any]:
    assert "error" not in result, result
    return result


async def test_node_sdk_by_path_echo_json_and_stream(
    node_modules: Path, gateway: TestServer, echo_tenant: Tenant
) -> None:
    result = _served(await _node(node_modules, gateway, echo_tenant, "echo-1"))
    assert result == {
        "models": ["echo-1"],
        "json": "echo: Hello from node",
        "stream": "echo: Hello from node",
        "chunks": result["chunks"],
    }
    assert result["chunks"] >= 3  # a role chunk, words, a finish chunk: a real stream


async def test_node_sdk_by_path_through_the_upstream(
    node_modules: Path, gateway: TestServer, tenant: Tenant, upstream_server: UpstreamServer
) -> None:
    result = _served(await _node(node_modules, gateway, tenant, "gpt-test"))
    assert result["models"] == ["gpt-test"]
    assert result["json"] == "Hello from upstream"
    assert result["stream"]
    assert [r.path for r in upstream_server.seen] == ["/v1/models"] + ["/v1/chat/completions"] * 2


async def test_node_sdk_by_path_gets_the_sdks_own_errors(
    node_modules: Path, gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    other = await make_tenant(redis, account=OTHER_ACCOUNT, client="echo-bot", provider="echo")
    foreign = dataclasses.replace(echo_tenant, key=other.key)  # right path, another account's key
    result = await _node(node_modules, gateway, foreign, "echo-1")
    assert result == {
        "error": {"status": 401, "code": "invalid_api_key", "type": "AuthenticationError"}
    }
    unknown = dataclasses.replace(echo_tenant, client="nobody")
    result = await _node(node_modules, gateway, unknown, "echo-1")
    assert result["error"]["status"] == 404
    assert result["error"]["type"] == "NotFoundError"


async def test_the_key_rules_are_the_same_by_path(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    other_account = await make_tenant(
        redis, account=OTHER_ACCOUNT, client="echo-bot", provider="echo"
    )
    sibling = await make_tenant(redis, client="sibling", provider="echo", key_clients=("sibling",))
    path = tenant_path(echo_tenant, "/v1/chat/completions")
    cases = [
        (echo_tenant.key, 200, None),
        (None, 401, "missing_api_key"),
        ("gwk_000000000000_" + "x" * 43, 401, "invalid_api_key"),
        (other_account.key, 401, "invalid_api_key"),  # never says the key exists elsewhere
        (sibling.key, 403, "key_not_allowed"),  # same account, limited to another client
    ]
    for key, status, code in cases:
        got, headers, body = await raw_request(
            gateway, "POST", path, host=LOOPBACK, key=key, body=BODY
        )
        assert got == status, (key, body)
        if code is not None:
            assert error_of(body)["code"] == code
        record = await wait_for_record(redis, headers["x-request-id"])  # refusals too
        assert (record["status"], record["addressing"]) == (status, "path")
        assert (record["account"], record["client"]) == (echo_tenant.account, echo_tenant.client)
    # The sibling's own key still works on the sibling's own path.
    got, _, _ = await raw_request(
        gateway,
        "POST",
        tenant_path(sibling, "/v1/chat/completions"),
        host=LOOPBACK,
        key=sibling.key,
        body=BODY,
    )
    assert got == 200


SAME_ANSWERS = [
    # (method, path under the tenant, body, extra headers, with the key)
    ("GET", "/v1/chat/completions", None, {}, True),  # 405: use POST
    ("POST", "/v1/chat/completions", b"{not json", {}, True),  # 400 invalid_request
    ("POST", "/v1/chat/completions", b'{"model": "echo-1"}', {}, True),  # 400: no messages
    ("POST", "/v1/no-such-endpoint", BODY, {}, True),  # 404 unknown_url
    ("POST", "/v1/chat/completions", BODY, {"Origin": "https://app.example.com"}, True),
    ("POST", "/v1/chat/completions", BODY, {"Origin": "https://evil.example.net"}, True),
    (
        "OPTIONS",
        "/v1/chat/completions",
        None,
        {"Origin": "https://app.example.com", "Access-Control-Request-Method": "POST"},
        False,
    ),
]


@pytest.mark.parametrize(("method", "rest", "body", "headers", "with_key"), SAME_ANSWERS)
async def test_every_kind_of_answer_is_the_same_by_path_and_by_host(
    gateway: TestServer,
    redis: Redis,
    method: str,
    rest: str,
    body: bytes | None,
    headers: dict[str, str],
    with_key: bool,
) -> None:
    tenant = await make_tenant(
        redis, client="web", provider="echo", cors_origins=("https://app.example.com",)
    )
    key = tenant.key if with_key else None
    answers = []
    for host, path in ((tenant.hostname, rest), (LOOPBACK, tenant_path(tenant, rest))):
        status, got, raw = await raw_request(
            gateway, method, path, host=host, key=key, body=body, headers=headers
        )
        code = error_of(raw)["code"] if status >= 400 else None
        cors = {k: v for k, v in got.items() if k.startswith("access-control-")}
        answers.append((status, code, cors))
    assert answers[0] == answers[1]
    assert answers[0][0] != 404 or rest == "/v1/no-such-endpoint"


@pytest.mark.parametrize(
    "path",
    [
        "/tenants/nobody.3141-5926-5359/v1/models",  # no such client
        "/tenants/echo-bot.9999-9999-9999/v1/models",  # no such account
        "/tenants/echo-bot/v1/models",  # no account
        "/tenants/echo-bot.31415926/v1/models",  # not an account number
        "/tenants/-bad-.3141-5926-5359/v1/models",  # not a DNS label
        "/tenants/echo-bot.3141-5926-5359.api.localhost/v1/models",  # a hostname, not a tenant
    ],
)
async def test_unknown_or_malformed_tenants_answer_404(
    gateway: TestServer, echo_tenant: Tenant, path: str
) -> None:
    status, _, body = await raw_request(gateway, "GET", path, host=LOOPBACK, key=echo_tenant.key)
    assert status == 404
    error_of(body)


async def test_path_routing_off_answers_unknown_url(
    aiohttp_server: AiohttpServer, settings: Settings, redis: Redis, echo_tenant: Tenant
) -> None:
    server = await aiohttp_server(create_app(settings.replace(path_routing=False), TEST_SECRET))
    status, _, body = await raw_request(
        server, "GET", tenant_path(echo_tenant, "/v1/models"), host=LOOPBACK, key=echo_tenant.key
    )
    assert status == 404
    assert error_of(body)["code"] == "unknown_url"
    # The hostname keeps working.
    status, _, _ = await raw_request(
        server, "GET", "/v1/models", host=echo_tenant.hostname, key=echo_tenant.key
    )
    assert status == 200


def test_path_routing_is_on_by_default_and_the_variable_turns_it_off(tmp_path: Path) -> None:
    missing = tmp_path / "none.toml"
    assert dataclasses.asdict(Settings())["path_routing"] is True
    loaded = load_settings(missing, environ={"GATEWAY_PATH_ROUTING": "false"})
    assert dataclasses.asdict(loaded)["path_routing"] is False
