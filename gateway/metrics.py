"""Prometheus metrics, served at `GET /metrics` on the admin port.

Request metrics are observed from finalized journal records, in the journal writer's task, so the
request path pays nothing for them. The journal's own counters are read when scraped. Each app
has its own `CollectorRegistry` (tests build many apps in one process).

With `workers > 1` (`PROMETHEUS_MULTIPROC_DIR` set by `gateway serve` before it spawns them),
request metrics use prometheus-client's multiprocess mode: every worker writes its own files and
worker 0, which serves the admin port, sums them all at scrape time. The figures read at scrape
time (journal queue, limiter, dropped spans) stay worker 0's own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from gateway.routing import Router

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)

#: Most (provider, model) series: a caller names the model, so past this they share `other`.
MAX_MODEL_SERIES = 500

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


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


class TracingCollector(Collector):
    """Spans the collector never got (queue full, export failed), read at scrape time."""

    def __init__(self, dropped: Callable[[], int]) -> None:
        self.dropped = dropped

    def collect(self) -> Iterator[Any]:
        yield CounterMetricFamily(
            "gateway_otel_spans_dropped",
            "Finished spans never delivered to the OpenTelemetry collector",
            value=self.dropped(),
        )


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        #: Set in worker processes: the request metrics live in files there, summed on scrape.
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_VARIABLE) or None
        metrics_registry = None if self.multiprocess_dir else self.registry
        #: Label children per tenant: `labels()` costs a lock and a dict build on every call.
        self._series: dict[tuple[str, str], _TenantSeries] = {}
        self._models: dict[tuple[str, str], tuple[Any, Any]] = {}
        labels = ("account", "client", "status")
        self.requests = Counter(
            "gateway_requests", "Requests answered", labels, registry=metrics_registry
        )
        self.latency = Histogram(
            "gateway_request_latency_seconds",
            "Total request latency",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.upstream_latency = Histogram(
            "gateway_upstream_latency_seconds",
            "Upstream latency",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.ttfb = Histogram(
            "gateway_time_to_first_byte_seconds",
            "Time to the first response byte",
            ("account", "client"),
            buckets=_LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.tokens = Counter(
            "gateway_tokens",
            "Tokens used",
            ("account", "client", "kind"),
            registry=metrics_registry,
        )
        self.model_latency = Histogram(
            "gateway_model_latency_seconds",
            "Total request latency by provider and model",
            ("provider", "model"),
            buckets=_LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.time_to_first_token = Histogram(
            "gateway_time_to_first_token_seconds",
            "Streams: arrival to the first chunk relayed, by provider and model",
            ("provider", "model"),
            buckets=_LATENCY_BUCKETS,
            registry=metrics_registry,
        )
        self.price_unknown = Counter(
            "gateway_price_unknown",
            "Requests with usage but no known price for their model (docs/costs.md)",
            ("account", "client"),
            registry=self.registry,
        )
        self.cost = Counter(
            "gateway_cost_usd", "Cost of requests, US dollars", ("account", "client"),
            registry=self.registry,
        )  # fmt: skip

    def watch_journal(self, counters: Callable[[], dict[str, int]]) -> None:
        self.registry.register(JournalCollector(counters))

    def watch_tracing(self, dropped: Callable[[], int]) -> None:
        self.registry.register(TracingCollector(dropped))

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
        cost = record.get("cost")
        if cost:
            series.cost.inc(cost["total"])
        elif record.get("price_unknown"):
            series.price_unknown.inc()
        provider = record.get("provider")
        if provider:
            model = record["model"]["answered"] or record["model"]["requested"] or "-"
            latency_child, ttft_child = self._model_series(provider, model)
            latency_child.observe(latency["total"] / 1000.0)
            if record.get("stream") and latency["ttfb"] is not None:
                ttft_child.observe(latency["ttfb"] / 1000.0)

    def _model_series(self, provider: str, model: str) -> tuple[Any, Any]:
        key = (provider, model)
        children = self._models.get(key)
        if children is None:
            if len(self._models) >= MAX_MODEL_SERIES:
                key = (provider, "other")
                children = self._models.get(key)
            if children is None:
                children = self._models[key] = (
                    self.model_latency.labels(*key),
                    self.time_to_first_token.labels(*key),
                )
        return children

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        every_worker = CollectorRegistry()
        MultiProcessCollector(every_worker, self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(every_worker) + generate_latest(self.registry)


class _TenantSeries:
    """One tenant's metric children, resolved once."""

    __slots__ = (
        "completion_tokens",
        "cost",
        "latency",
        "price_unknown",
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
        self.cost = metrics.cost.labels(account, client)
        self.price_unknown = metrics.price_unknown.labels(account, client)


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
