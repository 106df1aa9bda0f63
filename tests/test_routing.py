"""The per-process `Router`: plans, in-flight counts, ejection per client; pure, no Redis."""

from __future__ import annotations

import pytest

from gateway.balancing import Deployment, RoutingError
from gateway.outliers import OutlierSettings
from gateway.routing import ClientKey, Router, is_failure

ACME: ClientKey = ("3141-5926-5359", "acme")
OTHER: ClientKey = ("2718-2818-2845", "other")

A = Deployment(url="http://127.0.0.1:1/v1")
B = Deployment(url="http://127.0.0.1:2/v1", models={"gpt-4o": "b-4o"})


class FakeClock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _first(router: Router, client: ClientKey, strategy: str = "ordered", **kw: object) -> str:
    step = router.plan(client, [A, B], strategy, 0, **kw).next()  # type: ignore[arg-type]
    assert step is not None
    return step.deployment.url


@pytest.mark.parametrize(
    ("status", "failure"),
    [(None, True), (500, True), (502, True), (503, True), (200, False), (400, False), (429, False)],
)
def test_what_counts_as_a_failure(status: int | None, failure: bool) -> None:
    assert is_failure(status) is failure


def test_failures_eject_for_one_client_only() -> None:
    clock = FakeClock()
    changes: list[tuple[ClientKey, str, bool]] = []
    router = Router(
        OutlierSettings(consecutive_failures=2, base_ejection=10, max_ejection=10),
        clock=clock,
        on_change=lambda client, url, ejected: changes.append((client, url, ejected)),
    )
    assert router.outcome(ACME, A, 503) is False
    assert router.outcome(ACME, A, None) is True
    assert _first(router, ACME) == B.url
    assert _first(router, OTHER) == A.url  # the same URL is healthy for another tenant
    assert changes == [(ACME, A.url, True)]
    health = {h.url: h for h in router.health(ACME, [A, B])}
    assert health[A.url].ejected
    assert health[A.url].ejected_for == 10.0
    assert not health[B.url].ejected
    clock.now += 10
    assert _first(router, ACME) == A.url
    assert changes[-1] == (ACME, A.url, False)
    assert router.clients() == [ACME]


def test_a_success_clears_the_count() -> None:
    router = Router(OutlierSettings(consecutive_failures=2))
    router.outcome(ACME, A, 500)
    router.outcome(ACME, A, 200)
    assert router.outcome(ACME, A, 500) is False
    assert router.health(ACME, [A])[0].failures == 1


def test_least_busy_counts_requests_in_flight_per_client() -> None:
    router = Router()
    router.started(ACME, A)
    assert _first(router, ACME, "least_busy") == B.url
    assert _first(router, OTHER, "least_busy") == A.url
    assert router.health(ACME, [A])[0].in_flight == 1
    router.finished(ACME, A)
    assert _first(router, ACME, "least_busy") == A.url


def test_a_model_map_narrows_the_plan_and_an_unserved_model_is_refused() -> None:
    router = Router()
    only_b = Deployment(url="http://127.0.0.1:3/v1", models={"gpt-4o": "x"})
    plan = router.plan(ACME, [only_b, A], "ordered", 0, model="gpt-4o-mini")
    assert [t.deployment for t in plan] == [A]
    with pytest.raises(RoutingError, match="serves the model 'gpt-4o-mini'"):
        router.plan(ACME, [only_b], "ordered", 0, model="gpt-4o-mini")


def test_sticky_plans_ignore_ejection() -> None:
    router = Router(OutlierSettings(consecutive_failures=1))
    router.outcome(ACME, A, None)
    plan = router.plan(ACME, [A, B], "ordered", 1, sticky=True)
    assert [t.deployment for t in plan] == [A, A, B, B]
