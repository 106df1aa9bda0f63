"""The suite's secret scan: no secret it created may appear in Redis or in a log line.

Gateway keys are found by their shape (`gwk_<12 hex>_<43 url-safe>`), so every key any test
issued is covered; the fixed secrets (the HMAC secret, the upstream key, the admin tokens) are
listed. `conftest.py` scans Redis after every test (before the next one flushes it) and, at the
end of the session, every log line the tests captured and every log file a gateway process
wrote (`register_log_file`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import redis as sync_redis_lib

GATEWAY_KEY = re.compile(rb"gwk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}")
FIXED_SECRETS = (
    b"test-hmac-secret",
    b"upstream-secret-key",
    b"admin-token-for-tests",
    b"admin-test-token",
    b"fuzz-admin-token-3f9c",
)
#: A structured log line: structlog's console form in tests, or its JSON form in processes.
LOG_LINE = re.compile(rb'^(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\S* \[|\{.*"event":)')

_log_files: list[Path] = []


def register_log_file(path: Path) -> None:
    _log_files.append(path)


def log_files() -> list[Path]:
    return list(_log_files)


def leaks(blob: bytes) -> list[str]:
    """The secrets found in `blob` (gateway keys shown by their public id only)."""
    found = [f"gateway key {m.group()[:16].decode()}..." for m in GATEWAY_KEY.finditer(blob)]
    found += [f"secret {s[:6].decode()}..." for s in FIXED_SECRETS if s in blob]
    return found


def log_lines(text: str) -> Iterable[bytes]:
    for line in text.encode("utf-8", "replace").splitlines():
        if LOG_LINE.match(line):
            yield line


#: Where a secret is stored by design: a client record holds its upstream key when the
#: operator chose `--upstream-key` (documented as the less safe option).
_STORED_BY_DESIGN = ((b":client:", b"upstream-secret-key"),)


def redis_leaks(url: str) -> list[str]:
    found = []
    for entry in redis_dump(url):
        key = entry.split(b" ", 1)[0]
        for marker, secret in _STORED_BY_DESIGN:
            if marker in key:
                entry = entry.replace(secret, b"")
        found += [f"{leak} in Redis key {key[:60]!r}" for leak in leaks(entry)]
    return found


def redis_dump(url: str) -> list[bytes]:
    """Every key's name and value in the database at `url`, whatever its type."""
    client: Any
    if "+cluster://" in url:  # a Redis Cluster (tests/support/redis_cluster.py): every primary
        client = sync_redis_lib.RedisCluster.from_url(url.replace("+cluster", "", 1))
    else:
        client = sync_redis_lib.Redis.from_url(url, socket_timeout=5)
    out: list[bytes] = []
    try:
        for key in client.scan_iter(count=1000):
            kind_raw: Any = client.type(key)
            kind = kind_raw.decode()
            value: Any
            if kind == "string":
                value = client.get(key)
            elif kind == "hash":
                value = client.hgetall(key)
            elif kind in ("set",):
                value = client.smembers(key)
            elif kind == "list":
                value = client.lrange(key, 0, -1)
            elif kind == "zset":
                value = client.zrange(key, 0, -1)
            elif kind == "stream":
                value = client.xrange(key, "-", "+")
            else:
                value = kind
            out.append(key + b" " + repr(value).encode())
    finally:
        client.close()
    return out
