"""`gateway journal tail | show | stats`: the journal from a terminal (see docs/journal.md)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.errors import FilterError, NotFoundError
from gateway.journal.reader import JournalFilter, JournalReader, check_status
from gateway.journal.stats import journal_stats

ArgType = Callable[[str], Any]


def status_arg(value: str) -> str:
    try:
        return check_status(value)
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def lines_arg(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return int(value)


def record_line(record: dict[str, Any]) -> str:
    who = f"{record['account'] or '-'}/{record['client'] or '-'}"
    latency = record["latency_ms"]["total"]
    model = record["model"]["answered"] or record["model"]["requested"] or "-"
    tokens = (record["usage"] or {}).get("total_tokens", "-")
    return (
        f"{record['time']}  {record['status']}  {record['outcome']:<19} {who}  "
        f"{record['method']} {record['path']}  {latency:.1f}ms  model={model}  tokens={tokens}  "
        f"{record['request_id']}"
    )


def _write(args: argparse.Namespace, record: dict[str, Any]) -> None:
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(record) + b"\n")
    else:
        sys.stdout.write(record_line(record) + "\n")
    sys.stdout.flush()


def _filter(args: argparse.Namespace) -> JournalFilter:
    return JournalFilter(account=args.account, client=args.client, status=args.status)


async def journal_tail(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    reader = JournalReader(redis)
    flt = _filter(args)
    last: Any = await redis.xrevrange(flt.stream, "+", "-", count=1)
    start = last[0][0].decode() if last else "0-0"
    records, _cursor = await reader.page(flt, limit=args.lines)
    for record in reversed(records):
        _write(args, record)
    if args.follow:
        async for record in reader.follow(flt, after=start):
            _write(args, record)


async def journal_show(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = await JournalReader(redis).get(args.request_id)
    if record is None:
        raise NotFoundError(f"no journal record for request id {args.request_id!r}")
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(record, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(record_line(record) + "\n")
        for section in ("latency_ms", "model", "usage", "stream", "error", "request", "response"):
            text = orjson.dumps(record[section], option=orjson.OPT_INDENT_2).decode()
            sys.stdout.write(f"{section}: {text}\n")
    sys.stdout.flush()


def stats_text(stats: dict[str, Any]) -> str:
    def line(name: str, s: dict[str, Any]) -> str:
        lat = s["latency_ms"]
        pct = "/".join("-" if lat[p] is None else f"{lat[p]:.1f}" for p in ("p50", "p95", "p99"))
        return (
            f"{name:<40} requests={s['requests']}  errors={s['error_rate']:.2%}  "
            f"4xx={s['client_error_rate']:.2%}  p50/p95/p99={pct}ms  tokens={s['tokens']['total']}"
        )

    lines = [line(f"all (last {stats['since_seconds']:g}s)", stats)]
    lines += [line("  " + name, s) for name, s in stats["by_client"].items()]
    if stats["truncated"]:
        lines.append("(window cut short: only the newest records were read)")
    return "\n".join(lines)


async def journal_stats_command(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    stats = await journal_stats(
        JournalReader(redis),
        JournalFilter(account=args.account),
        since_seconds=args.since,
        now_ms=int(time.time() * 1000),
    )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(stats_text(stats) + "\n")
    sys.stdout.flush()


def add_journal_commands(
    groups: Any,
    command: Callable[..., None],
    *,
    account_arg: ArgType,
    client_arg: ArgType,
    duration_arg: ArgType,
) -> None:
    """Register the `journal` group on the main parser's sub-parsers."""
    journal = groups.add_parser("journal", help="read the request journal").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    tail = journal.add_parser("tail", help="the latest records, oldest first")
    tail.add_argument("--follow", "-f", action="store_true", help="keep printing new records")
    tail.add_argument("--account", type=account_arg)
    tail.add_argument("--client", type=client_arg)
    tail.add_argument("--status", type=status_arg, help="a code (404) or a class (4xx, 5xx)")
    tail.add_argument("--lines", "-n", type=lines_arg, default=20, help="how many (default 20)")
    command(tail, journal_tail)
    show = journal.add_parser("show", help="one record, in full")
    show.add_argument("request_id")
    command(show, journal_show)
    stats = journal.add_parser("stats", help="requests, errors, latency and tokens")
    stats.add_argument("--since", type=duration_arg, default=900.0, help="window (default 15m)")
    stats.add_argument("--account", type=account_arg)
    command(stats, journal_stats_command)
