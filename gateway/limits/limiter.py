"""`RateLimiter`: admits or refuses a request against its limits, and settles it afterwards.

One Redis round trip before the upstream call (`CHECK`) and one after (`SETTLE`), only for a
tenant that has a limit set. When Redis cannot be asked (down, or OOM, READONLY, LOADING, ...:
`store.faults`), `fail_open` decides: let the request through unchecked (counted in
`stats.unchecked`) or refuse it with 503. A script that Redis runs and that fails is a bug path,
never a reason to let a request through: it is counted (`script_errors`), logged as an error
and answered 503 `rate_limiter_error`; the script checks its arguments before it writes
anything, so a failing check changes no counter.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from gateway.errors import QuotaExceededError, RateLimitError, ServiceUnavailableError
from gateway.limits import scripts
from gateway.limits.checks import (
    WINDOW_MS,
    Check,
    checks_for,
    clamp_tokens,
    format_reset,
    seconds_to_day_end,
    seconds_to_month_end,
)
from gateway.store.faults import store_wide

log = structlog.get_logger("gateway.limits")

_NAMES = {
    "r": "requests per min (RPM)",
    "t": "tokens per min (TPM)",
    "c": "concurrent requests",
    "d": "tokens per day",
    "m": "tokens per month",
}


@dataclasses.dataclass(slots=True)
class LimiterStats:
    """Counters for operators (`GET /admin/v1/limits/stats`)."""

    admitted: int = 0
    refused: int = 0
    #: Requests let through without a check because Redis failed (fail-open).
    unchecked: int = 0
    #: Requests refused with 503 because Redis failed (fail-closed).
    failed_closed: int = 0
    settle_errors: int = 0
    #: Checks whose script Redis ran and that failed (a bug path: refused with 503).
    script_errors: int = 0

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True)
class Admission:
    """A request let in: what to settle once its real usage is known."""

    member: str
    estimate: int
    checks: tuple[Check, ...]
    ttls: tuple[int, ...]
    headers: dict[str, str]
    checked: bool = True


def rate_headers(checks: Sequence[Check], result: Sequence[int]) -> dict[str, str]:
    """OpenAI's `x-ratelimit-*` headers from the tightest request and token limits."""
    headers: dict[str, str] = {}
    for kind, suffix in (("r", "requests"), ("t", "tokens")):
        tightest: tuple[int, int, int] | None = None
        for index, check in enumerate(checks):
            if check.kind != kind:
                continue
            remaining, reset_ms = result[2 + 2 * index], result[3 + 2 * index]
            if tightest is None or remaining < tightest[1]:
                tightest = (check.limit, remaining, reset_ms)
        if tightest is not None:
            headers[f"x-ratelimit-limit-{suffix}"] = str(tightest[0])
            headers[f"x-ratelimit-remaining-{suffix}"] = str(tightest[1])
            headers[f"x-ratelimit-reset-{suffix}"] = format_reset(tightest[2] / 1000.0)
    return headers


def refusal(
    check: Check, remaining: int, reset_ms: int, estimate: int, headers: dict[str, str]
) -> RateLimitError | QuotaExceededError:
    wait = max(reset_ms, 1) / 1000.0
    headers = {
        **headers,
        "retry-after": str(max(1, math.ceil(wait))),
        "retry-after-ms": str(max(1, reset_ms)),
    }
    used = check.limit - remaining
    name = _NAMES[check.kind]
    if check.kind in ("d", "m"):
        return QuotaExceededError(
            f"You exceeded your {name} budget ({check.scope}): Limit {check.limit}, Used {used}. "
            f"It resets in {format_reset(wait)}.",
            headers=headers,
        )
    requested = estimate if check.kind == "t" else 1
    return RateLimitError(
        f"Rate limit reached for {check.scope} on {name}: Limit {check.limit}, Used {used}, "
        f"Requested {requested}. Please try again in {format_reset(wait)}.",
        kind="tokens" if check.kind == "t" else "requests",
        headers=headers,
    )


class RateLimiter:
    def __init__(
        self,
        redis: Redis,
        *,
        fail_open: bool = True,
        lease_seconds: float = 900.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.redis = redis
        self.fail_open = fail_open
        self.lease_ms = int(lease_seconds * 1000)
        #: Picks the budget day and month (the sliding windows use Redis's clock).
        self.clock = clock
        self.stats = LimiterStats()
        self._check = redis.register_script(scripts.CHECK)
        self._settle = redis.register_script(scripts.SETTLE)

    async def admit(
        self, account: str, scopes: list[tuple[str, Any]], estimate: int
    ) -> Admission | None:
        """None when nothing is limited; raises 429 (or 503 fail-closed) when refused."""
        now = self.clock()
        checks = checks_for(account, scopes, now)
        if not checks:
            return None
        ttls = tuple(_ttl(check, now) for check in checks)
        member = os.urandom(8).hex()
        args: list[Any] = [member, estimate, WINDOW_MS, self.lease_ms, len(checks)]
        for check, ttl in zip(checks, ttls, strict=True):
            args += [check.kind, check.limit, ttl]
        try:
            raw = await self._check(keys=[k for c in checks for k in c.keys], args=args)
        except (RedisError, OSError) as exc:
            if not store_wide(exc):
                raise self._script_failed(exc) from exc
            return self._unchecked(member, estimate, checks, ttls, exc)
        result = [int(value) for value in raw]
        headers = rate_headers(checks, result)
        if not result[0]:
            self.stats.refused += 1
            index = result[1] - 1
            remaining, reset_ms = result[2 + 2 * index], result[3 + 2 * index]
            raise refusal(checks[index], remaining, reset_ms, estimate, headers)
        self.stats.admitted += 1
        return Admission(member, estimate, checks, ttls, headers)

    def _script_failed(self, exc: BaseException) -> ServiceUnavailableError:
        self.stats.script_errors += 1
        log.error("rate_limit_script_failed", error=str(exc)[:300])
        return ServiceUnavailableError(
            "the gateway could not check this client's rate limits; this is a gateway bug",
            code="rate_limiter_error",
        )

    def _unchecked(
        self,
        member: str,
        estimate: int,
        checks: tuple[Check, ...],
        ttls: tuple[int, ...],
        exc: BaseException,
    ) -> Admission:
        if not self.fail_open:
            self.stats.failed_closed += 1
            log.warning("rate_limit_unavailable", policy="fail_closed", error=type(exc).__name__)
            raise ServiceUnavailableError(
                "the gateway cannot check this client's rate limits right now; retry shortly",
                code="rate_limiter_unavailable",
            ) from exc
        self.stats.unchecked += 1
        log.warning("rate_limit_unavailable", policy="fail_open", error=type(exc).__name__)
        return Admission(member, estimate, checks, ttls, {}, checked=False)

    async def settle(self, admission: Admission, actual_tokens: int) -> None:
        """Replace the token reservation with the real usage and release the in-flight slot."""
        if not admission.checked:
            return
        settled = [
            (check, ttl)
            for check, ttl in zip(admission.checks, admission.ttls, strict=True)
            if check.kind != "r"
        ]
        if not settled:
            return
        args: list[Any] = [
            admission.member,
            admission.estimate,
            clamp_tokens(actual_tokens),
            WINDOW_MS,
            len(settled),
        ]
        for check, ttl in settled:
            args += [check.kind, ttl]
        try:
            await self._settle(keys=[k for c, _ in settled for k in c.keys], args=args)
        except (RedisError, OSError) as exc:
            self.stats.settle_errors += 1
            log.warning("rate_limit_settle_failed", error=type(exc).__name__)


def _ttl(check: Check, now: float) -> int:
    """Seconds until a budget's window ends (0 for the sliding windows)."""
    if check.kind == "d":
        return math.ceil(seconds_to_day_end(now))
    if check.kind == "m":
        return math.ceil(seconds_to_month_end(now))
    return 0
