"""Outlier ejection after Envoy's: a deployment that keeps failing is left out for a while.

Per instance, in memory (like Envoy's, each gateway process judges for itself). A failure is a
connection error, a timeout or a 5xx; any other answer is a success and resets the count.

- `consecutive_failures` failures in a row (default 5) eject the deployment.
- An ejection lasts `base_ejection` seconds (default 30) times the number of times it has been
  ejected, at most `max_ejection` (default 300): a deployment that keeps coming back broken
  stays out longer. Each `base_ejection` spent back in service without an ejection takes one
  off that multiplier, so a deployment that has recovered starts again from the base time.
- When the time is up the deployment gets traffic again with a clean count. A success while
  ejected (it was tried because every deployment was out) ends the ejection at once.

The clock is injectable so the tests drive time; the detector never sleeps.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Hashable


@dataclasses.dataclass(frozen=True, slots=True)
class OutlierSettings:
    consecutive_failures: int = 5
    base_ejection: float = 30.0
    max_ejection: float = 300.0

    def __post_init__(self) -> None:
        if self.consecutive_failures < 1:
            raise ValueError("consecutive_failures must be at least 1")
        if not 0 < self.base_ejection <= self.max_ejection:
            raise ValueError("base_ejection must be positive and at most max_ejection")


@dataclasses.dataclass(frozen=True, slots=True)
class Health:
    """What the detector knows of one deployment, as `gateway clients health` shows it."""

    failures: int
    ejected: bool
    #: Seconds until the ejection ends (0 when not ejected).
    ejected_for: float
    #: The multiplier the next ejection's base time is multiplied by, less one.
    multiplier: int
    ejections: int

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(slots=True)
class _State:
    failures: int = 0
    multiplier: int = 0
    ejected_until: float | None = None
    back_since: float | None = None
    ejections: int = 0


#: Called with (key, ejected) whenever a deployment is ejected or comes back.
ChangeHook = Callable[[Hashable, bool], None]


class OutlierDetector:
    """Counts consecutive failures per deployment key and ejects outliers."""

    def __init__(
        self,
        settings: OutlierSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        on_change: ChangeHook | None = None,
    ) -> None:
        self.settings = settings or OutlierSettings()
        self._clock = clock
        self._on_change = on_change
        self._states: dict[Hashable, _State] = {}

    def _state(self, key: Hashable) -> _State:
        state = self._states.get(key)
        if state is None:
            state = self._states[key] = _State()
        elif state.ejected_until is not None and state.ejected_until <= self._clock():
            self._return(key, state, state.ejected_until)
        return state

    def _return(self, key: Hashable, state: _State, when: float) -> None:
        state.ejected_until = None
        state.back_since = when
        state.failures = 0
        if self._on_change is not None:
            self._on_change(key, False)

    def is_ejected(self, key: Hashable) -> bool:
        if key not in self._states:
            return False
        return self._state(key).ejected_until is not None

    def success(self, key: Hashable) -> None:
        state = self._state(key)
        state.failures = 0
        if state.ejected_until is not None:
            self._return(key, state, self._clock())

    def failure(self, key: Hashable) -> bool:
        """Count one failure; True when it ejected the deployment."""
        state = self._state(key)
        if state.ejected_until is not None:
            return False
        state.failures += 1
        if state.failures < self.settings.consecutive_failures:
            return False
        now = self._clock()
        base = self.settings.base_ejection
        if state.back_since is not None:
            state.multiplier = max(0, state.multiplier - int((now - state.back_since) // base))
        state.multiplier += 1
        state.ejected_until = now + min(base * state.multiplier, self.settings.max_ejection)
        state.ejections += 1
        state.failures = 0
        if self._on_change is not None:
            self._on_change(key, True)
        return True

    def health(self, key: Hashable) -> Health:
        state = self._state(key) if key in self._states else _State()
        until = state.ejected_until
        return Health(
            failures=state.failures,
            ejected=until is not None,
            ejected_for=0.0 if until is None else round(until - self._clock(), 3),
            multiplier=state.multiplier,
            ejections=state.ejections,
        )

    def known(self) -> list[Hashable]:
        """Every deployment key the detector has seen, in the order it first saw them."""
        return list(self._states)
