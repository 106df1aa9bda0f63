"""What limits apply to a request, and the cheap token estimate reserved before the call.

Pure functions over the cached client and key records: deciding costs no Redis round trip, and a
tenant with no limit set never reaches Redis on the request path at all.
"""

from __future__ import annotations

import calendar
import dataclasses
import time
from typing import Any, Literal

import orjson

from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord

#: The request and token windows are a sliding minute.
WINDOW_MS = 60_000

#: Bytes of request body per estimated prompt token (JSON syntax included, so it errs high).
BYTES_PER_TOKEN = 4

#: The most tokens one request reserves or settles (a billion: far past any model's context).
#: A `max_tokens` of 10**18 is clamped here, so every counter stays an exact integer in Redis
#: and in its Lua scripts (whose numbers are doubles) instead of failing the script.
MAX_TOKENS_PER_REQUEST = 1_000_000_000

#: The largest value a limit may be set to (the check script refuses more than 2^53).
MAX_LIMIT = 10**15

Kind = Literal["r", "t", "c", "d", "m"]
#: Names of the limit fields on both record kinds, as they appear in JSON and the CLI.
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent", "tokens_per_day", "tokens_per_month")


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One counter to test and update: `r` requests/min, `t` tokens/min, `c` in flight,
    `d` tokens/day budget, `m` tokens/month budget."""

    kind: Kind
    scope: str
    limit: int
    keys: tuple[str, ...]


def scopes_of(client: ClientRecord, key: ApiKeyRecord | None) -> list[tuple[str, Any]]:
    scopes: list[tuple[str, Any]] = [(f"client:{client.name}", client)]
    if key is not None:
        scopes.append((f"key:{key.id}", key))
    return scopes


def utc_day(now: float) -> str:
    return time.strftime("%Y%m%d", time.gmtime(now))


def utc_month(now: float) -> str:
    return time.strftime("%Y%m", time.gmtime(now))


def seconds_to_day_end(now: float) -> float:
    return 86400.0 - (now % 86400.0)


def seconds_to_month_end(now: float) -> float:
    tm = time.gmtime(now)
    year, month = (tm.tm_year + 1, 1) if tm.tm_mon == 12 else (tm.tm_year, tm.tm_mon + 1)
    return max(1.0, calendar.timegm((year, month, 1, 0, 0, 0)) - now)


def checks_for(account: str, scopes: list[tuple[str, Any]], now: float) -> tuple[Check, ...]:
    """Every counter the configured limits call for; empty when nothing is limited."""
    checks: list[Check] = []
    for scope, record in scopes:
        if record.rpm is not None:
            checks.append(Check("r", scope, record.rpm, (keys.limit_requests(account, scope),)))
        if record.tpm is not None:
            token_keys = (
                keys.limit_tokens(account, scope),
                keys.limit_token_amounts(account, scope),
            )
            checks.append(Check("t", scope, record.tpm, token_keys))
        if record.max_concurrent is not None:
            checks.append(
                Check("c", scope, record.max_concurrent, (keys.limit_in_flight(account, scope),))
            )
        if record.tokens_per_day is not None:
            day_key = keys.budget_day(account, scope, utc_day(now))
            checks.append(Check("d", scope, record.tokens_per_day, (day_key,)))
        if record.tokens_per_month is not None:
            month_key = keys.budget_month(account, scope, utc_month(now))
            checks.append(Check("m", scope, record.tokens_per_month, (month_key,)))
    return tuple(checks)


def estimate_tokens(raw_body: bytes, data: dict[str, Any]) -> int:
    """Prompt tokens as body bytes / 4, plus the completion the request may ask for.

    Like OpenAI's own TPM accounting, `max_completion_tokens` (or `max_tokens`) is reserved
    up front; the reservation is replaced by the real usage once the response is complete.
    Clamped to `MAX_TOKENS_PER_REQUEST`.
    """
    size = len(raw_body) if raw_body else len(orjson.dumps(data))  # a policy rewrote the body
    estimate = size // BYTES_PER_TOKEN + 1
    limit = data.get("max_completion_tokens", data.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        estimate += limit
    return clamp_tokens(estimate)


def clamp_tokens(tokens: int) -> int:
    """`tokens` within 0 .. `MAX_TOKENS_PER_REQUEST`."""
    return max(0, min(tokens, MAX_TOKENS_PER_REQUEST))


def format_reset(seconds: float) -> str:
    """A duration as OpenAI writes it in `x-ratelimit-reset-*`: `20ms`, `1.5s`, `6m0s`."""
    if seconds < 1.0:
        return f"{max(0, round(seconds * 1000))}ms"
    if seconds < 60.0:
        return f"{round(seconds, 3):g}s"
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes}m{secs}s" if hours else f"{minutes}m{secs}s"
