"""Deployments, strategies and the order of tries (`gateway.balancing`); pure, no Redis."""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from typing import Any

import pytest

from gateway.balancing import (
    STRATEGIES,
    Deployment,
    InFlight,
    RoutingError,
    Try,
    TryPlan,
    preference,
    routing_fields,
    serving,
)
from gateway.errors import PolicyError
from gateway.rewrite import ClientPolicy


def _deployments(*weights: float) -> list[Deployment]:
    return [
        Deployment(url=f"http://127.0.0.1:{9000 + i}/v1", weight=w) for i, w in enumerate(weights)
    ]


def _within_binomial(count: int, n: int, p: float, sigmas: float = 4.5) -> bool:
    """`count` successes of `n` draws at probability `p`, within `sigmas` standard deviations
    (a fair test fails by chance about once in 150,000 runs)."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


# --- parsing -------------------------------------------------------------------------------


def test_a_policy_document_with_deployments_parses_and_round_trips() -> None:
    document = {
        "strategy": "weighted",
        "deployments": [
            {"url": "https://a.example.com/v1/", "key_env": "A_KEY", "weight": 3},
            {"url": "https://b.example.com/v1", "key": "sk-b", "models": {"gpt-4o": "b-4o"}},
            "https://c.example.com/v1",
        ],
        "request_deadline": 12.5,
    }
    policy = ClientPolicy.from_dict(document)
    assert policy.strategy == "weighted"
    assert [d.url for d in policy.deployments] == [
        "https://a.example.com/v1",
        "https://b.example.com/v1",
        "https://c.example.com/v1",
    ]
    assert [d.weight for d in policy.deployments] == [3.0, 1.0, 1.0]
    assert policy.deployments[1].upstream_model("gpt-4o") == "b-4o"
    assert policy.request_deadline == 12.5
    assert ClientPolicy.from_stored(policy.to_dict()) == policy
    shown = policy.public_dict()["deployments"]
    assert shown[1]["key"] == "***"
    assert "sk-b" not in repr(policy.public_dict())
    assert shown[0]["key_env"] == "A_KEY"


def test_defaults_are_ordered_with_no_deployments_and_no_deadline() -> None:
    policy = ClientPolicy.from_dict({})
    assert (policy.strategy, policy.deployments, policy.request_deadline) == ("ordered", (), None)
    assert routing_fields({"request_deadline": None}) == {}


@pytest.mark.parametrize(
    ("document", "names"),
    [
        ({"strategy": "round_robin"}, "strategy must be one of ordered, weighted, least_busy"),
        ({"strategy": None}, "strategy must be one of"),
        ({"deployments": "https://a.example.com"}, "deployments must be a list"),
        ({"deployments": [42]}, r"deployments\[0\] must be an object"),
        ({"deployments": [{"key_env": "K"}]}, r"deployments\[0\]\.url must be an http\(s\) URL"),
        ({"deployments": ["ftp://a.example.com"]}, r"deployments\[0\]\.url"),
        (
            {"deployments": ["https://a", {"url": "https://b", "wieght": 2}]},
            r"\[1\]: unknown.*wieght",
        ),
        (
            {"deployments": [{"url": "https://a", "weight": 0}]},
            r"deployments\[0\]\.weight must be a positive",
        ),
        ({"deployments": [{"url": "https://a", "weight": -1}]}, r"\.weight must be a positive"),
        ({"deployments": [{"url": "https://a", "weight": True}]}, r"\.weight must be a positive"),
        ({"deployments": [{"url": "https://a", "weight": "2"}]}, r"\.weight must be a positive"),
        (
            {"deployments": [{"url": "https://a", "weight": float("inf")}]},
            r"\.weight must be finite",
        ),
        ({"deployments": [{"url": "https://a", "key_env": 5}]}, r"\[0\]\.key_env must be a string"),
        ({"deployments": [{"url": "https://a", "key": ["x"]}]}, r"\[0\]\.key must be a string"),
        (
            {"deployments": [{"url": "https://a", "key": "k", "key_env": "K"}]},
            "key_env or key, not both",
        ),
        ({"deployments": [{"url": "https://a", "models": ["gpt-4o"]}]}, r"\[0\]\.models must map"),
        (
            {"deployments": [{"url": "https://a", "models": {"gpt-4o": ""}}]},
            r"\[0\]\.models must map",
        ),
        (
            {"deployments": ["https://a/v1", "https://a/v1/"]},
            "https://a/v1 is listed more than once",
        ),
        (
            {"deployments": ["https://a"], "fallbacks": ["https://b"]},
            "deployments replace fallbacks",
        ),
        ({"request_deadline": 0}, "request_deadline must be a positive number"),
        ({"request_deadline": -3}, "request_deadline must be a positive number"),
        ({"request_deadline": "10"}, "request_deadline must be a positive number"),
        ({"request_deadline": False}, "request_deadline must be a positive number"),
    ],
)
def test_malformed_routing_fields_are_refused_naming_the_field(
    document: dict[str, Any], names: str
) -> None:
    with pytest.raises(RoutingError, match=names):
        routing_fields(document)
    with pytest.raises(PolicyError, match=names):  # the policy document says the same
        ClientPolicy.from_dict(document)


def test_a_model_map_limits_a_deployment_to_the_models_it_names() -> None:
    mapped = Deployment(url="https://a", models={"gpt-4o": "a-4o"})
    open_ = Deployment(url="https://b")
    assert serving([mapped, open_], "gpt-4o") == [mapped, open_]
    assert serving([mapped, open_], "gpt-4o-mini") == [open_]
    assert serving([mapped, open_], None) == [mapped, open_]  # GET /v1/models names none
    assert (mapped.upstream_model("gpt-4o"), open_.upstream_model("gpt-4o")) == ("a-4o", "gpt-4o")


# --- strategies ----------------------------------------------------------------------------


def test_ordered_prefers_the_listed_order() -> None:
    deployments = _deployments(1, 5, 9)
    assert preference("ordered", deployments) == deployments


def test_weighted_first_choice_splits_by_weight_within_binomial_tolerance() -> None:
    deployments = _deployments(3, 1)
    rng = random.Random()
    n = 400
    first = Counter(preference("weighted", deployments, rng=rng)[0].url for _ in range(n))
    assert set(first) == {d.url for d in deployments}
    assert _within_binomial(first[deployments[0].url], n, 0.75)


def test_weighted_split_over_three_deployments() -> None:
    deployments = _deployments(5, 3, 2)
    n = 600
    first = Counter(preference("weighted", deployments)[0].url for _ in range(n))
    for deployment, p in zip(deployments, (0.5, 0.3, 0.2), strict=True):
        assert _within_binomial(first[deployment.url], n, p), (deployment.url, first)


def test_weighted_order_is_a_permutation() -> None:
    deployments = _deployments(1, 2, 3, 4)
    for _ in range(50):
        order = preference("weighted", deployments)
        assert sorted(d.url for d in order) == sorted(d.url for d in deployments)


def test_least_busy_prefers_the_fewest_in_flight_ties_in_listed_order() -> None:
    a, b, c = _deployments(1, 1, 1)
    in_flight = InFlight()
    for deployment, count in ((a, 3), (b, 1), (c, 2)):
        for _ in range(count):
            in_flight.begin(deployment.url)
    busy = lambda d: in_flight.count(d.url)  # noqa: E731
    assert preference("least_busy", [a, b, c], busy=busy) == [b, c, a]
    in_flight.end(a.url)
    in_flight.end(a.url)  # a: 1 in flight, tied with b, listed first
    assert preference("least_busy", [a, b, c], busy=busy) == [a, b, c]
    in_flight.end(a.url)
    assert in_flight.count(a.url) == 0
    assert preference("least_busy", [a, b, c], busy=busy)[0] == a


def test_least_busy_spreads_concurrent_requests() -> None:
    deployments = _deployments(1, 1, 1)
    in_flight = InFlight()
    picks = []
    for _ in range(9):  # nine requests start and none has ended yet
        choice = preference("least_busy", deployments, busy=lambda d: in_flight.count(d.url))[0]
        in_flight.begin(choice.url)
        picks.append(choice.url)
    assert Counter(picks) == {d.url: 3 for d in deployments}


def test_an_unknown_strategy_is_refused() -> None:
    with pytest.raises(RoutingError):
        preference("random", _deployments(1))


# --- the order of tries --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("count", "retries", "strategy"),
    list(itertools.product((1, 2, 3, 4), (0, 1, 2, 3), STRATEGIES)),
)
def test_every_try_moves_to_another_deployment_and_each_gets_its_share(
    count: int, retries: int, strategy: str
) -> None:
    deployments = _deployments(*range(1, count + 1))
    tries = list(TryPlan(preference(strategy, deployments), retries))
    assert len(tries) == count * (1 + retries)
    assert Counter(t.deployment.url for t in tries) == {d.url: 1 + retries for d in deployments}
    for before, after in itertools.pairwise(tries):
        if count > 1:
            assert after.deployment != before.deployment, tries
    seen: Counter[str] = Counter()
    for step in tries:
        seen[step.deployment.url] += 1
        assert step.attempt == seen[step.deployment.url]


def test_the_first_try_is_the_strategys_choice_then_the_rest_in_its_order() -> None:
    a, b, c = _deployments(1, 1, 1)
    urls = [t.deployment.url for t in TryPlan([b, c, a], retries=1)]
    assert urls == [b.url, c.url, a.url, b.url, c.url, a.url]


def test_ejected_deployments_get_no_try_while_another_is_healthy() -> None:
    a, b, c = _deployments(1, 1, 1)
    ejected = {a.url, c.url}
    plan = TryPlan([a, b, c], retries=2, ejected=lambda d: d.url in ejected)
    assert [t.deployment for t in plan] == [b, b, b]


def test_every_deployment_ejected_means_they_are_all_tried() -> None:
    a, b = _deployments(1, 1)
    plan = TryPlan([a, b], retries=0, ejected=lambda d: True)
    assert [t.deployment for t in plan] == [a, b]


def test_a_deployment_ejected_during_the_request_gets_no_more_tries() -> None:
    a, b = _deployments(1, 1)
    ejected: set[str] = set()
    plan = TryPlan([a, b], retries=2, ejected=lambda d: d.url in ejected)
    first = plan.next()
    assert first is not None
    assert first.deployment == a
    ejected.add(a.url)
    assert [t.deployment for t in plan] == [b, b, b]


def test_a_dropped_deployment_gets_no_more_tries() -> None:
    a, b, c = _deployments(1, 1, 1)
    plan = TryPlan([a, b, c], retries=1)
    first = plan.next()
    assert first is not None
    plan.drop(first.deployment)  # e.g. its Retry-After is too long to wait for
    assert [t.deployment for t in plan] == [b, c, b, c]


def test_an_empty_plan_is_refused() -> None:
    with pytest.raises(RoutingError, match="no deployment"):
        TryPlan([], retries=2)


def test_sticky_order_spends_each_upstream_before_the_next_like_fallbacks() -> None:
    a, b = _deployments(1, 1)
    plan = TryPlan([a, b], retries=2, sticky=True)
    assert [(t.deployment, t.attempt) for t in plan] == [
        (a, 1),
        (a, 2),
        (a, 3),
        (b, 1),
        (b, 2),
        (b, 3),
    ]
    sticky = TryPlan([a, b], retries=2, sticky=True)
    sticky.next()
    sticky.drop(a)  # Retry-After too long: on to the fallback
    assert [t.deployment for t in sticky] == [b, b, b]


def test_has_next_tells_whether_the_answer_in_hand_is_the_last_word() -> None:
    a, b = _deployments(1, 1)
    plan = TryPlan([a, b], retries=0)
    assert plan.has_next()
    plan.next()
    assert plan.has_next()
    plan.next()
    assert not plan.has_next()
    assert plan.next() is None


def test_fallbacks_sharing_a_url_are_each_tried() -> None:
    own = Deployment(url="https://api.openai.com/v1", key="sk-main")
    backup = Deployment(url="https://api.openai.com/v1", key="sk-backup")
    plan = TryPlan([own, backup], retries=1, sticky=True)
    assert [(t.deployment.key, t.attempt) for t in plan] == [
        ("sk-main", 1),
        ("sk-main", 2),
        ("sk-backup", 1),
        ("sk-backup", 2),
    ]


def test_a_try_says_when_it_goes_to_an_ejected_deployment() -> None:
    a, b = _deployments(1, 1)
    healthy = TryPlan([a, b], retries=0, ejected=lambda d: d is a)
    assert [t.all_ejected for t in healthy] == [False]
    out = TryPlan([a, b], retries=0, ejected=lambda d: True)
    assert [t.all_ejected for t in out] == [True, True]


def test_peek_shows_the_next_try_without_taking_it() -> None:
    a, b = _deployments(1, 1)
    plan = TryPlan([a, b], retries=1)
    peeked = plan.peek()
    assert peeked == plan.next()
    assert peeked is not None
    assert (peeked.deployment, peeked.attempt) == (a, 1)
    assert plan.peek() == Try(b, 1)
    assert plan.peek() == plan.next()
    assert plan.peek() == Try(a, 2)
