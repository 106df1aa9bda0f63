"""Retry policy: which upstream answers are retried, and how long to wait before the next try.

A connection error, a timeout, a 429 or a 5xx moves on: to a retry at the same upstream after an
exponential, jittered backoff (at least what `Retry-After` asks for), or, once that upstream's
retries are spent or its `Retry-After` is longer than `retry_after_max`, straight to the next
upstream. Pure functions; the transport (`transport.py`) runs the loop.
"""

from __future__ import annotations

import dataclasses
import email.utils
import random
import time

from gateway.config import Settings


@dataclasses.dataclass(frozen=True, slots=True)
class RetrySettings:
    retries: int
    backoff: float
    backoff_max: float
    retry_after_max: float

    @classmethod
    def from_settings(cls, settings: Settings, retries: int | None = None) -> RetrySettings:
        return cls(
            retries=settings.upstream_retries if retries is None else retries,
            backoff=settings.upstream_backoff,
            backoff_max=settings.upstream_backoff_max,
            retry_after_max=settings.upstream_retry_after_max,
        )


def is_retryable_status(status: int) -> bool:
    return status == 429 or status >= 500


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff_delay(retry: RetrySettings, attempt: int) -> float:
    """Exponential backoff with jitter: between half and all of `backoff * 2**attempt`."""
    ceiling = min(retry.backoff_max, retry.backoff * (2.0**attempt))
    return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not a secret


def wait_before_next(
    status: int,
    retry_after: str | None,
    retry: RetrySettings,
    attempt: int,
    last_try: bool,
    last_target: bool,
) -> float | None:
    """None: this answer is final. Otherwise seconds to wait before the next try at this upstream
    (0 after its last try: the next upstream is tried at once), or -1 to fall back at once."""
    if not is_retryable_status(status) or (last_try and last_target):
        return None
    if last_try:
        return 0.0
    asked = retry_after_seconds(retry_after)
    if asked is not None and asked > retry.retry_after_max:
        return None if last_target else -1.0
    return max(asked or 0.0, backoff_delay(retry, attempt))
