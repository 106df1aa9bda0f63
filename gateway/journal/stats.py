"""Journal statistics over a time window: totals, error rates, latency percentiles, tokens,
per client, and a time series for the dashboard. Computed from entries' flat fields only.

`error_rate` counts 5xx answers (the gateway's or the upstream's fault); `client_error_rate`
counts 4xx (the caller's). Percentiles are nearest-rank over the window's total latencies.
Health probes (`/healthz`, `/readyz`) are journaled like every request but are not traffic:
they are left out of every figure. `cost` sums the entries' USD cost (docs/costs.md).
"""

from __future__ import annotations

import math
from typing import Any

from gateway.journal.reader import JournalFilter, JournalReader


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


#: Paths of the health probes, left out of the statistics.
PROBE_PATHS = frozenset({"/healthz", "/readyz"})


def _int(value: str | None) -> int:
    return int(value) if value else 0


def _float(value: str | None) -> float:
    return float(value) if value else 0.0


class _Totals:
    __slots__ = (
        "client_errors",
        "completion",
        "cost",
        "errors",
        "latencies",
        "priced",
        "prompt",
        "requests",
    )

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.client_errors = 0
        self.latencies: list[float] = []
        self.prompt = 0
        self.completion = 0
        self.cost = 0.0
        self.priced = 0

    def add(self, fields: dict[str, str]) -> None:
        self.requests += 1
        status = fields.get("status", "")
        self.errors += status.startswith("5")
        self.client_errors += status.startswith("4")
        if fields.get("latency_ms"):
            self.latencies.append(float(fields["latency_ms"]))
        self.prompt += _int(fields.get("prompt_tokens"))
        self.completion += _int(fields.get("completion_tokens"))
        if fields.get("cost"):
            self.cost += _float(fields["cost"])
            self.priced += 1

    def summary(self) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 4) if self.requests else 0.0,
            "client_errors": self.client_errors,
            "client_error_rate": (
                round(self.client_errors / self.requests, 4) if self.requests else 0.0
            ),
            "latency_ms": {
                "p50": percentile(ordered, 0.50),
                "p95": percentile(ordered, 0.95),
                "p99": percentile(ordered, 0.99),
            },
            "tokens": {
                "prompt": self.prompt,
                "completion": self.completion,
                "total": self.prompt + self.completion,
            },
            "cost": {"total": round(self.cost, 10), "currency": "USD", "priced": self.priced},
        }


async def journal_stats(
    reader: JournalReader,
    flt: JournalFilter,
    *,
    since_seconds: float,
    now_ms: int,
    bucket_seconds: float | None = None,
) -> dict[str, Any]:
    since_ms = now_ms - int(since_seconds * 1000)
    entries, truncated = await reader.window(flt, since_ms)
    total = _Totals()
    by_client: dict[str, _Totals] = {}
    by_account: dict[str, _Totals] = {}
    tokens_by_account: dict[str, int] = {}
    buckets: dict[int, _Totals] = {}
    bucket_ms = int(bucket_seconds * 1000) if bucket_seconds else 0
    for stamp, fields in entries:
        if fields.get("path") in PROBE_PATHS:
            continue
        total.add(fields)
        name = f"{fields.get('account') or '-'}/{fields.get('client') or '-'}"
        by_client.setdefault(name, _Totals()).add(fields)
        account = fields.get("account") or "-"
        by_account.setdefault(account, _Totals()).add(fields)
        tokens_by_account[account] = (
            tokens_by_account.get(account, 0)
            + _int(fields.get("prompt_tokens"))
            + _int(fields.get("completion_tokens"))
        )
        if bucket_ms:
            buckets.setdefault(stamp - stamp % bucket_ms, _Totals()).add(fields)
    result: dict[str, Any] = {
        "since_seconds": since_seconds,
        "window_start_ms": since_ms,
        "truncated": truncated,
        **total.summary(),
        "by_client": {name: t.summary() for name, t in sorted(by_client.items())},
        "by_account": {name: t.summary() for name, t in sorted(by_account.items())},
        "tokens_by_account": dict(sorted(tokens_by_account.items())),
    }
    if bucket_ms:
        start = since_ms - since_ms % bucket_ms
        series = []
        for at in range(start, now_ms + 1, bucket_ms):
            summary = buckets.get(at, _Totals()).summary()
            series.append({"t": at, **summary})
        result["bucket_seconds"] = bucket_seconds
        result["series"] = series
    return result
