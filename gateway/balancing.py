"""Which upstream deployment serves a request, and in which order the others are tried.

A client's policy may name `deployments` and a `strategy` (docs/policies.md). When it does, the
deployments replace the client's own `upstream_url` as its list of upstreams. Pure code: no
aiohttp, no Redis, no clock of its own, so the transport and the tests drive it alike.

    strategy      first choice                          then
    ordered       the first deployment listed           the next ones, in the listed order
    weighted      at random, in proportion to weight    the rest, drawn the same way
    least_busy    fewest requests in flight here        the next least busy ones

`TryPlan` turns that preference into the tries of one request: each deployment gets up to
`1 + retries` tries, and a retry or fallback goes to another deployment rather than back to the
one that just failed (only a lone deployment is tried again at once). A deployment ejected as
an outlier (`gateway.outliers`) gets no try while any deployment is not ejected.
"""

from __future__ import annotations

import dataclasses
import random
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

from gateway.urls import public_url

STRATEGIES = ("ordered", "weighted", "least_busy")

#: Policy fields this module parses (see `routing_fields`).
ROUTING_FIELDS = frozenset({"strategy", "deployments", "request_deadline"})

_DEPLOYMENT_FIELDS = frozenset({"url", "key_env", "key", "weight", "models"})


class RoutingError(ValueError):
    """A `strategy`, `deployments` or `request_deadline` field is malformed; says which."""


@dataclasses.dataclass(frozen=True, slots=True)
class Deployment:
    """One upstream a client's traffic may go to.

    `models` maps the model a request asks for (after the policy's aliases) to the name this
    deployment knows it by. A deployment with a map serves only the models it names; one
    without serves every model under its own name.
    """

    url: str
    key_env: str = ""
    key: str = ""
    weight: float = 1.0
    models: dict[str, str] = dataclasses.field(default_factory=dict)

    def serves(self, model: str | None) -> bool:
        return model is None or not self.models or model in self.models

    def upstream_model(self, model: str) -> str:
        return self.models.get(model, model)

    def public_url(self) -> str:
        """The URL as logs and the journal show it: no `user:password@`, no query string."""
        return public_url(self.url)

    def public_dict(self) -> dict[str, Any]:
        """As shown to operators: a stored key is masked."""
        return {
            "url": self.url,
            "key_env": self.key_env,
            "key": "***" if self.key else "",
            "weight": self.weight,
            "models": dict(self.models),
        }


def _number(field: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise RoutingError(f"{field} must be a positive number")
    if value == float("inf"):
        raise RoutingError(f"{field} must be finite")
    return float(value)


def _string(field: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RoutingError(f"{field} must be a string")
    return value


def parse_deployment(index: int, value: Any) -> Deployment:
    """One item of `deployments` (an object, or a bare URL), checked field by field."""
    where = f"deployments[{index}]"
    if isinstance(value, str):
        value = {"url": value}
    if not isinstance(value, Mapping):
        raise RoutingError(f"{where} must be an object with a 'url' (or a URL)")
    unknown = set(value) - _DEPLOYMENT_FIELDS
    if unknown:
        raise RoutingError(f"{where}: unknown field(s): {', '.join(sorted(map(str, unknown)))}")
    url = value.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise RoutingError(f"{where}.url must be an http(s) URL")
    key_env = _string(f"{where}.key_env", value.get("key_env"))
    key = _string(f"{where}.key", value.get("key"))
    if key_env and key:
        raise RoutingError(f"{where}: give key_env or key, not both")
    weight = _number(f"{where}.weight", value.get("weight", 1))
    models = value.get("models") or {}
    if not isinstance(models, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) and k and v for k, v in models.items()
    ):
        raise RoutingError(f"{where}.models must map requested models to upstream model names")
    return Deployment(
        url=url.rstrip("/"), key_env=key_env, key=key, weight=weight, models=dict(models)
    )


def routing_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The routing part of a policy document, parsed: the `ClientPolicy` keyword arguments for
    whichever of `strategy`, `deployments` and `request_deadline` the document has."""
    out: dict[str, Any] = {}
    if "strategy" in data:
        if data["strategy"] not in STRATEGIES:
            raise RoutingError(f"strategy must be one of {', '.join(STRATEGIES)}")
        out["strategy"] = data["strategy"]
    if "deployments" in data:
        items = data["deployments"]
        if not isinstance(items, list | tuple):
            raise RoutingError("deployments must be a list")
        deployments = tuple(parse_deployment(i, item) for i, item in enumerate(items))
        urls = Counter(d.url for d in deployments)
        repeated = [url for url, count in urls.items() if count > 1]
        if repeated:
            raise RoutingError(f"deployments: {repeated[0]} is listed more than once")
        if deployments and data.get("fallbacks"):
            raise RoutingError("deployments replace fallbacks: give one or the other")
        out["deployments"] = deployments
    if data.get("request_deadline") is not None:
        out["request_deadline"] = _number("request_deadline", data["request_deadline"])
    return out


def serving(deployments: Sequence[Deployment], model: str | None) -> list[Deployment]:
    """The deployments that serve `model` (all of them for a request that names none)."""
    return [d for d in deployments if d.serves(model)]


class InFlight:
    """Requests in flight per deployment on this instance (what `least_busy` compares)."""

    def __init__(self) -> None:
        self._counts: Counter[Hashable] = Counter()

    def begin(self, key: Hashable) -> None:
        self._counts[key] += 1

    def end(self, key: Hashable) -> None:
        self._counts[key] -= 1
        if self._counts[key] <= 0:
            del self._counts[key]

    def count(self, key: Hashable) -> int:
        return self._counts[key]


def _weighted_order(deployments: Sequence[Deployment], rng: random.Random) -> list[Deployment]:
    """A random order drawn without replacement, each draw in proportion to weight (so the
    first choice falls on each deployment with probability weight / total)."""
    left = list(deployments)
    order = []
    while left:
        total = sum(d.weight for d in left)
        point = rng.random() * total
        for index, deployment in enumerate(left):
            point -= deployment.weight
            if point < 0 or index == len(left) - 1:
                order.append(left.pop(index))
                break
    return order


def preference(
    strategy: str,
    deployments: Sequence[Deployment],
    *,
    busy: Callable[[Deployment], int] = lambda _: 0,
    rng: random.Random | None = None,
) -> list[Deployment]:
    """The deployments in the order this request prefers them under `strategy`."""
    if strategy == "ordered":
        return list(deployments)
    if strategy == "weighted":
        return _weighted_order(deployments, rng or random.Random())  # noqa: S311 - not a secret
    if strategy == "least_busy":
        # sorted() is stable: equally busy deployments keep their listed order.
        return sorted(deployments, key=busy)
    raise RoutingError(f"strategy must be one of {', '.join(STRATEGIES)}")


@dataclasses.dataclass(frozen=True, slots=True)
class Try:
    """One attempt of a request: where, the how-manieth at that deployment (from 1), and
    whether it goes to an ejected deployment because every deployment is ejected."""

    deployment: Deployment
    attempt: int
    all_ejected: bool = False


class TryPlan:
    """The tries of one request, handed out one at a time.

    Rounds go through the preferred order; each round skips deployments that are ejected (unless
    every deployment of the client is), spent (`1 + retries` tries) or dropped (`drop`, for a
    `Retry-After` too long to wait). So a failed try is followed by another deployment's, and a
    deployment is tried again only once the others have had their turn.

    `sticky=True` is the order of a client without `deployments` (its own upstream, then its
    `fallbacks`, which may share a URL): all the tries at one upstream, then all at the next.
    """

    def __init__(
        self,
        order: Sequence[Deployment],
        retries: int,
        *,
        ejected: Callable[[Deployment], bool] = lambda _: False,
        sticky: bool = False,
    ) -> None:
        if not order:
            raise RoutingError("no deployment to try")
        self._order = list(order)
        self._limit = retries + 1
        self._ejected = ejected
        self._sticky = sticky
        self._tries = [0] * len(self._order)
        self._dropped: set[int] = set()
        self._last: int | None = None

    def _choose(self) -> tuple[int, bool] | None:
        """The position of the next deployment to try, and whether all are ejected."""
        candidates = [
            i
            for i in range(len(self._order))
            if i not in self._dropped and self._tries[i] < self._limit
        ]
        if not candidates:
            return None
        if self._sticky:
            return candidates[0], False
        out = [self._ejected(d) for d in self._order]
        if all(out):
            pool = candidates  # every deployment is out: better a try than none
        else:
            pool = [i for i in candidates if not out[i]]
            if not pool:
                return None
        others = [i for i in pool if i != self._last] or pool  # not back to the one that failed
        fewest = min(self._tries[i] for i in others)
        return next(i for i in others if self._tries[i] == fewest), all(out)

    def drop(self, deployment: Deployment) -> None:
        """No more tries at `deployment` for this request."""
        self._dropped.update(i for i, d in enumerate(self._order) if d is deployment)

    def peek(self) -> Try | None:
        """The try `next()` would give now, without taking it (None: the answer in hand is
        the last word)."""
        chosen = self._choose()
        if chosen is None:
            return None
        index, all_ejected = chosen
        return Try(self._order[index], self._tries[index] + 1, all_ejected)

    def has_next(self) -> bool:
        return self._choose() is not None

    def next(self) -> Try | None:
        """The next try, or None when every deployment is spent."""
        chosen = self._choose()
        if chosen is None:
            return None
        index, all_ejected = chosen
        self._tries[index] += 1
        self._last = index
        return Try(self._order[index], self._tries[index], all_ejected)

    def __iter__(self) -> Iterator[Try]:
        while (step := self.next()) is not None:
            yield step
