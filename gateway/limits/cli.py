"""Command-line pieces for limits and usage, kept apart so `gateway/cli.py` only wires them.

`add_limit_arguments` is shared by `clients update`, `keys create` and `keys update`: each
option sets a limit, `none` removes it, and an option not given leaves the limit as it was.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from redis.asyncio import Redis

from gateway.errors import InvalidRequestError
from gateway.limits.checks import LIMIT_FIELDS, MAX_LIMIT
from gateway.limits.usage import UsageRow, days_back, read_usage, totals
from gateway.store import keys

_HELP = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute (prompt + completion)",
    "max_concurrent": "requests in flight at once",
    "tokens_per_day": "token budget per UTC day (429 insufficient_quota past it)",
    "tokens_per_month": "token budget per UTC month",
}
_CLEAR = "none"


def limit_arg(value: str) -> int | str:
    if value.strip().lower() == _CLEAR:
        return _CLEAR
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0, or 'none'")
    return number


def add_limit_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("limits (N, or 'none' to remove)")
    for name in LIMIT_FIELDS:
        group.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=limit_arg, metavar="N", help=_HELP[name]
        )


def limit_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The limit fields the command line sets, name -> int or None (removed)."""
    changes: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if value != _CLEAR and int(value) > MAX_LIMIT:
            option = "--" + name.replace("_", "-")
            raise InvalidRequestError(
                f"{option} {value} is larger than the limit's most, {MAX_LIMIT}"
            )
        changes[name] = None if value == _CLEAR else int(value)
    return changes


def limits_text(record: Any) -> str:
    parts = [f"{name}={getattr(record, name)}" for name in LIMIT_FIELDS]
    return "  ".join(parts)


async def usage_report(
    redis: Redis, now: float, *, account: str | None, client: str | None, since_seconds: float
) -> tuple[dict[str, Any], str]:
    """Usage rows for `gateway usage`: (JSON data, table text)."""
    if account is not None:
        accounts = [account]
    else:
        members = await redis.smembers(keys.ACCOUNTS)
        accounts = sorted(m.decode() if isinstance(m, bytes) else m for m in members)
    days = days_back(now, max(1, math.ceil(since_seconds / 86400)))
    rows = await read_usage(redis, accounts, days, client)
    total = totals(rows)
    data = {
        "days": [days[0], days[-1]],
        "rows": [r.to_dict() for r in rows],
        "totals": total,
    }
    return data, _table(rows, total)


def _table(rows: list[UsageRow], total: dict[str, int]) -> str:
    if not rows:
        return "no usage"
    header: tuple[str, ...] = (
        "day",
        "account",
        "client",
        "key",
        "model",
        "requests",
        "prompt",
        "completion",
    )
    lines: list[tuple[str, ...]] = [header] + [
        (
            r.day,
            r.account,
            r.client,
            r.key_id,
            r.model or "-",
            str(r.requests),
            str(r.prompt_tokens),
            str(r.completion_tokens),
        )
        for r in rows
    ]
    lines.append(
        (
            "total",
            "",
            "",
            "",
            "",
            *(str(total[k]) for k in ("requests", "prompt_tokens", "completion_tokens")),
        )
    )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )
