"""Running one tool call: a static plugin's data, or an http plugin's guarded request.

A tool's failure (bad arguments, refused host, timeout, oversized or failing response) becomes
the tool's result, `{"error": ...}`, so the model can answer around it; it never fails the
tenant's request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import aiohttp
import orjson

from gateway.errors import PluginRefusedError, ToolFailedError
from gateway.plugins.manifest import HttpPluginConfig, Plugin
from gateway.plugins.ssrf import PinnedResolver, checked_addresses


def parse_arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        value = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError as exc:
        raise ToolFailedError(f"arguments are not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ToolFailedError("arguments must be a JSON object")
    return value


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


async def run_tool(plugin: Plugin, raw_arguments: Any) -> tuple[str, bool]:
    """(result text for the model, ok)."""
    try:
        arguments = parse_arguments(raw_arguments)
        if plugin.http is None:
            return _as_text(plugin.static_data), True
        return await call_http(plugin.http, arguments), True
    except (ToolFailedError, PluginRefusedError) as exc:
        return orjson.dumps({"error": str(exc)}).decode(), False


def _query(arguments: dict[str, Any]) -> dict[str, str]:
    return {
        key: value if isinstance(value, str) else orjson.dumps(value).decode()
        for key, value in arguments.items()
    }


async def call_http(config: HttpPluginConfig, arguments: dict[str, Any]) -> str:
    parts = urlsplit(config.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await checked_addresses(config, port)
    connector = aiohttp.TCPConnector(resolver=PinnedResolver(addresses), use_dns_cache=False)
    timeout = aiohttp.ClientTimeout(total=config.timeout)
    kwargs: dict[str, Any] = {"headers": config.headers, "allow_redirects": False}
    if config.method == "GET":
        kwargs["params"] = _query(arguments)
    else:
        kwargs["json"] = arguments
    try:
        async with (
            aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
            session.request(config.method, config.url, **kwargs) as response,
        ):
            if response.status >= 400:
                raise ToolFailedError(f"the tool's API answered {response.status}")
            body = bytearray()
            async for chunk in response.content.iter_chunked(16384):
                body += chunk
                if len(body) > config.max_response_bytes:
                    raise ToolFailedError(
                        f"the tool's response is larger than {config.max_response_bytes} bytes"
                    )
            return body.decode("utf-8", "replace")
    except TimeoutError as exc:
        raise ToolFailedError(f"the tool's API did not answer within {config.timeout}s") from exc
    except aiohttp.ClientError as exc:
        raise ToolFailedError(f"the tool's API failed: {type(exc).__name__}") from exc
