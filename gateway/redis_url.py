"""`GATEWAY_REDIS_URL`: checked once when settings load, and shown only with its password masked.

A bad URL or an unreachable Redis is an operator's first mistake; the CLI and the server say so
in one line that names the setting and the URL, never the password in it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from redis.exceptions import AuthenticationError, RedisError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.errors import ConfigError

SETTING = "GATEWAY_REDIS_URL"
SCHEMES = ("redis", "rediss", "unix", "redis+cluster", "rediss+cluster")
_EXAMPLES = (
    "redis://host:6379/0, rediss://..., unix:///path/redis.sock or redis+cluster://host:port"
)
_USERINFO_PASSWORD = re.compile(r"^([a-z+]+://[^:@/]*):[^@]*@", re.IGNORECASE)
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def masked(url: str) -> str:
    """`url` with any password (`user:PASSWORD@`, `?password=`) replaced by `***`."""
    url = _USERINFO_PASSWORD.sub(r"\1:***@", url)
    return _QUERY_PASSWORD.sub(r"\1***", url)


def check_redis_url(url: str) -> None:
    """Raise `ConfigError` unless `url` (non-empty) is a URL the Redis clients accept."""
    if not url:
        return  # the embedded Redis
    problem = _problem(url)
    if problem:
        raise ConfigError(
            f"{SETTING}={masked(url)!r} is not a Redis URL ({problem}); use {_EXAMPLES}"
        )


def _problem(url: str) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme.lower() not in SCHEMES:
        return f"unknown scheme {parts.scheme!r}" if parts.scheme else "no scheme"
    if parts.scheme.lower() == "unix":
        return "" if parts.path else "no socket path"
    if port == 0:
        return "port 0"
    return ""


def redis_failure(url: str, exc: RedisError, *, configured: bool = True) -> str:
    """One line for a Redis that failed a command: which Redis, which setting, what happened."""
    where = f"Redis at {masked(url)}"
    source = f"set by {SETTING}" if configured else f"the embedded Redis; {SETTING} is not set"
    reason = str(exc) or type(exc).__name__
    password = _password(url)
    if password:
        reason = reason.replace(password, "***")
    if isinstance(exc, AuthenticationError):
        return f"{where} ({source}) refused the credentials: {reason}"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError):
        return f"cannot reach {where} ({source}): {reason}"
    return f"{where} ({source}) failed: {type(exc).__name__}: {reason}"


def _password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""
