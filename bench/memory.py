"""Does the gateway's memory grow with the number of requests it has answered?

A fresh 1-worker gateway (journal on) is warmed up, then loaded in slices of a few seconds until
N requests have been answered, and its RSS (summed over its processes) is read after each slice.
A leak shows as RSS that keeps rising with the request count instead of levelling off. Slices are
bounded in time and the whole check in seconds, so it ends even if the gateway slows down.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from bench.gateway import redis_used_memory_mb
from bench.load import run_wrk
from bench.procs import tree_usage
from bench.scenarios import Scenario
from bench.targets import RunningTarget

CHECKPOINTS = 5
WARMUP_S = 3
SETTLE_TIMEOUT_S = 60.0


def wait_settled(pid: int, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    """Wait until the gateway's CPU holds still for 2 s (its journal queue drained), or give up."""
    deadline = time.monotonic() + timeout_s
    last, still_since = tree_usage(pid).cpu_ticks, time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = tree_usage(pid).cpu_ticks
        if now - last > 5:  # more than 50 ms of CPU in half a second: still working
            last, still_since = now, time.monotonic()
        elif time.monotonic() - still_since >= 2.0:
            return True
    return False


def run_memory_check(
    wrk: str,
    target: RunningTarget,
    scenario: Scenario,
    bodies: dict[str, Path],
    *,
    requests: int,
    max_seconds: float,
    timeout_s: int,
    log_dir: Path,
    redis_port: int,
) -> dict[str, object]:
    spec = target.load_spec(scenario, bodies)
    pid = target.server.pid
    warm = run_wrk(wrk, spec, duration_s=WARMUP_S, timeout_s=timeout_s, log_dir=log_dir)
    slice_s = int(min(30, max(2, math.ceil(requests / max(warm.rps, 1.0) / CHECKPOINTS))))

    def checkpoint(answered: int) -> dict[str, float]:
        usage = tree_usage(pid)
        return {
            "requests": answered,
            "rss_mb": round(usage.rss_kb / 1024, 1),
            "peak_rss_mb": round(usage.hwm_kb / 1024, 1),
            "redis_used_mb": round(redis_used_memory_mb(redis_port), 1),
        }

    points = [checkpoint(0)]
    answered = errors = 0
    started = time.monotonic()
    print(f"memory: warm-up {warm.requests} requests; then slices of {slice_s} s up to {requests}")
    while answered < requests and time.monotonic() - started < max_seconds:
        if target.server.process.poll() is not None:
            break
        result = run_wrk(wrk, spec, duration_s=slice_s, timeout_s=timeout_s, log_dir=log_dir)
        answered += result.requests
        errors += result.error_count
        points.append(checkpoint(answered))
        print(
            f"memory: {answered:>8} requests  RSS {points[-1]['rss_mb']:.1f} MB"
            f"  peak {points[-1]['peak_rss_mb']:.1f} MB  Redis {points[-1]['redis_used_mb']:.1f} MB"
        )
    alive = target.server.process.poll() is None
    settled = checkpoint(answered) if alive and wait_settled(pid) else None
    first, last = points[0], points[-1]
    return {
        "target": target.spec.name,
        "scenario": scenario.name,
        "requested": requests,
        "answered": answered,
        "reached": answered >= requests,
        "errors": errors,
        "warmup_requests": warm.requests,
        "seconds": round(time.monotonic() - started, 1),
        "alive_after": alive,
        "rss_after_warmup_mb": first["rss_mb"],
        "rss_after_mb": last["rss_mb"],
        "growth_mb": round(last["rss_mb"] - first["rss_mb"], 1),
        "peak_rss_mb": last["peak_rss_mb"],
        # After the load, once the gateway is idle (its journal queue has drained): memory it
        # still holds then is kept, not merely queued.
        "rss_settled_mb": settled["rss_mb"] if settled else None,
        "redis_growth_mb": round(last["redis_used_mb"] - first["redis_used_mb"], 1),
        "checkpoints": points,
        "log_tail": "" if alive else target.server.log_tail(),
    }
