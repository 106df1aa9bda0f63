"""`gateway journal tail | show | stats | export`: the journal from a terminal (see
docs/journal.md; export: docs/observability.md)."""

from __future__ import annotations

import argparse
import re
import socket
import sys
import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from gateway.config import Settings
from gateway.errors import FilterError, NotFoundError
from gateway.journal.export import ExportOptions, JournalExporter
from gateway.journal.reader import JournalFilter, JournalReader, check_status
from gateway.journal.shards import global_streams
from gateway.journal.stats import journal_stats
from gateway.store import keys

ArgType = Callable[[str], Any]

_NAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,64}$")
_SECONDS = re.compile(r"^(\d{1,7})([smh]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600}


def seconds_arg(value: str) -> float:
    match = _SECONDS.match(value.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{value[:80]!r} is not seconds like 60, 90s or 5m")
    return float(int(match.group(1)) * _UNITS[match.group(2)])


def name_arg(value: str) -> str:
    if not _NAME.match(value):
        raise argparse.ArgumentTypeError(
            f"{value[:80]!r}: use 1 to 64 letters, digits and _ . : @ -"
        )
    return value


def status_arg(value: str) -> str:
    try:
        return check_status(value)
    except FilterError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def lines_arg(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a positive number")
    return int(value)


#: Control characters (ESC, BEL, ...) a caller may have put in a path or host: printed escaped,
#: so a record cannot drive the operator's terminal.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), 0x7F)}


def terminal_safe(text: str) -> str:
    return text.translate(_CONTROLS)


def record_line(record: dict[str, Any]) -> str:
    return terminal_safe(_record_line(record))


def _record_line(record: dict[str, Any]) -> str:
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
    reader = JournalReader(redis, shards=settings.journal_shards)
    flt = _filter(args)
    start = await reader.positions(flt)
    records, _cursor = await reader.page(flt, limit=args.lines)
    for record in reversed(records):
        _write(args, record)
    if args.follow:
        async for record in reader.follow(flt, after=start):
            _write(args, record)


async def journal_show(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    record = None
    if args.request_id.isascii():  # ids are ASCII; anything else names no record
        record = await JournalReader(redis, shards=settings.journal_shards).get(args.request_id)
    if record is None:
        raise NotFoundError(
            f"no journal record for request id {terminal_safe(ascii(args.request_id))}"
        )
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
        JournalReader(redis, shards=settings.journal_shards),
        JournalFilter(account=args.account),
        since_seconds=args.since,
        now_ms=int(time.time() * 1000),
    )
    if args.json:
        sys.stdout.buffer.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    else:
        sys.stdout.write(stats_text(stats) + "\n")
    sys.stdout.flush()


def _write_lines(records: list[bytes]) -> None:
    """One JSON record per line, flushed before the caller acknowledges them."""
    sys.stdout.buffer.write(b"\n".join(records) + b"\n")
    sys.stdout.buffer.flush()


async def journal_export(args: argparse.Namespace, settings: Settings, redis: Redis) -> None:
    options = ExportOptions(
        group=args.group_name,
        consumer=args.consumer or socket.gethostname()[:64] or "gateway",
        claim_after_ms=int(args.claim_after * 1000),
        start="$" if args.start == "now" else "0",
        follow=args.follow,
    )
    exporter = JournalExporter(redis, global_streams(settings.journal_shards), options)
    await exporter.prepare(optional=[keys.LEGACY_JOURNAL_STREAM])
    await exporter.run(_write_lines)


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
    export = journal.add_parser(
        "export", help="ship records as JSON lines through a consumer group (at least once)"
    )
    export.add_argument("--group", dest="group_name", type=name_arg, required=True)
    export.add_argument("--format", choices=["jsonl"], default="jsonl", help="one record a line")
    export.add_argument("--follow", "-f", action="store_true", help="keep exporting new records")
    export.add_argument(
        "--claim-after",
        type=seconds_arg,
        default=60.0,
        help="take over other consumers' records left unacknowledged this long (default 60s)",
    )
    export.add_argument(
        "--from", dest="start", choices=["oldest", "now"], default="oldest",
        help="where a new group starts (an existing group resumes)",
    )  # fmt: skip
    export.add_argument(
        "--consumer", type=name_arg, help="this consumer's name in the group (default: hostname)"
    )
    command(export, journal_export, json_flag=False)
