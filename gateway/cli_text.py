"""How the CLI prints records for people (without `--json`): `name: value` lines, aligned,
with times in UTC, lists comma-separated, nested objects as compact JSON and `-` for nothing;
never a Python repr."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any

import orjson

NOTHING = "-"


def value_text(name: str, value: Any) -> str:
    if value is None or value == "" or value == () or value == [] or value == {}:
        return NOTHING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name.endswith("_at") and isinstance(value, int | float):
        moment = datetime.datetime.fromtimestamp(value, datetime.UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, list | tuple) and all(isinstance(v, str | int | float) for v in value):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict | list | tuple):
        return orjson.dumps(value).decode()
    return str(value)


def fields_text(data: Mapping[str, Any], *, nested: tuple[str, ...] = ()) -> str:
    """One aligned `name: value` line per field; the `nested` mappings one level indented."""
    rows: list[tuple[str, str]] = []
    for name, value in data.items():
        if name in nested and isinstance(value, Mapping):
            rows.append((name, ""))
            rows += [(f"  {key}", value_text(key, sub)) for key, sub in value.items()]
        else:
            rows.append((name, value_text(name, value)))
    width = max((len(name) for name, _ in rows), default=0) + 2
    return "\n".join(f"{name + ':':<{width}}{text}".rstrip() for name, text in rows)


def key_state(record: Mapping[str, Any], now: float | None = None) -> str:
    """`revoked`, `expired` or `active`: what a key would get at the gateway right now."""
    if record.get("revoked_at") is not None:
        return "revoked"
    expires = record.get("expires_at")
    if expires is not None and (time.time() if now is None else now) >= expires:
        return "expired"
    return "active"
