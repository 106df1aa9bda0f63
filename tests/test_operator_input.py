"""Operator input and the admin port (issue 10, items 7c, 8 and 10): link-local upstreams are
refused unless asked for, userinfo never reaches the journal, limits too large for the counters
are a one-line error, and the admin port answers bad queries and methods in OpenAI's shape."""

from __future__ import annotations

import aiohttp
import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from tests.conftest import ACCOUNT, AiohttpServer, Cli, make_tenant, sdk_kwargs
from tests.support.helpers import error_of
from tests.support.journal_helpers import wait_for_records
from tests.support.upstream_server import UpstreamServer

LINK_LOCAL = (
    "http://169.254.169.254/latest/meta-data",
    "http://2852039166/",
    "http://0xa9.254.169.254/",
    "http://[fe80::1]:8080/v1",
    "http://[::ffff:169.254.169.254]/",
    "http://user:pw@169.254.1.1/v1",
)


@pytest.mark.parametrize("url", LINK_LOCAL)
def test_link_local_upstreams_are_refused_unless_allowed(cli: Cli, url: str) -> None:
    add = ("clients", "add", "meta", "--account", ACCOUNT, "--provider", "openai")
    refused = cli(*add, "--upstream-url", url)
    assert refused.code == 1
    assert "link-local" in refused.err
    assert "pw" not in refused.err
    assert refused.err.count("\n") == 1
    assert cli(*add, "--upstream-url", url, "--allow-link-local").code == 0


def test_link_local_fallbacks_are_refused_and_private_upstreams_allowed(cli: Cli) -> None:
    for name, url in (("local", "http://127.0.0.1:8000/v1"), ("lan", "http://10.1.2.3/v1")):
        add = ("clients", "add", name, "--account", ACCOUNT, "--provider", "openai")
        assert cli(*add, "--upstream-url", url).code == 0
    update = ("clients", "update", "local", "--account", ACCOUNT)
    refused = cli(*update, "--fallback", "http://169.254.169.254/v1")
    assert refused.code == 1
    assert "link-local" in refused.err
    assert cli(*update, "--fallback", "http://169.254.169.254/v1", "--allow-link-local").code == 0


def test_a_limit_too_large_for_the_counters_is_one_line_and_exit_1(cli: Cli) -> None:
    cli("clients", "add", "c", "--account", ACCOUNT, "--provider", "echo")
    result = cli("clients", "update", "c", "--account", ACCOUNT, "--tpm", "100000000000000000000")
    assert result.code == 1
    assert result.err.startswith("gateway: --tpm 100000000000000000000 is larger")
    assert result.err.count("\n") == 1
    assert cli("clients", "update", "c", "--account", ACCOUNT, "--tpm", "1000000").code == 0


async def test_userinfo_is_stripped_from_every_recorded_url(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    url = upstream[1].replace("http://", "http://operator:url-password-123@")
    tenant = await make_tenant(redis, upstream_url=url)
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant)) as sdk:
        await sdk.chat.completions.create(
            model="gpt-test", messages=[{"role": "user", "content": "hi"}]
        )
    [record] = await wait_for_records(redis, 1)
    assert record["attempts"][0]["upstream"] == upstream[1]
    assert b"url-password-123" not in orjson.dumps(record)


@pytest.fixture
async def admin(
    aiohttp_server: AiohttpServer, gateway: TestServer, settings: Settings
) -> TestServer:
    token_settings = settings.replace(admin_token="admin-token-for-tests")
    return await aiohttp_server(create_admin_app(token_settings, gateway.app[appkeys.METRICS]))


async def test_admin_bad_durations_and_methods_are_openai_shaped_4xx(admin: TestServer) -> None:
    auth = {"Authorization": "Bearer admin-token-for-tests"}
    async with aiohttp.ClientSession(headers=auth) as session:
        for since in ("99999999999d", "0d", "9" * 400 + "s", "3661d"):
            async with session.get(admin.make_url(f"/admin/stats?since={since}")) as response:
                assert response.status == 400, since
                assert error_of(await response.read())["param"] is None
        async with session.get(admin.make_url("/admin/stats?since=3660d")) as response:
            assert response.status == 200
        async with session.post(admin.make_url("/admin/journal")) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "GET, HEAD"
            assert error_of(await response.read())["type"] == "invalid_request_error"
