"""What the Anthropic end-to-end tests share: SDK options for a tenant, messages, a tool."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestServer

from tests.conftest import Tenant

HI: Any = [{"role": "user", "content": "Hi there"}]
WEATHER_ANTHROPIC: Any = {
    "name": "weather",
    "description": "Weather by city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
WEATHER_OPENAI: Any = {
    "type": "function",
    "function": {
        "name": "weather",
        "description": "Weather by city",
        "parameters": WEATHER_ANTHROPIC["input_schema"],
    },
}


def anthropic_kwargs(gateway: TestServer, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    """`anthropic.Anthropic(...)` options for a tenant addressed by Host."""
    kwargs: dict[str, Any] = {
        "base_url": str(gateway.make_url("")),
        "api_key": tenant.key,
        "default_headers": {"Host": tenant.hostname},
        "max_retries": 0,
        "timeout": 10.0,
    }
    kwargs.update(overrides)
    return kwargs


def openai_kwargs(gateway: TestServer, tenant: Tenant) -> dict[str, Any]:
    return {
        "base_url": str(gateway.make_url("/v1")),
        "api_key": tenant.key,
        "default_headers": {"Host": tenant.hostname},
        "max_retries": 0,
        "timeout": 10.0,
    }
