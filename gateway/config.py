"""Settings: a frozen record read from `config/gateway.toml`, overridden by `GATEWAY_*` variables.

The dataclass defaults mirror `config/gateway.toml` (a test keeps them equal), so an installed
gateway without the file behaves exactly like a checkout with it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import os
import secrets
import tomllib
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gateway.errors import ConfigError
from gateway.redis_url import check_redis_url

ENV_PREFIX = "GATEWAY_"
DEFAULT_CONFIG_PATH = Path("config/gateway.toml")
SECRET_FILE_NAME = "gateway.secret"  # noqa: S105 - a file name


@dataclasses.dataclass(frozen=True, slots=True)
class Settings:
    """Everything the server and the CLI are configured with."""

    redis_url: str = ""
    api_domain: str = "api.localhost"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    secret: str = ""
    upstream_timeout: float = 600.0
    upstream_connect_timeout: float = 10.0
    upstream_retries: int = 2
    upstream_backoff: float = 0.25
    upstream_backoff_max: float = 8.0
    upstream_retry_after_max: float = 30.0
    request_deadline: float = 600.0
    outlier_consecutive_failures: int = 5
    outlier_base_ejection: float = 30.0
    outlier_max_ejection: float = 300.0
    max_body_bytes: int = 4 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    keepalive_timeout: float = 75.0
    trusted_proxies: str = ""
    path_routing: bool = True
    var_dir: str = "var"
    cache_ttl: float = 5.0
    journal_enabled: bool = True
    journal_max_records: int = 1_000_000
    journal_retention: float = 604800.0
    journal_capture_bytes: int = 1024 * 1024
    journal_queue_size: int = 100_000
    journal_queue_bytes: int = 64 * 1024 * 1024
    journal_redact_headers: str = ""
    journal_redact_paths: str = ""
    journal_shards: int = 8
    admin_host: str = "127.0.0.1"
    admin_port: int = 8081
    admin_token: str = ""
    log_level: str = "info"
    access_log: bool = True
    rate_limit_fail_open: bool = True
    rate_limit_lease: float = 900.0
    usage_flush_interval: float = 1.0
    usage_retention_days: int = 400

    @property
    def var_path(self) -> Path:
        return Path(self.var_dir)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _coerce(name: str, raw: object, kind: type) -> Any:
    """Turn a TOML or environment value into the field's type, or say clearly why not."""
    if kind is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"setting {name!r}: expected true or false, got {raw!r}")
    if isinstance(raw, bool) and kind is not bool:
        raise ConfigError(f"setting {name!r}: expected {kind.__name__}, got a boolean")
    if not isinstance(raw, str) and not isinstance(raw, kind) and (kind, type(raw)) != (float, int):
        # A TOML value of the wrong type: int(8080.5) would silently truncate, str(5) accept junk.
        raise ConfigError(f"setting {name!r}: expected {kind.__name__}, got {raw!r}")
    try:
        return kind(raw)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"setting {name!r}: expected {kind.__name__}, got {raw!r}") from exc


_FIELD_TYPES: dict[str, type] = dict(typing.get_type_hints(Settings))


def load_settings(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if present), then apply `GATEWAY_*` overrides, then validate."""
    env = os.environ if environ is None else environ
    if path is None:
        path = Path(env.get("GATEWAY_CONFIG", "") or DEFAULT_CONFIG_PATH)
    values: dict[str, Any] = {}
    if path.is_file():
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: {exc}") from exc
        for key, raw in document.items():
            if key not in _FIELD_TYPES:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, _FIELD_TYPES[key])
    elif env.get("GATEWAY_CONFIG"):
        raise ConfigError(f"GATEWAY_CONFIG names {path}, which is not a file")
    for key, kind in _FIELD_TYPES.items():
        raw_env = env.get(ENV_PREFIX + key.upper())
        if raw_env is not None:
            values[key] = _coerce(ENV_PREFIX + key.upper(), raw_env, kind)
    settings = Settings(**values)
    _validate(settings)
    return settings


#: The log levels `log_level` may name.
LOG_LEVELS = ("debug", "info", "warning", "error")


def _validate(settings: Settings) -> None:
    if settings.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"log_level {settings.log_level[:40]!r} is not one of {', '.join(LOG_LEVELS)}"
            " (GATEWAY_LOG_LEVEL)"
        )
    if not 0 <= settings.port <= 65535:
        raise ConfigError(f"port {settings.port} is out of range")
    if settings.rate_limit_lease <= 0 or settings.usage_flush_interval <= 0:
        raise ConfigError("rate_limit_lease and usage_flush_interval must be positive")
    if settings.workers < 1:
        raise ConfigError("workers must be at least 1")
    if min(settings.header_timeout, settings.keepalive_timeout, settings.body_timeout) <= 0:
        raise ConfigError("header_timeout, keepalive_timeout and body_timeout must be positive")
    if settings.max_body_bytes < 1024:
        raise ConfigError("max_body_bytes must be at least 1024")
    if settings.upstream_timeout <= 0 or settings.upstream_connect_timeout <= 0:
        raise ConfigError("upstream timeouts must be positive")
    if settings.request_deadline <= 0:
        raise ConfigError("request_deadline must be positive")
    if settings.outlier_consecutive_failures < 1:
        raise ConfigError("outlier_consecutive_failures must be at least 1")
    if not 0 < settings.outlier_base_ejection <= settings.outlier_max_ejection:
        raise ConfigError("outlier_base_ejection must be positive and at most outlier_max_ejection")
    if settings.journal_capture_bytes < 0 or settings.journal_queue_size < 1:
        raise ConfigError("journal_capture_bytes must be >= 0 and journal_queue_size >= 1")
    if settings.journal_queue_bytes < 1024 * 1024:
        raise ConfigError("journal_queue_bytes must be at least 1 MiB")
    if not 1 <= settings.journal_shards <= 1024:
        raise ConfigError("journal_shards must be from 1 to 1024")
    if not 0 <= settings.admin_port <= 65535:
        raise ConfigError(f"admin_port {settings.admin_port} is out of range")
    if settings.upstream_retries < 0 or settings.upstream_backoff < 0:
        raise ConfigError("upstream_retries and upstream_backoff must not be negative")
    if not settings.api_domain or settings.api_domain != settings.api_domain.lower():
        raise ConfigError("api_domain must be a non-empty lower-case domain")
    check_redis_url(settings.redis_url)


def read_or_create_token(path: Path, *, create: bool) -> str | None:
    """A private random token kept in `path` (mode 0600): read it, or make it when asked.

    Creation holds an exclusive lock beside the file, so two processes starting at once agree
    on one token instead of one of them keeping a value the other overwrote.
    """
    value = _read_token(path)
    if value or not create:
        return value
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.with_name(path.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        value = _read_token(path)
        if value:
            return value
        value = secrets.token_urlsafe(32)
        temporary = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(value + "\n")
        os.replace(temporary, path)
    return value


def _read_token(path: Path) -> str | None:
    if not path.is_file():
        return None
    return path.read_text(encoding="utf-8").strip() or None


def resolve_secret(settings: Settings, *, create: bool = False) -> str:
    """The key-hashing secret: the setting, else `var_dir/gateway.secret` (made when asked)."""
    if settings.secret:
        return settings.secret
    secret_file = settings.var_path / SECRET_FILE_NAME
    value = read_or_create_token(secret_file, create=create)
    if value is None:
        raise ConfigError(
            f"no key-hashing secret: set GATEWAY_SECRET or create {secret_file} "
            "(`make run` creates one)"
        )
    return value
