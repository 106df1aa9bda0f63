"""Every `GatewayError` renders OpenAI's error shape, and the openai SDK raises its usual class.

The errors are raised by extra routes added to the real app before it starts, so they pass through
the gateway's own middleware (request id, rendering, journal) exactly as a handler's would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import openai
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

import gateway.domains
import gateway.store.repositories
from gateway.app import create_app
from gateway.config import Settings
from gateway.errors import GatewayError
from tests.conftest import TEST_SECRET, AiohttpServer
from tests.support.journal_helpers import journal_entries

#: Modules that define GatewayError subclasses outside gateway.errors (imported for the tree).
_ERROR_MODULES = (gateway.domains, gateway.store.repositories)


def _all_error_classes() -> list[type[GatewayError]]:
    found: list[type[GatewayError]] = [GatewayError]
    index = 0
    while index < len(found):
        found.extend(found[index].__subclasses__())
        index += 1
    return found


ERROR_CLASSES = {cls.__name__: cls for cls in _all_error_classes()}

#: What the openai SDK raises for each status; anything else is a plain APIStatusError.
SDK_CLASSES: dict[int, type[openai.APIStatusError]] = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    403: openai.PermissionDeniedError,
    404: openai.NotFoundError,
    409: openai.ConflictError,
    422: openai.UnprocessableEntityError,
    429: openai.RateLimitError,
}


def sdk_class_for(status: int) -> type[openai.APIStatusError]:
    if status >= 500:
        return openai.InternalServerError
    return SDK_CLASSES.get(status, openai.APIStatusError)


def test_the_error_tree_is_complete() -> None:
    expected = {
        "GatewayError": 500,
        "ConfigError": 500,
        "NotFoundError": 404,
        "AuthenticationError": 401,
        "PermissionDeniedError": 403,
        "InvalidRequestError": 400,
        "MethodNotAllowedError": 405,
        "PayloadTooLargeError": 413,
        "UnsupportedMediaTypeError": 415,
        "UpstreamError": 502,
        "UpstreamTimeoutError": 504,
        "ServiceUnavailableError": 503,
        "RecordExistsError": 409,
        "DomainVerificationError": 400,
        "RateLimitError": 429,
        "QuotaExceededError": 429,
    }
    assert {name: ERROR_CLASSES[name].status for name in expected} == expected


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
def test_each_error_renders_openai_shape(name: str) -> None:
    cls = ERROR_CLASSES[name]
    error = cls("something went wrong")
    assert error.to_body() == {
        "error": {
            "message": "something went wrong",
            "type": cls.error_type,
            "param": None,
            "code": cls.default_code,
        }
    }
    assert orjson.loads(error.to_bytes()) == error.to_body()
    # OpenAI's 429s name the exhausted resource: `requests`, `tokens`, `insufficient_quota`.
    openai_types = {"invalid_request_error", "api_error", "requests", "insufficient_quota"}
    assert cls.error_type in openai_types
    assert cls.default_code
    assert cls.default_code.islower()
    custom = cls("bad field", code="custom_code", param="messages")
    assert custom.to_body()["error"]["code"] == "custom_code"
    assert custom.to_body()["error"]["param"] == "messages"


async def _raise_named(request: web.Request) -> web.StreamResponse:
    name = request.match_info["name"]
    if name == "RuntimeError":
        raise RuntimeError("internal detail that must not leak")
    if name == "HTTPTooManyRequests":
        raise web.HTTPTooManyRequests()
    if name == "HTTPBadGateway":
        raise web.HTTPBadGateway()
    cls = ERROR_CLASSES[name]
    raise cls(f"raised {name}", param="p", headers={"x-test-error": name})


@pytest.fixture
async def error_server(
    aiohttp_server: AiohttpServer, settings: Settings, redis: Redis
) -> TestServer:
    app = create_app(settings, TEST_SECRET)
    app.router.add_get("/raise/{name}", _raise_named)
    return await aiohttp_server(app)


@pytest.fixture
async def sdk(error_server: TestServer) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(
        base_url=str(error_server.make_url("/")), api_key="unused", max_retries=0, timeout=10.0
    )
    yield client
    await client.close()


async def _journal_record(redis: Redis, request_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        for _entry_id, fields in await journal_entries(redis):
            assert fields is not None
            record: dict[str, object] = orjson.loads(fields[b"record"])
            if record["request_id"] == request_id:
                return record
        await asyncio.sleep(0.02)
    raise AssertionError(f"no journal record for {request_id} within 5 s")


@pytest.mark.parametrize("name", sorted(ERROR_CLASSES))
async def test_sdk_raises_its_class_for_each_error(
    name: str, sdk: openai.AsyncOpenAI, redis: Redis
) -> None:
    cls = ERROR_CLASSES[name]
    with pytest.raises(openai.APIStatusError) as caught:
        await sdk.get(f"/raise/{name}", cast_to=object)
    error = caught.value
    assert type(error) is sdk_class_for(cls.status)
    assert error.status_code == cls.status
    assert error.body == {
        "message": f"raised {name}",
        "type": cls.error_type,
        "param": "p",
        "code": cls.default_code,
    }
    assert error.code == cls.default_code
    assert error.type == cls.error_type
    assert error.response.headers["x-test-error"] == name
    assert error.response.headers["content-type"].startswith("application/json")
    request_id = error.response.headers["x-request-id"]
    record = await _journal_record(redis, request_id)
    assert record["status"] == cls.status
    assert record["error"] == error.body


async def test_unexpected_exception_is_a_generic_500(sdk: openai.AsyncOpenAI, redis: Redis) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        await sdk.get("/raise/RuntimeError", cast_to=object)
    assert caught.value.status_code == 500
    assert caught.value.code == "internal_error"
    assert "internal detail" not in caught.value.response.text
    record = await _journal_record(redis, caught.value.response.headers["x-request-id"])
    assert record["outcome"] == "internal_error"
    assert "internal detail" not in orjson.dumps(record).decode()


@pytest.mark.parametrize(
    ("name", "sdk_class", "status"),
    [
        ("HTTPTooManyRequests", openai.RateLimitError, 429),
        ("HTTPBadGateway", openai.InternalServerError, 502),
    ],
)
async def test_aiohttp_http_errors_are_rendered_in_openai_shape(
    name: str, sdk_class: type[openai.APIStatusError], status: int, sdk: openai.AsyncOpenAI
) -> None:
    with pytest.raises(sdk_class) as caught:
        await sdk.get(f"/raise/{name}", cast_to=object)
    assert caught.value.status_code == status
    assert caught.value.code == "http_error"
    assert set(caught.value.response.json()["error"]) == {"message", "type", "param", "code"}


async def test_unknown_url_is_an_openai_404(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        await sdk.get("/no/such/route", cast_to=object)
    assert caught.value.code == "unknown_url"
