"""Managed mode: the gateway offers plugins as tools, runs the model's tool calls (static and
http plugins), calls the upstream again, and answers with one chat completion."""

from __future__ import annotations

import ipaddress
from typing import Any

import openai
import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.errors import PluginRefusedError, ToolFailedError
from gateway.plugins.manifest import HttpPluginConfig, parse_plugin
from gateway.plugins.runner import call_http
from gateway.plugins.ssrf import address_refusal, checked_addresses
from gateway.rewrite import ClientPolicy
from tests.conftest import AiohttpServer, make_tenant, sdk_kwargs
from tests.support.journal_helpers import journal_record
from tests.support.plugin_server import PluginServer
from tests.support.upstream_server import UpstreamServer

STATIC = {
    "name": "company_info",
    "description": "Facts about Acme",
    "select": {"always": True},
    "kind": "static",
    "static": {"data": {"founded": 1999}},
}


@pytest.fixture
async def plugin_api(aiohttp_server: AiohttpServer) -> tuple[PluginServer, str]:
    behaviour = PluginServer()
    server = await aiohttp_server(behaviour.app())
    return behaviour, str(server.make_url(""))


def weather_manifest(base: str, **http: Any) -> dict[str, Any]:
    return {
        "name": "get_weather",
        "description": "Current weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
        "select": {"search_terms": ["weather", "forecast"]},
        "kind": "http",
        "http": {"url": base + "/weather", "allow_http": True, **http},
    }


async def _managed(
    gateway: TestServer, redis: Redis, url: str, plugins: list[dict[str, Any]], **policy: Any
) -> openai.AsyncOpenAI:
    client_policy = ClientPolicy(mode="managed", plugins=tuple(plugins), **policy)
    tenant = await make_tenant(redis, client="managed-bot", upstream_url=url, policy=client_policy)
    return openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))


async def test_multi_hop_with_static_and_http_plugins(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    plugin_api: tuple[PluginServer, str],
) -> None:
    server, url = upstream
    plugins = [STATIC, weather_manifest(plugin_api[1], allow_loopback=True)]
    sdk = await _managed(gateway, redis, url, plugins, system_prompt="Be brief.")
    reply = await sdk.chat.completions.create(
        model="tool-caller",
        messages=[{"role": "user", "content": "What's the weather in Paris?"}],
        extra_headers={"X-Client-Request-Id": "req-managed-1"},
    )
    await sdk.close()
    assert reply.choices[0].message.content == (
        'answer: {"founded":1999} | {"city": "Paris", "temp_c": 21}'
    )
    assert reply.choices[0].message.tool_calls is None
    assert reply.usage is not None
    assert reply.usage.total_tokens == 30  # three model calls of 10 tokens
    assert len(server.seen) == 3
    first = server.seen[0].json
    assert [t["function"]["name"] for t in first["tools"]] == ["company_info", "get_weather"]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}
    assert "stream" not in first
    assert plugin_api[0].seen == [("GET", "/weather", {"city": "Paris"})]
    record = await journal_record(redis, "req-managed-1")
    hops = record["hops"]
    assert [h["hop"] for h in hops] == [1, 2, 3]
    assert hops[0]["tool_calls"][0]["function"]["name"] == "company_info"
    assert hops[1]["tool_results"][0]["name"] == "get_weather"
    assert hops[1]["tool_results"][0]["ok"] is True
    assert hops[2]["tool_calls"] == []
    assert len(hops[2]["request"]["messages"]) == 6  # system, user, 2 x (call, result)


async def test_plugin_is_offered_only_when_its_terms_match(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    plugin_api: tuple[PluginServer, str],
) -> None:
    server, url = upstream
    plugins = [STATIC, weather_manifest(plugin_api[1], allow_loopback=True)]
    sdk = await _managed(gateway, redis, url, plugins)
    reply = await sdk.chat.completions.create(
        model="tool-caller", messages=[{"role": "user", "content": "Who are you?"}]
    )
    await sdk.close()
    assert reply.choices[0].message.content == 'answer: {"founded":1999}'
    assert [t["function"]["name"] for t in server.seen[0].json["tools"]] == ["company_info"]
    assert plugin_api[0].seen == []


async def test_hops_are_bounded(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    plugin_api: tuple[PluginServer, str],
) -> None:
    server, url = upstream
    plugins = [STATIC, weather_manifest(plugin_api[1], allow_loopback=True)]
    sdk = await _managed(gateway, redis, url, plugins, max_hops=2)
    reply = await sdk.chat.completions.create(
        model="tool-caller", messages=[{"role": "user", "content": "weather?"}]
    )
    await sdk.close()
    assert len(server.seen) == 2
    assert server.seen[1].json["tool_choice"] == "none"
    assert reply.choices[0].message.content == 'answer: {"founded":1999}'


async def test_managed_answer_streams_when_asked(
    gateway: TestServer, redis: Redis, upstream: tuple[UpstreamServer, str]
) -> None:
    sdk = await _managed(gateway, redis, upstream[1], [STATIC])
    stream = await sdk.chat.completions.create(
        model="tool-caller",
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    await sdk.close()
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == 'answer: {"founded":1999}'
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 20


async def test_loopback_plugin_is_refused_without_allow_loopback(
    gateway: TestServer,
    redis: Redis,
    upstream: tuple[UpstreamServer, str],
    plugin_api: tuple[PluginServer, str],
) -> None:
    sdk = await _managed(gateway, redis, upstream[1], [weather_manifest(plugin_api[1])])
    reply = await sdk.chat.completions.create(
        model="tool-caller",
        messages=[{"role": "user", "content": "weather in Paris"}],
        extra_headers={"X-Client-Request-Id": "req-ssrf"},
    )
    await sdk.close()
    content = reply.choices[0].message.content or ""
    assert "loopback address" in content
    assert "refused" in content
    assert plugin_api[0].seen == []
    record = await journal_record(redis, "req-ssrf")
    assert record["hops"][0]["tool_results"][0]["ok"] is False


@pytest.mark.parametrize(
    ("address", "refusal"),
    [
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("10.1.2.3", "a private address"),
        ("192.168.0.10", "a private address"),
        ("169.254.169.254", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.251", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),  # noqa: S104 - classified, never bound
        ("240.0.0.1", "a private address"),
        ("::ffff:10.0.0.1", "a private address"),
        ("93.184.216.34", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_classes(address: str, refusal: str | None) -> None:
    config = HttpPluginConfig(url="https://example.com/x", allowed_hosts=("example.com",))
    assert address_refusal(ipaddress.ip_address(address), config) == refusal


def test_allow_flags_open_only_their_class() -> None:
    loopback = HttpPluginConfig(url="https://x.test/", allow_loopback=True)
    private = HttpPluginConfig(url="https://x.test/", allow_private=True)
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), loopback) is None
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), loopback) == "a private address"
    assert address_refusal(ipaddress.ip_address("10.0.0.1"), private) is None
    assert address_refusal(ipaddress.ip_address("127.0.0.1"), private) == "a loopback address"


async def test_localhost_name_resolves_to_loopback_and_is_refused() -> None:
    config = HttpPluginConfig(url="https://localhost/x", allowed_hosts=("localhost",))
    with pytest.raises(PluginRefusedError, match="loopback"):
        await checked_addresses(config, 443)


async def test_host_outside_the_allowlist_is_refused() -> None:
    config = HttpPluginConfig(url="https://localhost/x", allowed_hosts=("api.example.com",))
    with pytest.raises(PluginRefusedError, match="not in the plugin's allowed hosts"):
        await checked_addresses(config, 443)


@pytest.mark.parametrize(
    ("path", "http", "message"),
    [
        ("/big", {"max_response_bytes": 100}, "larger than 100 bytes"),
        ("/slow", {"timeout": 0.2}, "did not answer within 0.2s"),
    ],
)
async def test_http_plugin_size_cap_and_timeout(
    plugin_api: tuple[PluginServer, str], path: str, http: dict[str, Any], message: str
) -> None:
    plugin_api[0].slow_seconds = 1.0
    manifest = weather_manifest(plugin_api[1], allow_loopback=True, **http)
    manifest["http"]["url"] = plugin_api[1] + path
    plugin = parse_plugin(manifest)
    assert plugin.http is not None
    with pytest.raises(ToolFailedError, match=message):
        await call_http(plugin.http, {})


async def test_http_plugin_post_sends_arguments_as_json(
    plugin_api: tuple[PluginServer, str],
) -> None:
    plugin = parse_plugin(weather_manifest(plugin_api[1], allow_loopback=True, method="POST"))
    assert plugin.http is not None
    answer = await call_http(plugin.http, {"city": "Oslo"})
    assert orjson.loads(answer) == {"city": "Oslo", "temp_c": 21}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"kind": "ftp"}, "kind must be"),
        ({"select": {}}, "select.always or give select.search_terms"),
        ({"http": {"url": "http://api.example.com/x"}}, "must be https"),
        (
            {"http": {"url": "https://evil.example/x", "allowed_hosts": ["api.example.com"]}},
            "not in http.allowed_hosts",
        ),
        ({"name": "bad name!"}, "plugin name"),
    ],
)
def test_bad_manifests_are_refused(change: dict[str, Any], message: str) -> None:
    from gateway.errors import PolicyError

    manifest = {**weather_manifest("https://api.example.com"), **change}
    with pytest.raises(PolicyError, match=message):
        parse_plugin(manifest)
