"""What limits apply to a request, and the cheap token estimate reserved before the call.

Pure functions over the cached client and key records: deciding costs no Redis round trip, and a
tenant with no limit set never reaches Redis on the request path at all.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import time
from typing import Any, Literal

import orjson

from gateway.store import keys
from gateway.store.records import AccountRecord, ApiKeyRecord, ClientRecord

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

Kind = Literal["r", "t", "c", "d", "m", "D", "M"]
#: Names of the limit fields on both record kinds, as they appear in JSON and the CLI.
LIMIT_FIELDS = ("rpm", "tpm", "max_concurrent", "tokens_per_day", "tokens_per_month")
#: Dollar budgets are counted in micro-dollars: whole numbers, exact in Lua's doubles.
MICRO_USD = 1_000_000
#: Output tokens a request that sets no `max_tokens` is assumed to ask for, when its dollar
#: cost is estimated before the call (docs/limits.md).
DEFAULT_OUTPUT_ESTIMATE = 1024


def to_micro_usd(dollars: float) -> int:
    return round(dollars * MICRO_USD)


@dataclasses.dataclass(frozen=True, slots=True)
class Check:
    """One counter to test and update: `r` requests/min, `t` tokens/min, `c` in flight,
    `d` tokens/day budget, `m` tokens/month budget, `D` and `M` micro-dollars per day and
    month (the limit in micro-dollars too)."""

    kind: Kind
    scope: str
    limit: int
    keys: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class EndUserLimits:
    """A client's per-end-user limits, in the shape `checks_for` reads."""

    rpm: int | None = None
    usd_per_day: float | None = None


def end_user_scope(client: str, end_user: str) -> str:
    """The scope of one end user of a client: a digest, so any string the caller sent makes a
    short, safe key name (and no end-user id is spelled in Redis key names)."""
    digest = hashlib.sha256(end_user.encode(errors="replace")).hexdigest()[:32]
    return f"user:{client}:{digest}"


def scopes_of(
    client: ClientRecord,
    key: ApiKeyRecord | None,
    account: AccountRecord | None = None,
    end_user: str | None = None,
) -> list[tuple[str, Any]]:
    scopes: list[tuple[str, Any]] = []
    if account is not None:
        scopes.append(("account", account))
    scopes.append((f"client:{client.name}", client))
    if key is not None:
        scopes.append((f"key:{key.id}", key))
    if end_user and (client.end_user_rpm is not None or client.end_user_usd_per_day is not None):
        limits = EndUserLimits(client.end_user_rpm, client.end_user_usd_per_day)
        scopes.append((end_user_scope(client.name, end_user), limits))
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
        if getattr(record, "rpm", None) is not None:
            checks.append(Check("r", scope, record.rpm, (keys.limit_requests(account, scope),)))
        if getattr(record, "tpm", None) is not None:
            token_keys = (
                keys.limit_tokens(account, scope),
                keys.limit_token_amounts(account, scope),
            )
            checks.append(Check("t", scope, record.tpm, token_keys))
        if getattr(record, "max_concurrent", None) is not None:
            checks.append(
                Check("c", scope, record.max_concurrent, (keys.limit_in_flight(account, scope),))
            )
        if getattr(record, "tokens_per_day", None) is not None:
            day_key = keys.budget_day(account, scope, utc_day(now))
            checks.append(Check("d", scope, record.tokens_per_day, (day_key,)))
        if getattr(record, "tokens_per_month", None) is not None:
            month_key = keys.budget_month(account, scope, utc_month(now))
            checks.append(Check("m", scope, record.tokens_per_month, (month_key,)))
        usd_day = getattr(record, "usd_per_day", None)
        if usd_day is not None:
            day_key = keys.budget_usd_day(account, scope, utc_day(now))
            checks.append(Check("D", scope, to_micro_usd(usd_day), (day_key,)))
        usd_month = getattr(record, "usd_per_month", None)
        if usd_month is not None:
            month_key = keys.budget_usd_month(account, scope, utc_month(now))
            checks.append(Check("M", scope, to_micro_usd(usd_month), (month_key,)))
    return tuple(checks)


def has_dollar_budget(checks: tuple[Check, ...]) -> bool:
    return any(check.kind in ("D", "M") for check in checks)


def estimate_output_tokens(data: dict[str, Any]) -> int:
    """`max_completion_tokens` (or `max_tokens`) when the request sets one, else the default."""
    limit = data.get("max_completion_tokens", data.get("max_tokens"))
    if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
        return limit
    return DEFAULT_OUTPUT_ESTIMATE


def estimate_tokens(raw_body: bytes, data: dict[str, Any]) -> int:
    """Prompt tokens as body bytes / 4, plus the completion the request may ask for.

    Like OpenAI's own TPM accounting, `max_completion_tokens` (or `max_tokens`) is reserved
    up front; the reservation is replaced by the real usage once the response is complete.
    Clamped to `MAX_TOKENS_PER_REQUEST`.
    """
    size = len(raw_body) if raw_body else len(orjson.dumps(data))  # a policy rewrote the body
    estimate = size // BYTES_PER_TOKEN + 1
    for name in ("max_completion_tokens", "max_tokens", "max_output_tokens"):
        limit = data.get(name)
        # A float (1e30) or a number past 64 bits asks for as much as a huge integer does.
        if isinstance(limit, int | float) and not isinstance(limit, bool) and limit > 0:
            estimate += min(int(limit), MAX_TOKENS_PER_REQUEST)
            break
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
