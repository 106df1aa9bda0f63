"""Rewrite rules, a client's policy: what the gateway changes in a request before the upstream.

`ClientPolicy` is stored on the client record (JSON, unknown keys ignored). `apply_policy`
returns a rewritten copy of the body, or None when nothing in the policy changed this request:
then the tenant's bytes go upstream untouched, with no re-serialisation. Steps, in order:

    allowed models -> strip -> defaults -> forced -> ceilings -> system prompt -> model alias

A refused model is a 400 with code `model_not_allowed`, raised before any upstream is called.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from gateway.balancing import Deployment, RoutingError, routing_fields
from gateway.errors import InvalidRequestError, PolicyError
from gateway.urls import public_url

#: The tenant endpoints, by the names the pipeline's routes, providers and rules use.
Endpoint = Literal[
    "chat", "completions", "embeddings", "responses", "models", "messages", "count_tokens"
]

MODES = ("passthrough", "managed")
SYSTEM_PROMPT_MODES = ("if-missing", "always")

#: Fields a policy may never strip, default or force: the gateway and the upstream need them.
PROTECTED = frozenset({"model", "messages", "stream", "input", "prompt"})

#: Which body fields a `max_tokens_ceiling` bounds, per endpoint.
CEILING_FIELDS: dict[Endpoint, tuple[str, ...]] = {
    "chat": ("max_tokens", "max_completion_tokens"),
    "completions": ("max_tokens",),
    "embeddings": (),
    "responses": ("max_output_tokens",),
    "models": (),
    "messages": ("max_tokens",),
    "count_tokens": (),
}

_DEFAULT_AZURE_API_VERSION = "2024-10-21"


@dataclasses.dataclass(frozen=True, slots=True)
class UpstreamTarget:
    """A fallback upstream: tried, in order, after the client's own `upstream_url`."""

    url: str
    key_env: str = ""
    key: str = ""

    def public_dict(self) -> dict[str, Any]:
        return {"url": self.url, "key_env": self.key_env, "key": "***" if self.key else ""}

    def public_url(self) -> str:
        """The URL as logs and the journal show it: no `user:password@`, no query string."""
        return public_url(self.url)


@dataclasses.dataclass(frozen=True, slots=True)
class ClientPolicy:
    """Per-client rewrite rules. Mappings are read-only by convention (JSON-friendly dicts)."""

    mode: str = "passthrough"
    aliases: dict[str, str] = dataclasses.field(default_factory=dict)
    allowed_models: tuple[str, ...] = ()
    defaults: dict[str, Any] = dataclasses.field(default_factory=dict)
    forced: dict[str, Any] = dataclasses.field(default_factory=dict)
    max_tokens_ceiling: int | None = None
    strip: tuple[str, ...] = ()
    system_prompt: str = ""
    system_prompt_mode: str = "if-missing"
    upstream_headers: dict[str, str] = dataclasses.field(default_factory=dict)
    fallbacks: tuple[UpstreamTarget, ...] = ()
    #: Per-client retry count at each upstream; None uses the `upstream_retries` setting.
    retries: int | None = None
    azure_api_version: str = _DEFAULT_AZURE_API_VERSION
    max_hops: int = 3
    #: Managed-mode tool plugins (manifests, see `gateway.plugins.manifest`).
    plugins: tuple[dict[str, Any], ...] = ()
    #: Load balancing (`gateway.balancing`): when `deployments` is set it replaces the client's
    #: own upstream; `request_deadline` (seconds) overrides the setting for this client.
    strategy: str = "ordered"
    deployments: tuple[Deployment, ...] = ()
    request_deadline: float | None = None

    @property
    def rewrites(self) -> bool:
        """Whether any rule can change a request body (False: always byte-for-byte)."""
        return bool(
            self.aliases
            or self.defaults
            or self.forced
            or self.max_tokens_ceiling is not None
            or self.strip
            or self.system_prompt
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def public_dict(self) -> dict[str, Any]:
        data = self.to_dict()
        data["fallbacks"] = [target.public_dict() for target in self.fallbacks]
        data["plugins"] = [_masked_plugin(plugin) for plugin in self.plugins]
        data["deployments"] = [deployment.public_dict() for deployment in self.deployments]
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClientPolicy:
        """Build and check a policy from JSON-shaped data; unknown keys are an error here
        (a typo in a policy file must not pass silently) but ignored in stored records."""
        unknown = set(data) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise PolicyError(f"unknown policy field(s): {', '.join(sorted(unknown))}")
        return _parse(dict(data))

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> ClientPolicy:
        names = {field.name for field in dataclasses.fields(cls)}
        return _parse({key: value for key, value in data.items() if key in names})


def _masked_plugin(manifest: dict[str, Any]) -> dict[str, Any]:
    """A plugin manifest as shown to operators: header values (API keys) hidden."""
    http = manifest.get("http")
    if not isinstance(http, dict) or not isinstance(http.get("headers"), dict):
        return manifest
    headers = dict.fromkeys(http["headers"], "***")
    return {**manifest, "http": {**http, "headers": headers}}


def _str_map(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in value.items()
    ):
        raise PolicyError(f"{name} must map non-empty strings to non-empty strings")
    return dict(value)


def _str_tuple(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise PolicyError(f"{name} must be a list of non-empty strings")
    return tuple(value)


def _params(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise PolicyError(f"{name} must be an object of parameter names to values")
    protected = PROTECTED.intersection(value)
    if protected:
        raise PolicyError(f"{name} may not set {', '.join(sorted(protected))}")
    return dict(value)


def _target(value: Any) -> UpstreamTarget:
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, dict) or not isinstance(value.get("url"), str):
        raise PolicyError("each fallback must be a URL or an object with a 'url'")
    url = value["url"].rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise PolicyError(f"fallback {url!r} is not an http(s) URL")
    return UpstreamTarget(
        url=url, key_env=str(value.get("key_env") or ""), key=str(value.get("key") or "")
    )


def _positive_int(name: str, value: Any, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < (0 if allow_zero else 1):
        raise PolicyError(
            f"{name} must be a {'non-negative' if allow_zero else 'positive'} integer"
        )
    return value


def _parse(data: dict[str, Any]) -> ClientPolicy:
    kwargs: dict[str, Any] = {}
    if "mode" in data:
        if data["mode"] not in MODES:
            raise PolicyError(f"mode must be one of {', '.join(MODES)}")
        kwargs["mode"] = data["mode"]
    for name in ("aliases", "upstream_headers"):
        if name in data:
            kwargs[name] = _str_map(name, data[name])
    for name in ("allowed_models", "strip"):
        if name in data:
            kwargs[name] = _str_tuple(name, data[name])
    if PROTECTED.intersection(kwargs.get("strip", ())):
        raise PolicyError(f"strip may not remove {', '.join(sorted(PROTECTED))}")
    for name in ("defaults", "forced"):
        if name in data:
            kwargs[name] = _params(name, data[name])
    if data.get("max_tokens_ceiling") is not None:
        kwargs["max_tokens_ceiling"] = _positive_int(
            "max_tokens_ceiling", data["max_tokens_ceiling"]
        )
    if "system_prompt" in data:
        if not isinstance(data["system_prompt"], str):
            raise PolicyError("system_prompt must be a string")
        kwargs["system_prompt"] = data["system_prompt"]
    if "system_prompt_mode" in data:
        if data["system_prompt_mode"] not in SYSTEM_PROMPT_MODES:
            raise PolicyError(f"system_prompt_mode must be one of {', '.join(SYSTEM_PROMPT_MODES)}")
        kwargs["system_prompt_mode"] = data["system_prompt_mode"]
    if "fallbacks" in data:
        if not isinstance(data["fallbacks"], list | tuple):
            raise PolicyError("fallbacks must be a list")
        kwargs["fallbacks"] = tuple(_target(item) for item in data["fallbacks"])
    if data.get("retries") is not None:
        kwargs["retries"] = _positive_int("retries", data["retries"], allow_zero=True)
    if "azure_api_version" in data:
        if not isinstance(data["azure_api_version"], str) or not data["azure_api_version"]:
            raise PolicyError("azure_api_version must be a non-empty string")
        kwargs["azure_api_version"] = data["azure_api_version"]
    if "max_hops" in data:
        kwargs["max_hops"] = _positive_int("max_hops", data["max_hops"])
    if "plugins" in data:
        if not isinstance(data["plugins"], list | tuple) or not all(
            isinstance(p, dict) for p in data["plugins"]
        ):
            raise PolicyError("plugins must be a list of plugin manifests")
        kwargs["plugins"] = tuple(dict(p) for p in data["plugins"])
    try:
        kwargs.update(routing_fields(data))
    except RoutingError as exc:
        raise PolicyError(str(exc)) from exc
    return ClientPolicy(**kwargs)


def check_model(policy: ClientPolicy, model: str) -> None:
    """Refuse a model the client may not use. An alias is always allowed."""
    if not policy.allowed_models or model in policy.allowed_models or model in policy.aliases:
        return
    offered = sorted(set(policy.allowed_models) | set(policy.aliases))
    raise InvalidRequestError(
        f"model {model!r} is not allowed for this client; allowed: {', '.join(offered)}",
        code="model_not_allowed",
        param="model",
    )


def apply_policy(
    policy: ClientPolicy, endpoint: Endpoint, data: dict[str, Any]
) -> dict[str, Any] | None:
    """The body the upstream should receive, or None when it is the tenant's body unchanged."""
    model = data.get("model")
    if isinstance(model, str):
        check_model(policy, model)
    if not policy.rewrites:
        return None
    out = dict(data)
    for name in policy.strip:
        out.pop(name, None)
    for name, value in policy.defaults.items():
        out.setdefault(name, value)
    out.update(policy.forced)
    ceiling = policy.max_tokens_ceiling
    if ceiling is not None:
        for name in CEILING_FIELDS[endpoint]:
            value = out.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value > ceiling:
                out[name] = ceiling
    if policy.system_prompt:
        _apply_system_prompt(policy, endpoint, out)
    if isinstance(model, str) and model in policy.aliases:
        out["model"] = policy.aliases[model]
    return None if out == data else out


def _apply_system_prompt(policy: ClientPolicy, endpoint: Endpoint, out: dict[str, Any]) -> None:
    always = policy.system_prompt_mode == "always"
    if endpoint == "chat":
        messages = out.get("messages")
        if not isinstance(messages, list):
            return
        has_system = any(
            isinstance(m, dict) and m.get("role") in ("system", "developer") for m in messages
        )
        if always or not has_system:
            out["messages"] = [{"role": "system", "content": policy.system_prompt}, *messages]
    elif endpoint == "responses":
        current = out.get("instructions")
        if not current:
            out["instructions"] = policy.system_prompt
        elif always and isinstance(current, str):
            out["instructions"] = policy.system_prompt + "\n\n" + current
    elif endpoint in ("messages", "count_tokens"):  # Anthropic's `system`: a string or blocks
        current = out.get("system")
        if not current:
            out["system"] = policy.system_prompt
        elif always and isinstance(current, str):
            out["system"] = policy.system_prompt + "\n\n" + current
        elif always and isinstance(current, list):
            out["system"] = [{"type": "text", "text": policy.system_prompt}, *current]


def alias_listing(policy: ClientPolicy) -> dict[str, Any]:
    """`GET /v1/models` for a client with aliases: the names the tenant may ask for."""
    return {
        "object": "list",
        "data": [
            {"id": alias, "object": "model", "created": 0, "owned_by": "gateway"}
            for alias in sorted(policy.aliases)
        ],
    }
