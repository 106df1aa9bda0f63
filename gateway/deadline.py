"""One deadline per request: the whole request, every retry and fallback included, ends by it.

`upstream_timeout` bounds each wait for one attempt (the first byte, the gap between chunks);
`request_deadline` (setting, or the client policy's field) bounds the request. No attempt and
no backoff wait starts once it has passed, and an attempt still waiting for its upstream is
cut off at it: the caller then gets a 504. Once an upstream has answered, the reply (a long
stream included) is relayed in full; `upstream_timeout` still bounds each gap.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable


@dataclasses.dataclass(frozen=True, slots=True)
class Deadline:
    """The clock reading by which a request must be answered."""

    at: float
    #: How long the request was given (for messages).
    seconds: float = 0.0
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, clock: Callable[[], float] = time.monotonic) -> Deadline:
        return cls(at=clock() + seconds, seconds=seconds, clock=clock)

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.at - self.clock())

    @property
    def expired(self) -> bool:
        return self.clock() >= self.at

    def allows(self, wait: float = 0.0) -> bool:
        """Whether an attempt that starts `wait` seconds from now starts before the deadline."""
        return self.clock() + wait < self.at

    def bound(self, timeout: float) -> float:
        """`timeout`, shortened so that it ends no later than the deadline."""
        return min(timeout, self.remaining())
