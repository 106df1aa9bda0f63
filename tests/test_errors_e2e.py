"""Every failure the gateway answers: OpenAI's error shape, the right status, the SDK's exception,
and a journal record for each."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.config import Settings
from tests.conftest import TEST_SECRET, AiohttpServer, Tenant, free_port, make_tenant, sdk_kwargs
from tests.support.helpers import error_of, raw_request
from tests.support.journal_helpers import journal_record
from tests.support.upstream_server import UpstreamServer

MESSAGES: list[openai.types.chat.ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
PATH = "/v1/chat/completions"
GOOD = b'{"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]}'


async def test_unknown_host_is_404(gateway: TestServer, tenant: Tenant, redis: Redis) -> None:
    host = "nobody.3141-5926-5359.api.localhost"
    async with openai.AsyncOpenAI(
        **sdk_kwargs(gateway, tenant, default_headers={"Host": host})
    ) as sdk:
        with pytest.raises(openai.NotFoundError) as caught:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert caught.value.code == "unknown_host"
    assert caught.value.response.headers["x-request-id"]
    record = await journal_record(redis, caught.value.response.headers["x-request-id"])
    assert (record["status"], record["outcome"], record["account"]) == (404, "not_found", None)


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "api.localhost",
        "Customer-Support.3141-5926-5359.API.localhost.evil",
        "customer-support.3141-5926-535.api.localhost",
        "[::1]:8080",
        "",
    ],
)
async def test_hosts_that_name_no_tenant_are_404(
    gateway: TestServer, tenant: Tenant, host: str
) -> None:
    status, _, body = await raw_request(gateway, "POST", PATH, host=host, key=tenant.key, body=GOOD)
    assert status == 404
    assert error_of(body)["code"] == "unknown_host"


async def test_host_is_case_and_port_insensitive(gateway: TestServer, tenant: Tenant) -> None:
    host = tenant.hostname.upper() + ":8443"
    status, _, _ = await raw_request(gateway, "POST", PATH, host=host, key=tenant.key, body=GOOD)
    assert status == 200


async def test_missing_and_unknown_keys_are_401(gateway: TestServer, tenant: Tenant) -> None:
    status, _, body = await raw_request(gateway, "POST", PATH, host=tenant.hostname, body=GOOD)
    assert status == 401
    assert error_of(body)["code"] == "missing_api_key"
    forged = tenant.key[:-4] + "AAAA"
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant, api_key=forged)) as sdk:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert caught.value.code == "invalid_api_key"
    for header in ("api-key", "x-api-key"):
        status, _, _ = await raw_request(
            gateway, "POST", PATH, host=tenant.hostname, body=GOOD, headers={header: tenant.key}
        )
        assert status == 200, header
    status, _, _ = await raw_request(
        gateway, "POST", PATH, host=tenant.hostname, body=GOOD, headers={"Authorization": "Basic x"}
    )
    assert status == 401


async def test_key_limited_to_another_client_is_403(
    gateway: TestServer, redis: Redis, tenant: Tenant
) -> None:
    limited = await make_tenant(redis, client="billing", provider="echo", key_clients=("billing",))
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant, api_key=limited.key)) as sdk:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert caught.value.code == "key_not_allowed"


@pytest.mark.parametrize(
    ("body", "param", "fragment"),
    [
        (b"{not json", None, "not valid JSON"),
        (b"", None, "empty"),
        (b"\xff\xfe", None, "not valid JSON"),
        (b"[1, 2]", None, "JSON object"),
        (b'"text"', None, "JSON object"),
        (b'{"messages": [{"role": "user", "content": "x"}]}', "model", "model"),
        (b'{"model": 5, "messages": [{"role": "user", "content": "x"}]}', "model", "model"),
        (b'{"model": "m"}', "messages", "messages"),
        (b'{"model": "m", "messages": "hello"}', "messages", "messages"),
        (b'{"model": "m", "messages": []}', "messages", "messages"),
        (b'{"model": "m", "messages": ["x"]}', "messages[0]", "messages[0]"),
        (b'{"model": "m", "messages": [{"content": "x"}]}', "messages[0].role", "role"),
        (b'{"model": "m", "messages": [{"role": "user"}], "stream": "yes"}', "stream", "stream"),
    ],
)
async def test_bad_bodies_are_400_with_a_clear_message(
    gateway: TestServer,
    tenant: Tenant,
    redis: Redis,
    upstream_server: UpstreamServer,
    body: bytes,
    param: str | None,
    fragment: str,
) -> None:
    status, headers, answer = await raw_request(
        gateway, "POST", PATH, host=tenant.hostname, key=tenant.key, body=body
    )
    assert status == 400
    error = error_of(answer)
    assert error["param"] == param
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"
    assert upstream_server.seen == []
    record = await journal_record(redis, headers["x-request-id"])
    assert (record["status"], record["outcome"]) == (400, "bad_request")


async def test_sdk_sees_bad_request_error(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.chat.completions.create(model="gpt-test", messages=[])
    assert caught.value.param == "messages"


async def test_body_over_the_limit_is_413(
    client: openai.AsyncOpenAI, settings: Settings, upstream_server: UpstreamServer
) -> None:
    big = "x" * (settings.max_body_bytes + 1)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": big}]
        )
    assert caught.value.status_code == 413
    assert caught.value.code == "request_too_large"
    assert upstream_server.seen == []


async def test_chunked_body_over_the_limit_is_413(
    gateway: TestServer, tenant: Tenant, settings: Settings
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b"x" * 1024

    async with (
        aiohttp.ClientSession() as session,
        session.post(
            gateway.make_url(PATH),
            data=chunks(),
            headers={
                "Host": tenant.hostname,
                "Authorization": f"Bearer {tenant.key}",
                "Content-Type": "application/json",
            },
        ) as response,
    ):
        assert response.status == 413
        error_of(await response.read())


async def test_non_json_content_type_is_415(gateway: TestServer, tenant: Tenant) -> None:
    status, _, body = await raw_request(
        gateway,
        "POST",
        PATH,
        host=tenant.hostname,
        key=tenant.key,
        body=GOOD,
        headers={"Content-Type": "text/plain"},
    )
    assert status == 415
    assert error_of(body)["code"] == "unsupported_media_type"


async def test_get_on_the_completion_path_says_use_post(
    gateway: TestServer, tenant: Tenant
) -> None:
    status, headers, body = await raw_request(gateway, "GET", PATH, host=tenant.hostname)
    assert status == 405
    assert "POST" in error_of(body)["message"]
    assert "POST" in headers["allow"]


async def test_unknown_path_is_an_openai_shaped_404(gateway: TestServer, tenant: Tenant) -> None:
    status, _, body = await raw_request(gateway, "POST", "/v1/nothing", host=tenant.hostname)
    assert status == 404
    assert error_of(body)["code"] == "unknown_url"


async def test_unreachable_upstream_is_502(
    gateway: TestServer, redis: Redis, tenant: Tenant
) -> None:
    dead = await make_tenant(
        redis, client="dead", upstream_url=f"http://127.0.0.1:{free_port()}/v1"
    )
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, dead)) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="gpt-test", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_unreachable"
    record = await journal_record(redis, caught.value.response.headers["x-request-id"])
    assert (record["status"], record["outcome"]) == (502, "upstream_error")


async def test_slow_upstream_is_504(
    aiohttp_server: AiohttpServer,
    settings: Settings,
    redis: Redis,
    tenant: Tenant,
    upstream_server: UpstreamServer,
) -> None:
    gateway = await aiohttp_server(create_app(settings.replace(upstream_timeout=0.2), TEST_SECRET))
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="slow", messages=MESSAGES)
    assert caught.value.status_code == 504
    assert caught.value.code == "upstream_timeout"


@pytest.mark.parametrize(
    ("model", "exception"),
    [
        ("error-429", openai.RateLimitError),
        ("error-400", openai.BadRequestError),
        ("error-503", openai.InternalServerError),
    ],
)
async def test_upstream_openai_errors_pass_through(
    client: openai.AsyncOpenAI, redis: Redis, model: str, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as caught:
        await client.chat.completions.create(model=model, messages=MESSAGES)
    status = int(model[6:9])
    assert caught.value.status_code == status
    assert caught.value.code == f"e{status}"
    assert caught.value.message.endswith(f"upstream says {status}")
    record = await journal_record(redis, caught.value.response.headers["x-request-id"])
    assert (record["status"], record["outcome"]) == (status, "upstream_error")


async def test_upstream_error_without_openai_body_is_502(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(model="error-500-html", messages=MESSAGES)
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_bad_response"
    assert "500" in caught.value.message


async def test_other_methods_on_a_known_path_are_405(gateway: TestServer, tenant: Tenant) -> None:
    status, headers, body = await raw_request(
        gateway, "PUT", PATH, host=tenant.hostname, key=tenant.key, body=GOOD
    )
    assert status == 405
    assert error_of(body)["code"] == "method_not_allowed"
    assert "POST" in headers["allow"]


async def test_forwarded_host_is_honoured_only_from_trusted_proxies(
    aiohttp_server: AiohttpServer, settings: Settings, tenant: Tenant
) -> None:
    forwarded = {"X-Forwarded-Host": tenant.hostname}
    untrusted = await aiohttp_server(create_app(settings, TEST_SECRET))
    status, _, _ = await raw_request(
        untrusted, "POST", PATH, host="proxy.internal", key=tenant.key, body=GOOD, headers=forwarded
    )
    assert status == 404
    trusted = await aiohttp_server(
        create_app(settings.replace(trusted_proxies="127.0.0.0/8, ::1"), TEST_SECRET)
    )
    status, _, _ = await raw_request(
        trusted, "POST", PATH, host="proxy.internal", key=tenant.key, body=GOOD, headers=forwarded
    )
    assert status == 200
