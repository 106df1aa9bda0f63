"""A plugin manifest: one tool the gateway offers the model and answers itself (`docs/managed.md`).

name: get_weather                 # the function name the model calls
description: Current weather for a city
parameters: {type: object, properties: {city: {type: string}}, required: [city]}
select: {always: false, search_terms: [weather, forecast]}
kind: static | http
static: {data: ...}               # kind static: the tool's answer, any JSON
http: {url, method, headers, timeout, max_response_bytes, allowed_hosts,
       allow_private, allow_loopback, allow_http}
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from gateway.documents import read_document
from gateway.errors import PolicyError

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MAX_TIMEOUT = 60.0


@dataclasses.dataclass(frozen=True, slots=True)
class HttpPluginConfig:
    url: str
    method: str = "GET"
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    timeout: float = 5.0
    max_response_bytes: int = 65536
    allowed_hosts: tuple[str, ...] = ()
    allow_private: bool = False
    allow_loopback: bool = False
    allow_http: bool = False

    @property
    def host(self) -> str:
        return (urlsplit(self.url).hostname or "").lower()


@dataclasses.dataclass(frozen=True, slots=True)
class Plugin:
    name: str
    description: str
    parameters: dict[str, Any]
    kind: str
    always: bool = False
    search_terms: tuple[str, ...] = ()
    static_data: Any = None
    http: HttpPluginConfig | None = None

    def selected_for(self, text: str) -> bool:
        """Offered always, or when the latest user message mentions one of its search terms."""
        lowered = text.lower()
        return self.always or any(term.lower() in lowered for term in self.search_terms)

    def tool(self) -> dict[str, Any]:
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }

    def summary(self) -> dict[str, Any]:
        """For listings: no header values (they may hold credentials)."""
        data: dict[str, Any] = {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "always": self.always,
            "search_terms": list(self.search_terms),
        }
        if self.http is not None:
            data["url"] = self.http.url
            data["header_names"] = sorted(self.http.headers)
        return data


def _http_config(data: Any) -> HttpPluginConfig:
    if not isinstance(data, dict) or not isinstance(data.get("url"), str):
        raise PolicyError("an http plugin needs http.url")
    parts = urlsplit(data["url"])
    allow_http = bool(data.get("allow_http", False))
    if parts.scheme != "https" and not (allow_http and parts.scheme == "http"):
        raise PolicyError("http.url must be https (allow_http: true permits http for development)")
    if not parts.hostname:
        raise PolicyError("http.url has no host")
    method = str(data.get("method", "GET")).upper()
    if method not in ("GET", "POST"):
        raise PolicyError("http.method must be GET or POST")
    timeout = float(data.get("timeout", 5.0))
    size = int(data.get("max_response_bytes", 65536))
    if not 0 < timeout <= _MAX_TIMEOUT or size < 1:
        raise PolicyError(f"http.timeout must be in (0, {_MAX_TIMEOUT}], max_response_bytes > 0")
    headers = data.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PolicyError("http.headers must map names to strings")
    hosts = tuple(h.lower() for h in data.get("allowed_hosts") or (parts.hostname,))
    if parts.hostname.lower() not in hosts:
        raise PolicyError(f"http.url host {parts.hostname!r} is not in http.allowed_hosts")
    return HttpPluginConfig(
        url=data["url"],
        method=method,
        headers=dict(headers),
        timeout=timeout,
        max_response_bytes=size,
        allowed_hosts=hosts,
        allow_private=bool(data.get("allow_private", False)),
        allow_loopback=bool(data.get("allow_loopback", False)),
        allow_http=allow_http,
    )


def parse_plugin(data: Any) -> Plugin:
    """Check a manifest (as stored or read from a file) and build the plugin."""
    if not isinstance(data, dict):
        raise PolicyError("a plugin manifest must be an object")
    name = data.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise PolicyError("plugin name must be 1-64 letters, digits, '_' or '-'")
    parameters = data.get("parameters") or {"type": "object", "properties": {}}
    if not isinstance(parameters, dict):
        raise PolicyError(f"plugin {name}: parameters must be a JSON schema object")
    select = data.get("select") or {}
    terms = select.get("search_terms") or ()
    if not isinstance(terms, list | tuple) or not all(isinstance(t, str) and t for t in terms):
        raise PolicyError(f"plugin {name}: select.search_terms must be a list of strings")
    always = bool(select.get("always", False))
    if not always and not terms:
        raise PolicyError(f"plugin {name}: set select.always or give select.search_terms")
    kind = data.get("kind")
    common: dict[str, Any] = {
        "name": name,
        "description": str(data.get("description", "")),
        "parameters": parameters,
        "kind": kind,
        "always": always,
        "search_terms": tuple(terms),
    }
    if kind == "static":
        if not isinstance(data.get("static"), dict) or "data" not in data["static"]:
            raise PolicyError(f"plugin {name}: a static plugin needs static.data")
        return Plugin(**common, static_data=data["static"]["data"])
    if kind == "http":
        try:
            return Plugin(**common, http=_http_config(data.get("http")))
        except (TypeError, ValueError) as exc:
            raise PolicyError(f"plugin {name}: {exc}") from exc
    raise PolicyError(f"plugin {name}: kind must be 'static' or 'http'")


def read_manifest(path: Path) -> dict[str, Any]:
    data = read_document(path, "plugin fields")
    parse_plugin(data)
    return data
