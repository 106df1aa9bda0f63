"""`gateway serve --workers N`: `/metrics` on worker 0's admin port sums every worker's request
metrics (prometheus-client multiprocess mode): N workers, M requests, the counters sum to M."""

from __future__ import annotations

import os
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import ACCOUNT, Cli, free_port
from tests.test_server import GatewayProcess, _echo_tenant, _post

WORKERS = 2
REQUESTS = 60
ADMIN_TOKEN = "metrics-admin-token"


@pytest.fixture
def workers_gateway(tmp_path: Path, redis_url: str, cli: Cli) -> Iterator[GatewayProcess]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_VAR_DIR=str(tmp_path / "var"),
        GATEWAY_REDIS_URL=redis_url,
        GATEWAY_SECRET="test-hmac-secret",
        GATEWAY_ADMIN_TOKEN=ADMIN_TOKEN,
        GATEWAY_ADMIN_PORT=str(free_port()),
    )
    port = free_port()
    argv = ["serve", "--port", str(port), "--workers", str(WORKERS)]
    process = GatewayProcess(argv, env, tmp_path, port)
    process.admin_port = int(env["GATEWAY_ADMIN_PORT"])  # type: ignore[attr-defined]
    try:
        yield process
    finally:
        process.kill()


def _scrape(admin_port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{admin_port}/metrics",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - http on loopback
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> float:
    """A metric summed over its series of the tenant (readiness probes are counted too)."""
    return sum(
        value
        for (sample, labels), value in samples.items()
        if sample == name and ("account", ACCOUNT) in labels
    )


def test_metrics_sum_every_workers_requests(
    cli: Cli, workers_gateway: GatewayProcess, tmp_path: Path
) -> None:
    hostname, key = _echo_tenant(cli)
    gateway = workers_gateway
    gateway.wait_ready()
    admin_port: int = gateway.admin_port  # type: ignore[attr-defined]
    for _ in range(REQUESTS):  # a new connection each time: the kernel spreads them
        assert _post(gateway.port, hostname, key) == 200

    served = {
        event.get("worker")
        for event in gateway.events()
        if event["event"] == "request_handled" and event.get("status") == 200
    }
    assert served == set(range(WORKERS)), served  # so no one worker's figures can reach M

    deadline = time.monotonic() + 15.0
    while True:  # each worker's journal task observes its records within ~50 ms
        samples = _scrape(admin_port)
        if _total(samples, "gateway_requests_total") >= REQUESTS or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    labels = (("account", ACCOUNT), ("client", "bot"), ("status", "200"))
    assert samples[("gateway_requests_total", labels)] == REQUESTS
    assert _total(samples, "gateway_request_latency_seconds_count") == REQUESTS
    by_model = [
        (dict(labels), value)
        for (name, labels), value in samples.items()
        if name == "gateway_model_latency_seconds_count"
    ]
    assert sum(value for _labels, value in by_model) == REQUESTS
    assert {labels["provider"] for labels, _value in by_model} == {"echo"}
    prompt = (("account", ACCOUNT), ("client", "bot"), ("kind", "prompt"))
    assert samples[("gateway_tokens_total", prompt)] > 0
    assert ("gateway_otel_spans_dropped_total", ()) in samples

    metric_dirs = list((tmp_path / "var" / "metrics").iterdir())
    assert len(metric_dirs) == 1
    assert gateway.terminate() == 0
    assert not metric_dirs[0].exists()  # the workers' files go with them
