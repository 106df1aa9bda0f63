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
from gateway.limits.usage import (
    EndUserRow,
    UsageRow,
    days_back,
    read_end_user_usage,
    read_usage,
    totals,
)
from gateway.store import keys

_HELP = {
    "rpm": "requests per minute",
    "tpm": "tokens per minute (prompt + completion)",
    "max_concurrent": "requests in flight at once",
    "tokens_per_day": "token budget per UTC day (429 insufficient_quota past it)",
    "tokens_per_month": "token budget per UTC month",
    "usd_per_day": "dollar budget per UTC day (429 insufficient_quota past it)",
    "usd_per_month": "dollar budget per UTC month",
    "end_user_rpm": "requests per minute for each end user of the client",
    "end_user_usd_per_day": "dollar budget per UTC day for each end user of the client",
}
_CLEAR = "none"
#: Dollar limits, beside the counts of `LIMIT_FIELDS`.
USD_FIELDS = ("usd_per_day", "usd_per_month")
END_USER_FIELDS = ("end_user_rpm", "end_user_usd_per_day")
_USD = frozenset((*USD_FIELDS, "end_user_usd_per_day"))


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


def usd_arg(value: str) -> float | str:
    if value.strip().lower() == _CLEAR:
        return _CLEAR
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number < 1e12:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of dollars >= 0, or 'none'")
    return number


def add_limit_arguments(parser: argparse.ArgumentParser, *, end_user: bool = False) -> None:
    group = parser.add_argument_group("limits (N, or 'none' to remove)")
    names = LIMIT_FIELDS + USD_FIELDS + (END_USER_FIELDS if end_user else ())
    for name in names:
        usd = name in _USD
        group.add_argument(
            "--" + name.replace("_", "-"),
            dest=name,
            type=usd_arg if usd else limit_arg,
            metavar="USD" if usd else "N",
            help=_HELP[name],
        )


def limit_changes(args: argparse.Namespace) -> dict[str, Any]:
    """The limit fields the command line sets, name -> number or None (removed)."""
    changes: dict[str, Any] = {}
    for name in LIMIT_FIELDS + USD_FIELDS + END_USER_FIELDS:
        value = getattr(args, name, None)
        if value is None:
            continue
        if value != _CLEAR and int(value) > MAX_LIMIT:
            option = "--" + name.replace("_", "-")
            raise InvalidRequestError(
                f"{option} {value} is larger than the limit's most, {MAX_LIMIT}"
            )
        if value == _CLEAR:
            changes[name] = None
        else:  # dollar amounts keep their cents; counts are whole
            changes[name] = value if name in USD_FIELDS else int(value)
    return changes


def limits_text(record: dict[str, Any]) -> str:
    names = LIMIT_FIELDS + USD_FIELDS + END_USER_FIELDS
    return "  ".join(f"{name}={record[name]}" for name in names if name in record)


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
    end_users = await read_end_user_usage(redis, accounts, days, client)
    total = totals(rows)
    data = {
        "days": [days[0], days[-1]],
        "rows": [r.to_dict() for r in rows],
        "end_users": [r.to_dict() for r in end_users],
        "totals": total,
    }
    text = _table(rows, total)
    if end_users:
        text += "\n\nby end user\n" + _end_user_table(end_users)
    return data, text


def _usd(value: float) -> str:
    return f"{value:.6f}"


def _align(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _end_user_table(rows: list[EndUserRow]) -> str:
    header: tuple[str, ...] = ("day", "account", "client", "end user", "model", "requests",
                               "prompt", "completion", "cost_usd")  # fmt: skip
    lines: list[tuple[str, ...]] = [header] + [
        (r.day, r.account, r.client, r.end_user[:40], r.model or "-", str(r.requests),
         str(r.prompt_tokens), str(r.completion_tokens), _usd(r.cost_usd))
        for r in rows
    ]  # fmt: skip
    return _align(lines)


def _table(rows: list[UsageRow], total: dict[str, Any]) -> str:
    if not rows:
        return "no usage"
    header: tuple[str, ...] = ("day", "account", "client", "key", "model", "requests",
                               "prompt", "completion", "cost_usd")  # fmt: skip
    lines: list[tuple[str, ...]] = [header] + [
        (r.day, r.account, r.client, r.key_id, r.model or "-", str(r.requests),
         str(r.prompt_tokens), str(r.completion_tokens), _usd(r.cost_usd))
        for r in rows
    ]  # fmt: skip
    lines.append(
        ("total", "", "", "", "",
         *(str(total[k]) for k in ("requests", "prompt_tokens", "completion_tokens")),
         _usd(total["cost_usd"]))
    )  # fmt: skip
    return _align(lines)
