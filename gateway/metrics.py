"""Prometheus metrics, served at `GET /metrics` on the admin port.

Request metrics are observed from finalized journal records, in the journal writer's task, so the
request path pays nothing for them. The journal's own counters are read when scraped. Each app
has its own `CollectorRegistry` (tests build many apps in one process). With `workers > 1`, only
worker 0 serves the admin port, so these are that worker's figures (see docs/journal.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.routing import Router

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


class JournalCollector(Collector):
    """The journal writer's counters, read at scrape time."""

    def __init__(self, counters: Callable[[], dict[str, int]]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Any]:
        values = self.counters()
        yield GaugeMetricFamily(
            "gateway_journal_queue_depth", "Records waiting in memory", value=values["queued"]
        )
        for name in ("written", "spilled", "replayed", "dropped", "dead_lettered"):
            yield CounterMetricFamily(
                f"gateway_journal_{name}", f"Journal records {name}", value=values[name]
            )
        yield CounterMetricFamily(
            "gateway_journal_writer_restarts",
            "Journal writer crashes (each restarted by its supervisor)",
            value=values["restarts"],
        )
        yield GaugeMetricFamily(
            "gateway_journal_writer_up", "1 while the journal writer runs", value=values["alive"]
        )


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Label children per tenant: `labels()` costs a lock and a dict build on every call.
        self._series: dict[tuple[str, str], _TenantSeries] = {}
        labels = ("account", "client", "status")
        self.requests = Counter(
            "gateway_requests", "Requests answered", labels, registry=self.registry
        )
        self.latency = Histogram(
            "gateway_request_latency_seconds",
            "Total request latency",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "Upstream latency",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.ttfb = Histogram(
            "gateway_time_to_first_byte_seconds",
            "Time to the first response byte",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.tokens = Counter(
            "gateway_tokens", "Tokens used", ("account", "client", "kind"), registry=self.registry
        )

    def watch_journal(self, counters: Callable[[], dict[str, int]]) -> None:
        self.registry.register(JournalCollector(counters))

    def observe(self, record: dict[str, Any]) -> None:
        account = record["account"] or "-"
        client = record["client"] or "-"
        series = self._series.get((account, client))
        if series is None:
            series = self._series[(account, client)] = _TenantSeries(self, account, client)
        status = record["status"]
        requests = series.requests.get(status)
        if requests is None:
            requests = series.requests[status] = self.requests.labels(account, client, str(status))
        requests.inc()
        latency = record["latency_ms"]
        series.latency.observe(latency["total"] / 1000.0)
        if latency["upstream"] is not None:
            series.upstream_latency.observe(latency["upstream"] / 1000.0)
        if latency["ttfb"] is not None:
            series.ttfb.observe(latency["ttfb"] / 1000.0)
        usage = record["usage"]
        if usage:
            series.prompt_tokens.inc(usage["input_tokens"])
            series.completion_tokens.inc(usage["output_tokens"])

    def render(self) -> bytes:
        return generate_latest(self.registry)


class _TenantSeries:
    """One tenant's metric children, resolved once."""

    __slots__ = (
        "completion_tokens",
        "latency",
        "prompt_tokens",
        "requests",
        "ttfb",
        "upstream_latency",
    )

    def __init__(self, metrics: GatewayMetrics, account: str, client: str) -> None:
        self.requests: dict[int, Any] = {}
        self.latency = metrics.latency.labels(account, client)
        self.upstream_latency = metrics.upstream_latency.labels(account, client)
        self.ttfb = metrics.ttfb.labels(account, client)
        self.prompt_tokens = metrics.tokens.labels(account, client, "prompt")
        self.completion_tokens = metrics.tokens.labels(account, client, "completion")


class RoutingCollector(Collector):
    """Outlier ejection of each client's deployments in this process, read at scrape time."""

    def __init__(self, router: Router) -> None:
        self.router = router

    def collect(self) -> Iterator[Any]:
        labels = ("account", "client", "upstream")
        ejected = GaugeMetricFamily(
            "gateway_upstream_ejected",
            "1 while a deployment is ejected as an outlier",
            labels=labels,
        )
        ejections = CounterMetricFamily(
            "gateway_upstream_ejections", "Outlier ejections of a deployment", labels=labels
        )
        for client in self.router.clients():
            for health in self.router.health_of(client):
                values = (client[0], client[1], health.url)
                ejected.add_metric(values, 1.0 if health.ejected else 0.0)
                ejections.add_metric(values, health.ejections)
        yield ejected
        yield ejections
