"""The request deadline (`gateway.deadline`) against a fake clock, and on the real clock."""

from __future__ import annotations

import asyncio
import time

import pytest

from gateway.deadline import Deadline


class FakeClock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_remaining_counts_down_and_never_goes_negative() -> None:
    clock = FakeClock()
    deadline = Deadline.after(3.0, clock)
    assert deadline.remaining() == 3.0
    assert not deadline.expired
    clock.now += 2.0
    assert deadline.remaining() == 1.0
    clock.now += 1.0
    assert deadline.expired
    assert deadline.remaining() == 0.0
    clock.now += 5.0
    assert deadline.remaining() == 0.0


def test_no_try_or_backoff_starts_after_it() -> None:
    clock = FakeClock()
    deadline = Deadline.after(1.0, clock)
    assert deadline.allows()
    assert deadline.allows(0.99)
    assert not deadline.allows(1.0)  # a backoff that would end at the deadline is not waited
    clock.now += 1.0
    assert not deadline.allows()


def test_bound_shortens_a_per_attempt_timeout_to_the_deadline() -> None:
    clock = FakeClock()
    deadline = Deadline.after(10.0, clock)
    assert deadline.bound(3.0) == 3.0
    clock.now += 8.5
    assert deadline.bound(3.0) == 1.5
    clock.now += 5
    assert deadline.bound(3.0) == 0.0


async def test_three_attempts_end_at_the_deadline_not_after_three_timeouts() -> None:
    """The loop the transport runs: each attempt waits at most `bound(timeout)`."""
    timeout, deadline = 0.4, Deadline.after(0.5)
    started = time.monotonic()
    attempts = 0
    while attempts < 3 and deadline.allows():
        attempts += 1
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(deadline.bound(timeout)):
                await asyncio.Event().wait()  # an upstream that never answers
    elapsed = time.monotonic() - started
    assert attempts == 2
    assert 0.5 <= elapsed < 0.5 + 0.3  # not 3 x 0.4 s
