"""The embedded Redis: a real redis-server child on a loopback port or a private Unix socket."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import redis

from gateway.errors import ConfigError
from gateway.redis_server import EmbeddedRedis, embedded_redis_url
from tests.conftest import free_port


def _ping(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)
    try:
        return bool(client.ping())
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()


def test_tcp_start_and_stop(tmp_path: Path) -> None:
    port = free_port()
    server = EmbeddedRedis(tmp_path / "r", port=port, persistent=False)
    url = server.start()
    try:
        assert url == f"redis://127.0.0.1:{port}/0"
        client = redis.Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
        process = server.process
        assert process is not None
    finally:
        server.stop()
    assert process.returncode is not None
    assert not _ping(url)
    assert server.process is None
    server.stop()  # stopping twice is harmless


def test_unix_socket_start_and_stop(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r")
    url = server.start()
    try:
        assert url == f"unix://{tmp_path.resolve() / 'r' / 'redis.sock'}"
        assert _ping(url)
        mode = stat.S_IMODE(server.socket_path.stat().st_mode)
        assert mode & 0o077 == 0, "only the owner may connect"
        assert "port 0" in (tmp_path / "r" / "redis.conf").read_text(encoding="utf-8")
    finally:
        server.stop()
    assert not _ping(url)


def test_long_data_dir_gets_a_short_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    server = EmbeddedRedis(deep)
    assert len(str(server.socket_path)) <= 100
    url = server.start()
    try:
        assert _ping(url)
    finally:
        server.stop()


def test_persistent_data_survives_a_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "r")
    client = redis.Redis.from_url(server.start())
    client.set("kept", "yes")
    client.close()
    server.stop()
    again = EmbeddedRedis(tmp_path / "r")
    client = redis.Redis.from_url(again.start())
    try:
        assert client.get("kept") == b"yes"
    finally:
        client.close()
        again.stop()


def test_a_server_that_cannot_start_is_a_clear_error(tmp_path: Path) -> None:
    bad = EmbeddedRedis(tmp_path / "d", executable="/bin/false")
    with pytest.raises(ConfigError, match="exited"):
        bad.start()


def test_embedded_redis_url_starts_one_and_stops_it(tmp_path: Path) -> None:
    with embedded_redis_url(tmp_path / "var") as url:
        assert url.startswith("unix://")
        assert _ping(url)
    assert not _ping(url)


def test_embedded_redis_url_reuses_a_running_one(tmp_path: Path) -> None:
    running = EmbeddedRedis(tmp_path / "var" / "redis")
    url = running.start()
    try:
        with embedded_redis_url(tmp_path / "var") as shared:
            assert shared == url
            client = redis.Redis.from_url(shared)
            client.set("from-cli", "1")
            client.close()
        assert _ping(url), "a Redis it did not start is left running"
        assert running.process is not None
        assert running.process.poll() is None
    finally:
        running.stop()
