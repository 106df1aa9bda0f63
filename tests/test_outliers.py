"""Outlier ejection (`gateway.outliers`) against a fake clock; pure, no Redis."""

from __future__ import annotations

from collections.abc import Hashable

import pytest

from gateway.balancing import Deployment, TryPlan
from gateway.outliers import OutlierDetector, OutlierSettings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _fail(detector: OutlierDetector, key: str, times: int) -> list[bool]:
    return [detector.failure(key) for _ in range(times)]


def test_five_consecutive_failures_eject_by_default(clock: FakeClock) -> None:
    detector = OutlierDetector(clock=clock)
    assert _fail(detector, "a", 4) == [False] * 4
    assert not detector.is_ejected("a")
    assert detector.failure("a") is True
    assert detector.is_ejected("a")
    health = detector.health("a")
    assert (health.ejected, health.ejected_for, health.ejections) == (True, 30.0, 1)


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    detector = OutlierDetector(OutlierSettings(consecutive_failures=3), clock=clock)
    _fail(detector, "a", 2)
    detector.success("a")
    assert _fail(detector, "a", 2) == [False, False]
    assert not detector.is_ejected("a")
    assert detector.failure("a") is True


def test_the_ejection_ends_after_the_base_time(clock: FakeClock) -> None:
    detector = OutlierDetector(
        OutlierSettings(consecutive_failures=2, base_ejection=30), clock=clock
    )
    _fail(detector, "a", 2)
    clock.advance(29.9)
    assert detector.is_ejected("a")
    assert detector.health("a").ejected_for == pytest.approx(0.1)
    clock.advance(0.1)
    assert not detector.is_ejected("a")
    health = detector.health("a")
    assert (health.ejected, health.failures, health.ejected_for) == (False, 0, 0.0)


def test_repeated_ejection_grows_the_time_up_to_the_maximum(clock: FakeClock) -> None:
    settings = OutlierSettings(consecutive_failures=1, base_ejection=10, max_ejection=35)
    detector = OutlierDetector(settings, clock=clock)
    lengths = []
    for _ in range(5):
        detector.failure("a")  # comes back and fails at once, every time
        lengths.append(detector.health("a").ejected_for)
        clock.advance(lengths[-1])
        assert not detector.is_ejected("a")
    assert lengths == [10.0, 20.0, 30.0, 35.0, 35.0]


def test_time_back_in_service_shrinks_the_next_ejection(clock: FakeClock) -> None:
    settings = OutlierSettings(consecutive_failures=1, base_ejection=10, max_ejection=300)
    detector = OutlierDetector(settings, clock=clock)
    for _ in range(3):
        detector.failure("a")
        clock.advance(detector.health("a").ejected_for)
    assert detector.health("a").multiplier == 3
    clock.advance(20)  # two base times healthy: the multiplier falls from 3 to 1
    detector.failure("a")
    assert detector.health("a").ejected_for == 20.0  # (1 + 1) * 10
    clock.advance(20 + 1000)  # long healthy: back to the base time
    detector.failure("a")
    assert detector.health("a").ejected_for == 10.0


def test_failures_while_ejected_do_not_extend_it_and_a_success_ends_it(clock: FakeClock) -> None:
    detector = OutlierDetector(OutlierSettings(consecutive_failures=1), clock=clock)
    detector.failure("a")
    assert _fail(detector, "a", 3) == [False] * 3
    assert detector.health("a").ejections == 1
    detector.success("a")  # tried because every deployment was out, and it answered
    assert not detector.is_ejected("a")


def test_deployments_are_judged_separately_and_hooks_see_changes(clock: FakeClock) -> None:
    changes: list[tuple[Hashable, bool]] = []
    detector = OutlierDetector(
        OutlierSettings(consecutive_failures=2, base_ejection=5, max_ejection=5),
        clock=clock,
        on_change=lambda key, ejected: changes.append((key, ejected)),
    )
    _fail(detector, "a", 2)
    _fail(detector, "b", 1)
    assert (detector.is_ejected("a"), detector.is_ejected("b")) == (True, False)
    assert detector.known() == ["a", "b"]
    clock.advance(5)
    assert not detector.is_ejected("a")
    assert changes == [("a", True), ("a", False)]
    assert not detector.is_ejected("never-seen")
    assert detector.health("never-seen").ejections == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"consecutive_failures": 0},
        {"base_ejection": 0},
        {"base_ejection": 60, "max_ejection": 30},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must be"):
        OutlierSettings(**kwargs)  # type: ignore[arg-type]


def test_the_plan_routes_around_an_ejected_deployment_until_its_time_is_up(
    clock: FakeClock,
) -> None:
    a = Deployment(url="http://127.0.0.1:1/v1")
    b = Deployment(url="http://127.0.0.1:2/v1")
    detector = OutlierDetector(OutlierSettings(consecutive_failures=3), clock=clock)

    def first_choice() -> Deployment:
        step = TryPlan([a, b], retries=0, ejected=lambda d: detector.is_ejected(d.url)).next()
        assert step is not None
        return step.deployment

    _fail(detector, a.url, 3)
    for _ in range(10):
        assert first_choice() == b
        clock.advance(2.9)
    clock.advance(1.0)  # 30 s after the ejection
    assert first_choice() == a


def test_when_every_deployment_is_ejected_traffic_still_flows(clock: FakeClock) -> None:
    a = Deployment(url="http://127.0.0.1:1/v1")
    b = Deployment(url="http://127.0.0.1:2/v1")
    detector = OutlierDetector(OutlierSettings(consecutive_failures=1), clock=clock)
    detector.failure(a.url)
    detector.failure(b.url)
    plan = TryPlan([a, b], retries=0, ejected=lambda d: detector.is_ejected(d.url))
    assert [t.deployment for t in plan] == [a, b]
