"""A client's upstreams as deployments, and what one request needs to route among them.

`deployments_of` is the list handlers build their targets from: the policy's `deployments`
when it has any (they replace the client's own upstream), else the client's `upstream_url`
followed by its `fallbacks` (tried each in turn, as before: a sticky plan, no ejection).
`Route` is one request's side of it: the plan of tries, the body each deployment gets (its
`models` map may rename the model) and the deadline. The loop itself is in `transport.py`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import orjson

from gateway.balancing import Deployment, RoutingError, TryPlan
from gateway.config import Settings
from gateway.deadline import Deadline
from gateway.errors import InvalidRequestError, UpstreamError, UpstreamTimeoutError
from gateway.routing import ClientKey, Router
from gateway.store.records import ClientRecord


def deployments_of(client: ClientRecord) -> list[Deployment]:
    """The upstreams a client's requests may go to, in the policy's order."""
    if client.policy.deployments:
        return list(client.policy.deployments)
    if not client.upstream_url:
        raise UpstreamError("this client has no upstream URL", code="upstream_not_configured")
    own = Deployment(client.upstream_url, client.upstream_key_env, client.upstream_key)
    fallbacks = [Deployment(t.url, t.key_env, t.key) for t in client.policy.fallbacks]
    return [own, *fallbacks]


def request_deadline(client: ClientRecord, settings: Settings, started: float) -> Deadline:
    """The deadline of a request that started at `started` (perf_counter)."""
    seconds = client.policy.request_deadline or settings.request_deadline
    return Deadline(at=started + seconds, seconds=seconds, clock=time.perf_counter)


def deadline_passed(deadline: Deadline) -> UpstreamTimeoutError:
    return UpstreamTimeoutError(
        f"the request did not complete within its deadline ({deadline.seconds:g} s)",
        code="request_deadline",
    )


def _model_of(body: bytes | None) -> tuple[dict[str, Any] | None, str | None]:
    if not body:
        return None, None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None
    if not isinstance(data, dict):
        return None, None
    model = data.get("model")
    return data, model if isinstance(model, str) else None


class Route:
    """One request's plan of tries among `deployments`, and the body each one is sent."""

    def __init__(
        self,
        router: Router,
        client: ClientRecord,
        deployments: Sequence[Deployment],
        body: bytes | None,
        retries: int,
    ) -> None:
        self.key: ClientKey = (client.account, client.name)
        self.routed = bool(client.policy.deployments)
        self._body = body
        self._data: dict[str, Any] | None = None
        model = None
        if self.routed and any(d.models for d in deployments):
            # Only a model map needs the body's model: otherwise the bytes are never parsed.
            self._data, model = _model_of(body)
        try:
            self.plan: TryPlan = router.plan(
                self.key,
                deployments,
                client.policy.strategy,
                retries,
                model=model,
                sticky=not self.routed,
            )
        except RoutingError as exc:
            raise InvalidRequestError(
                f"{exc}; this client's deployments serve: "
                + ", ".join(sorted({m for d in deployments for m in d.models})),
                code="model_not_available",
                param="model",
            ) from exc

    def body_for(self, deployment: Deployment) -> bytes | None:
        """The request body for `deployment`: re-encoded only when its map renames the model."""
        data = self._data
        if data is None or not deployment.models:
            return self._body
        model = data.get("model")
        if not isinstance(model, str) or model not in deployment.models:
            return self._body
        return orjson.dumps({**data, "model": deployment.models[model]})
