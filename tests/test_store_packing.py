"""hiredis packs the gateway's Redis commands byte for byte as redis-py's own packer would."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio.connection import Connection, UnixDomainSocketConnection
from redis.exceptions import DataError

from gateway.store.packing import HiredisPacking, with_hiredis_packing
from gateway.store.redis import create_redis

COMMANDS: list[tuple[Any, ...]] = [
    ("EVALSHA", "0" * 40, 2, "gw:a", b"gw:b", 1, -7, 2.5, 1e20, 10**30, "é", b"", b"\x00\xff"),
    ("XADD", b"stream", "*", "record", b"x" * 10000, "text", "y" * 7000),
    ("CONFIG GET", "maxmemory"),
    (b"GET", "key"),
    ("SET", "key", memoryview(b"ab")),
]


def packed(connection: Any, args: tuple[Any, ...]) -> bytes:
    return b"".join(bytes(part) for part in connection.pack_command(*args))


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: str(args[0]))
def test_the_same_bytes_as_redis_py(args: tuple[Any, ...]) -> None:
    assert packed(with_hiredis_packing(Connection)(), args) == packed(Connection(), args)


@pytest.mark.parametrize("value", [True, None, object()])
def test_what_redis_py_refuses_it_still_refuses(value: object) -> None:
    with pytest.raises(DataError):
        with_hiredis_packing(Connection)().pack_command("SET", "key", value)


def test_undecodable_text_fails_as_before() -> None:
    with pytest.raises(UnicodeEncodeError):
        with_hiredis_packing(Connection)().pack_command("SET", "key", "a\udcff")


def test_every_connection_kind_keeps_its_class() -> None:
    unix = with_hiredis_packing(UnixDomainSocketConnection)
    assert issubclass(unix, HiredisPacking)
    assert issubclass(unix, UnixDomainSocketConnection)
    assert with_hiredis_packing(unix) is unix


async def test_create_redis_packs_with_hiredis() -> None:
    client = create_redis("redis://127.0.0.1:1/0")
    try:
        assert issubclass(client.connection_pool.connection_class, HiredisPacking)
    finally:
        await client.aclose()
