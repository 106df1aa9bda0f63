"""Redis commands packed by hiredis (C) rather than redis-py's asyncio packer (Python).

redis-py's asyncio connections parse replies with hiredis when it is installed, but pack every
command in Python: per argument an encode call and a join of the growing buffer. The journal's
batch script (a dozen arguments per record) and the limiter's two scripts per request made that
packer one of the largest items of the gateway's own CPU profile (`bench/README.md`).
`hiredis.pack_command` writes the same bytes (RESP arrays of bulk strings; str as UTF-8, int and
float as redis-py writes them, `repr`), so a connection class gets it through `HiredisPacking`.

Anything that is not plainly bytes, str, int or float (a bool, None, an int subclass, a
memoryview), a command name with a space, or an encoder other than strict UTF-8 goes to redis-py's
own packer, so its errors (`DataError`) and its output for those stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.connection import AbstractConnection
from redis.utils import HIREDIS_AVAILABLE

_PLAIN = frozenset({bytes, str, int, float})

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None = None
if HIREDIS_AVAILABLE:
    from hiredis import pack_command as _hiredis_pack


class HiredisPacking(AbstractConnection):
    """Put before a redis-py asyncio connection class: its commands are packed by hiredis."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if _hiredis_pack is None or not self._hiredis_packs(args):
            return super().pack_command(*args)
        return [_hiredis_pack(args)]

    def _hiredis_packs(self, args: tuple[Any, ...]) -> bool:
        encoder = self.encoder
        if encoder.encoding != "utf-8" or encoder.encoding_errors != "strict" or not args:
            return False
        name = args[0]
        if (name.find(" ") if type(name) is str else name.find(b" ")) >= 0:
            return False  # "CONFIG GET": redis-py splits it in two arguments
        return all(type(arg) in _PLAIN for arg in args)


_CLASSES: dict[type[Any], type[Any]] = {}


def with_hiredis_packing(connection_class: type[Any]) -> type[Any]:
    """`connection_class` (TCP, TLS or Unix socket) with `HiredisPacking` in front of it."""
    if issubclass(connection_class, HiredisPacking):
        return connection_class
    if connection_class not in _CLASSES:
        name = f"HiredisPacking{connection_class.__name__}"
        _CLASSES[connection_class] = type(name, (HiredisPacking, connection_class), {})
    return _CLASSES[connection_class]


def use_hiredis_packing(client: Redis) -> Redis:
    """Make the connections `client`'s pool opens from now on pack with hiredis."""
    pool = client.connection_pool
    if HIREDIS_AVAILABLE:
        pool.connection_class = with_hiredis_packing(pool.connection_class)
    return client
