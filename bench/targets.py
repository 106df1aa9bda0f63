"""The servers under test, how each is addressed in a scenario, and a one-request check of each.

`direct` and `bare` reach nginx's SSE reply by path (`/sse/v1/...`); the gateway targets reach it
through the SSE tenant's Host, as a real client would. The check runs before any load, so that a
target answering 401 or 502 is reported as such instead of being timed.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from bench.gateway import ACCOUNT, API_DOMAIN, Tenants
from bench.load import LoadSpec
from bench.procs import Server, free_port, start_server, tcp_open, wait_until
from bench.scenarios import Scenario

DIRECT_HOST = f"bench.{ACCOUNT}.{API_DOMAIN}"
DIRECT_AUTHORIZATION = "Bearer bench-direct"
CHAT_PATH = "/v1/chat/completions"


@dataclass(frozen=True, slots=True)
class TargetSpec:
    name: str
    kind: Literal["direct", "bare", "gateway"]
    description: str
    workers: int = 1
    journal: bool = True
    limits: bool = False
    #: Traces exported over OTLP/HTTP to `bench/otlp_sink.py` (the same requests otherwise).
    tracing: bool = False
    #: Run from the checkout named by `BENCH_BASELINE` (its own `.venv`): an A/B in one run.
    baseline: bool = False


TARGETS = (
    TargetSpec("direct", "direct", "nginx upstream, no proxy"),
    TargetSpec("bare", "bare", "bench/bare_proxy.py, the aiohttp floor"),
    TargetSpec("bare-w2", "bare", "bench/bare_proxy.py, 2 processes on one port", workers=2),
    TargetSpec("gateway", "gateway", "gateway, 1 worker, journal on"),
    TargetSpec("gateway-w2", "gateway", "gateway --workers 2, journal on", workers=2),
    TargetSpec(
        "gateway-nojournal",
        "gateway",
        "gateway, 1 worker, GATEWAY_JOURNAL_ENABLED=false",
        journal=False,
    ),
    TargetSpec(
        "gateway-limits",
        "gateway",
        "gateway, 1 worker, journal on, a tenant with every rate limit and budget set",
        limits=True,
    ),
    TargetSpec(
        "gateway-tracing",
        "gateway",
        "gateway, 1 worker, journal on, OpenTelemetry traces to an OTLP/HTTP sink",
        tracing=True,
    ),
    TargetSpec(
        "gateway-baseline",
        "gateway",
        "gateway of the BENCH_BASELINE checkout, 1 worker, journal on (A/B against `gateway`)",
        baseline=True,
    ),
)
TARGETS_BY_NAME = {target.name: target for target in TARGETS}


@dataclass(slots=True)
class RunningTarget:
    spec: TargetSpec
    server: Server
    port: int
    tenants: Tenants | None = None

    def load_spec(self, scenario: Scenario, bodies: dict[str, Path]) -> LoadSpec:
        base = f"http://127.0.0.1:{self.port}"
        if self.tenants is None:
            path = ("/sse" if scenario.stream else "") + CHAT_PATH
            host, authorization = DIRECT_HOST, DIRECT_AUTHORIZATION
        else:
            if self.spec.limits:
                tenant = self.tenants.limited_sse if scenario.stream else self.tenants.limited_chat
            else:
                tenant = self.tenants.sse if scenario.stream else self.tenants.chat
            path, host, authorization = CHAT_PATH, tenant.host, f"Bearer {tenant.key}"
        return LoadSpec(
            url=base + path,
            host=host,
            authorization=authorization,
            body_path=bodies[scenario.body],
            connections=scenario.connections,
        )


def start_bare_proxy(upstream_port: int, log_dir: Path, name: str = "bare") -> RunningTarget:
    spec = TARGETS_BY_NAME[name]
    port = free_port()
    argv = [sys.executable, "-m", "bench.bare_proxy", "--port", str(port)]
    argv += ["--upstream-url", f"http://127.0.0.1:{upstream_port}"]
    argv += ["--processes", str(spec.workers)]
    server = start_server(name, argv, log_dir)
    wait_until(lambda: tcp_open(port), server, timeout_s=30, what="listening")
    return RunningTarget(spec=spec, server=server, port=port)


def check_once(spec: LoadSpec, stream: bool) -> str | None:
    """POST the scenario's request once; None if the reply is right, else what was wrong."""
    request = urllib.request.Request(  # noqa: S310 (loopback URL built by the bench)
        spec.url,
        data=spec.body_path.read_bytes(),
        method="POST",
        headers={
            "Host": spec.host,
            "Authorization": spec.authorization,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, body = int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        return f"POST {spec.url} failed: {exc}"
    text = body.decode(errors="replace")
    if status != 200:
        return f"POST {spec.url} (Host {spec.host}) answered {status}: {text[:500]}"
    if stream:
        return None if "data: [DONE]" in text else f"SSE reply without [DONE]: {text[:300]}"
    try:
        reply = json.loads(text)
    except ValueError:
        return f"reply is not JSON: {text[:300]}"
    if not (isinstance(reply, dict) and reply.get("choices")):
        return f"reply has no choices: {text[:300]}"
    return None
