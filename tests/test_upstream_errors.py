"""`gateway.upstream.errors`: the one mapping of client-library failures (pure)."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from gateway.errors import GatewayError, UpstreamError, UpstreamTimeoutError
from gateway.upstream.errors import is_api_error, upstream_errors


def _connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("10.0.0.1", 443, True, True, None, None, None)
    return aiohttp.ClientConnectorError(key, OSError(111, "refused"))


@pytest.mark.parametrize(
    ("raised", "kind", "status", "code"),
    [
        (TimeoutError(), UpstreamTimeoutError, 504, "upstream_timeout"),
        (_connector_error(), UpstreamError, 502, "upstream_unreachable"),
        (aiohttp.ClientPayloadError("cut"), UpstreamError, 502, "upstream_bad_response"),
        (aiohttp.ServerDisconnectedError(), UpstreamError, 502, "upstream_error"),
        (aiohttp.ClientOSError(104, "reset"), UpstreamError, 502, "upstream_error"),
    ],
)
def test_each_failure_maps_to_one_gateway_error(
    raised: BaseException, kind: type[GatewayError], status: int, code: str
) -> None:
    with pytest.raises(kind) as caught, upstream_errors():
        raise raised
    assert (caught.value.status, caught.value.code) == (status, code)
    assert caught.value.__cause__ is raised


def test_other_exceptions_pass_through() -> None:
    with pytest.raises(KeyError), upstream_errors():
        raise KeyError("not the upstream's")


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'{"error": {"message": "bad", "type": "invalid_request_error"}}', True),
        (b'{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}', True),
        (b"<html>502</html>", False),
        (b'{"error": "plain string"}', False),
        (b'{"error": {"message": 5}}', False),
        (b"", False),
    ],
)
def test_api_error_bodies_are_recognised(body: bytes, expected: bool) -> None:
    assert is_api_error(body) is expected
