"""`UpstreamTransport`: send one request to a client's upstreams, with retries and fallbacks.

Each target is a deployment (`deployments.py`): the policy's `deployments`, picked and ordered
by its strategy, or the client's own upstream then its `fallbacks`. Each gets up to
`1 + retries` tries; a retry goes to another deployment when there is one, ejected outliers get
none while another is in service (`gateway.routing`), and the request's deadline bounds it all
(`retries.py` decides what is retried and how long to wait). The first final
answer is returned open, as an `UpstreamReply`, for the relay to copy to the client; nothing is
retried once a byte of the reply has gone out, because the reply is only returned after the
decision. Every attempt is recorded on the request's `Exchange` for the journal. Handlers and
managed mode send through it; nothing else talks to an upstream (tool plugins excepted, which
call their own APIs through `upstream_errors` too).
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict

from gateway.balancing import Deployment
from gateway.config import Settings
from gateway.deadline import Deadline
from gateway.errors import UpstreamError
from gateway.exchange import Attempt, Exchange
from gateway.routing import Router, outlier_settings
from gateway.spans import attempt_span
from gateway.store.records import ClientRecord
from gateway.tracing import AttemptTrace
from gateway.upstream.deployments import Route, deadline_passed, request_deadline
from gateway.upstream.errors import upstream_errors
from gateway.upstream.reply import UpstreamReply
from gateway.upstream.retries import (
    RetrySettings,
    backoff_delay,
    is_retryable_status,
    retry_after_seconds,
)


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    """One upstream to try: the full URL, its headers (credentials included), and a label
    for the journal that carries no secret."""

    url: str
    headers: CIMultiDict[str]
    label: str
    #: The deployment this target sends to (None: one made from `label`, for handlers that
    #: build targets without one).
    deployment: Deployment | None = None

    def credentials(self) -> tuple[str, ...]:
        """The secrets this target sends (its upstream key), to scrub from what it answers."""
        found = []
        for name in _CREDENTIAL_HEADERS:
            value = self.headers.get(name)
            if value:
                scheme, _, token = value.partition(" ")
                found.append(token if scheme.lower() == "bearer" and token else value)
        return tuple(secret for secret in found if len(secret) >= _SHORTEST_SECRET)


#: Headers that carry an upstream credential; an upstream that echoes one back must not reach
#: the tenant with it.
_CREDENTIAL_HEADERS = ("authorization", "api-key", "x-api-key")
_SHORTEST_SECRET = 8


def create_upstream_session(settings: Settings) -> aiohttp.ClientSession:
    """One pooled session per process. `upstream_timeout` bounds every wait for the upstream
    (its headers, and each gap between body bytes), not a whole long stream."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
    timeout = aiohttp.ClientTimeout(
        total=None,
        sock_connect=settings.upstream_connect_timeout,
        sock_read=settings.upstream_timeout,
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
        json_serialize=lambda obj: orjson.dumps(obj).decode(),
    )


class UpstreamTransport:
    """The process's pooled session, its routing state and the send loop every handler uses."""

    def __init__(
        self, session: aiohttp.ClientSession, settings: Settings, router: Router | None = None
    ) -> None:
        self.session = session
        self.settings = settings
        self.router = router or Router(outlier_settings(settings))

    def retry_settings(self, retries: int | None) -> RetrySettings:
        return RetrySettings.from_settings(self.settings, retries)

    async def forward(
        self,
        exchange: Exchange,
        client: ClientRecord,
        targets: Sequence[Target],
        data: dict[str, Any] | None,
    ) -> UpstreamReply:
        """POST `data` (as the caller's bytes when nothing rewrote it), or GET when None, to
        the client's targets with its retry policy: what every forwarding handler does."""
        body = None if data is None else exchange.upstream_body(data)
        retry = self.retry_settings(client.policy.retries)
        method = "GET" if data is None else "POST"
        return await self.send(exchange, method, targets, body, retry)

    async def send(
        self,
        exchange: Exchange,
        method: str,
        targets: Sequence[Target],
        body: bytes | None,
        retry: RetrySettings,
    ) -> UpstreamReply:
        """Try `targets` as the client's routing plans; return the first final answer, open."""
        if exchange.identity is None:  # pragma: no cover - the pipeline identifies first
            raise UpstreamError("the request has no tenant", code="upstream_not_configured")
        client = exchange.identity.client
        deployments = [t.deployment or Deployment(url=t.label) for t in targets]
        by_id = {id(d): t for d, t in zip(deployments, targets, strict=True)}
        route = Route(self.router, client, deployments, body, retry.retries)
        deadline = request_deadline(client, self.settings, exchange.started)
        #: perf_counter() before which a deployment is not tried again (backoff, Retry-After).
        not_before: dict[int, float] = {}
        while (step := route.plan.next()) is not None:
            deployment, target = step.deployment, by_id[id(step.deployment)]
            wait = not_before.get(id(deployment), 0.0) - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            attempt = exchange.attempt(target.label, step.attempt)
            if step.all_ejected:
                attempt.mark("all_ejected")
            exchange.upstream_started()
            span, headers = attempt_span(exchange, target.url, step.attempt, target.headers, body)
            outcome = await self._attempt(
                route, deployment, target, method, deadline, attempt, span, headers
            )
            if isinstance(outcome, UpstreamError):
                upcoming = route.plan.peek()
                if upcoming is None:
                    raise outcome
                delay = backoff_delay(retry, step.attempt - 1)
            else:
                asked = retry_after_seconds(outcome.headers.get("Retry-After"))
                if not is_retryable_status(outcome.status):
                    return self._reply(route, deployment, outcome, target)
                if asked is not None and asked > retry.retry_after_max:
                    route.plan.drop(deployment)  # too long to wait: no more tries here
                upcoming = route.plan.peek()
                if upcoming is None:
                    return self._reply(route, deployment, outcome, target)
                delay = max(asked or 0.0, backoff_delay(retry, step.attempt - 1))
            not_before[id(deployment)] = time.perf_counter() + delay
            start_in = max(0.0, not_before.get(id(upcoming.deployment), 0.0) - time.perf_counter())
            if not deadline.allows(start_in):  # no retry or fallback starts after the deadline
                if isinstance(outcome, UpstreamError):
                    raise outcome
                return self._reply(route, deployment, outcome, target)
            if upcoming.deployment is deployment or start_in > 0:
                attempt.retry_in(start_in)
            if not isinstance(outcome, UpstreamError):
                outcome.close()
                span.end()
                self.router.finished(route.key, deployment)
        raise UpstreamError("no upstream answered", code="upstream_unreachable")  # pragma: no cover

    async def _attempt(
        self,
        route: Route,
        deployment: Deployment,
        target: Target,
        method: str,
        deadline: Deadline,
        attempt: Attempt,
        span: AttemptTrace,
        headers: CIMultiDict[str],
    ) -> aiohttp.ClientResponse | UpstreamError:
        """One try: the upstream's answer (still open, counted in flight), or why there was
        none. The deadline cutting it off ends the request. A final answer's span ends with
        the request (usage, finish reasons); the others' end here or in `send`."""
        if not deadline.allows():
            attempt.failed("request_deadline")
            span.end(error="request_deadline")
            raise deadline_passed(deadline)
        payload = route.body_for(deployment)
        self.router.started(route.key, deployment)
        try:
            async with asyncio.timeout(deadline.remaining()):
                with upstream_errors():
                    response = await self.session.request(
                        method, target.url, data=payload, headers=headers
                    )
        except TimeoutError:  # the deadline's (a slow upstream's is mapped inside)
            self.router.finished(route.key, deployment)
            attempt.failed("request_deadline")
            span.end(error="request_deadline")
            raise deadline_passed(deadline) from None
        except UpstreamError as exc:
            self.router.finished(route.key, deployment)
            attempt.failed(exc.code)
            span.end(error=exc.code)
            self._learn(route, deployment, None, attempt)
            return exc
        attempt.answered(response.status)
        span.response(response.status)
        self._learn(route, deployment, response.status, attempt)
        return response

    def _learn(
        self, route: Route, deployment: Deployment, status: int | None, attempt: Attempt
    ) -> None:
        """Outlier ejection learns from the deployments of a routed client."""
        if route.routed and self.router.outcome(route.key, deployment, status):
            attempt.mark("ejected")

    def _reply(
        self,
        route: Route,
        deployment: Deployment,
        response: aiohttp.ClientResponse,
        target: Target,
    ) -> UpstreamReply:
        def finished() -> None:
            self.router.finished(route.key, deployment)

        return UpstreamReply(
            response, target.label, on_close=finished, secrets=target.credentials()
        )
