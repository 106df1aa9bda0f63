"""`Router`: this process's routing state, the one object the transport asks where to send.

It joins the pure parts: a client's deployments and strategy (`gateway.balancing`), the
requests in flight per deployment (for `least_busy`), and the outlier detector
(`gateway.outliers`). State is per process and per client: one tenant's failures never eject
another tenant's deployment, even at the same URL. No I/O: the app publishes ejections
(`on_change`) to `/metrics` and to Redis for `gateway clients health`.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from gateway.balancing import Deployment, InFlight, RoutingError, TryPlan, preference, serving
from gateway.config import Settings
from gateway.outliers import OutlierDetector, OutlierSettings

#: (account, client name): whose deployments these are.
ClientKey = tuple[str, str]

#: Called with the client, the deployment's URL and whether it was just ejected (False: back).
EjectionHook = Callable[[ClientKey, str, bool], None]


def outlier_settings(settings: Settings) -> OutlierSettings:
    return OutlierSettings(
        consecutive_failures=settings.outlier_consecutive_failures,
        base_ejection=settings.outlier_base_ejection,
        max_ejection=settings.outlier_max_ejection,
    )


def is_failure(status: int | None) -> bool:
    """What counts towards ejection: no answer (None: connect error, timeout) or a 5xx."""
    return status is None or status >= 500


@dataclasses.dataclass(frozen=True, slots=True)
class DeploymentHealth:
    """One deployment of one client as this process sees it (`url` without credentials)."""

    url: str
    ejected: bool
    ejected_for: float
    failures: int
    ejections: int
    in_flight: int

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Router:
    """Plans each request's tries and learns from their outcomes."""

    def __init__(
        self,
        settings: OutlierSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_change: EjectionHook | None = None,
    ) -> None:
        #: Told of every ejection and return (the app sets it once the publisher exists).
        self.on_change = on_change
        self.detector = OutlierDetector(settings, clock=clock, on_change=self._changed)
        self.in_flight = InFlight()
        self._rng = rng or random.Random()  # noqa: S311 - load spreading, not a secret

    def _changed(self, key: object, ejected: bool) -> None:
        if self.on_change is not None and isinstance(key, tuple):
            account, client, url = key
            self.on_change((account, client), url, ejected)

    @staticmethod
    def _key(client: ClientKey, deployment: Deployment) -> tuple[str, str, str]:
        return (client[0], client[1], deployment.url)

    def plan(
        self,
        client: ClientKey,
        deployments: Sequence[Deployment],
        strategy: str,
        retries: int,
        *,
        model: str | None = None,
        sticky: bool = False,
    ) -> TryPlan:
        """The tries for one request. `sticky` (a client without `deployments`): its upstream,
        then its fallbacks, each spent before the next, and no ejection."""
        if sticky:
            return TryPlan(deployments, retries, sticky=True)
        eligible = serving(deployments, model)
        if not eligible:
            raise RoutingError(f"no deployment of this client serves the model {model!r}")
        order = preference(
            strategy,
            eligible,
            busy=lambda d: self.in_flight.count(self._key(client, d)),
            rng=self._rng,
        )
        return TryPlan(
            order, retries, ejected=lambda d: self.detector.is_ejected(self._key(client, d))
        )

    def started(self, client: ClientKey, deployment: Deployment) -> None:
        self.in_flight.begin(self._key(client, deployment))

    def finished(self, client: ClientKey, deployment: Deployment) -> None:
        self.in_flight.end(self._key(client, deployment))

    def outcome(self, client: ClientKey, deployment: Deployment, status: int | None) -> bool:
        """Learn from one attempt (`status` None: no answer). True when it ejected the
        deployment."""
        key = self._key(client, deployment)
        if is_failure(status):
            return self.detector.failure(key)
        self.detector.success(key)
        return False

    def health(
        self, client: ClientKey, deployments: Sequence[Deployment]
    ) -> list[DeploymentHealth]:
        out = []
        for deployment in deployments:
            key = self._key(client, deployment)
            seen = self.detector.health(key)
            out.append(
                DeploymentHealth(
                    url=deployment.public_url(),
                    ejected=seen.ejected,
                    ejected_for=seen.ejected_for,
                    failures=seen.failures,
                    ejections=seen.ejections,
                    in_flight=self.in_flight.count(key),
                )
            )
        return out

    def health_of(self, client: ClientKey) -> list[DeploymentHealth]:
        """Every deployment of `client` this process has an opinion of."""
        urls = [k[2] for k in self.detector.known() if isinstance(k, tuple) and k[:2] == client]
        return self.health(client, [Deployment(url=url) for url in urls])

    def clients(self) -> list[ClientKey]:
        """Every client this process has routed a deployment of."""
        seen: dict[ClientKey, None] = {}
        for key in self.detector.known():
            if isinstance(key, tuple):
                seen[(key[0], key[1])] = None
        return list(seen)
