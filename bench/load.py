"""One bounded wrk run: its figures, as printed by `wrk/post.lua`, and the CPU wrk itself used.

wrk's CPU is read from the rusage that `wait4` returns for it: on a 2-core machine the load
generator competes with the servers it measures, and the report must say by how much.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

LUA_SCRIPT = Path(__file__).resolve().parent / "wrk" / "post.lua"
MARKER = "BENCH_JSON "
WRK_THREADS = 1


class LoadError(RuntimeError):
    """wrk failed or printed no figures."""


@dataclass(frozen=True, slots=True)
class LoadSpec:
    """Where to send what: one target under one scenario."""

    url: str
    host: str
    authorization: str
    body_path: Path
    connections: int


@dataclass(frozen=True, slots=True)
class LoadResult:
    requests: int
    duration_s: float
    bytes_read: int
    errors: dict[str, int]
    latency_us: dict[str, float]
    wrk_cpu_s: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def run_wrk(
    wrk: str,
    spec: LoadSpec,
    *,
    duration_s: int,
    timeout_s: int,
    log_dir: Path,
) -> LoadResult:
    """Run wrk once, bounded by `duration_s`; a hung wrk is killed well past it."""
    argv = [
        wrk,
        f"-t{WRK_THREADS}",
        f"-c{max(spec.connections, WRK_THREADS)}",
        f"-d{duration_s}s",
        "--timeout",
        f"{timeout_s}s",
        "-s",
        str(LUA_SCRIPT),
        spec.url,
        "--",
        str(spec.body_path),
        spec.host,
        spec.authorization,
    ]
    out_path, err_path = log_dir / "wrk.out", log_dir / "wrk.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    status, cpu_s = _wait_with_rusage(process, deadline_s=duration_s + timeout_s + 30)
    stdout, stderr = out_path.read_text(errors="replace"), err_path.read_text(errors="replace")
    figures = next(
        (line[len(MARKER) :] for line in stdout.splitlines() if line.startswith(MARKER)), None
    )
    if status != 0 or figures is None:
        raise LoadError(f"wrk exited with {status}: {' '.join(argv)}\n{stdout}\n{stderr}".strip())
    data = json.loads(figures)
    return LoadResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        bytes_read=int(data["bytes"]),
        errors={key: int(value) for key, value in data["errors"].items()},
        latency_us={key: float(value) for key, value in data["latency_us"].items()},
        wrk_cpu_s=cpu_s,
    )


def _wait_with_rusage(process: subprocess.Popen[bytes], deadline_s: float) -> tuple[int, float]:
    """Reap `process` with wait4, killing it past the deadline; return (exit code, CPU seconds)."""
    deadline = time.monotonic() + deadline_s
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            break
        if time.monotonic() > deadline:
            os.kill(process.pid, signal.SIGKILL)
            pid, status, usage = os.wait4(process.pid, 0)
            break
        time.sleep(0.05)
    process.returncode = os.waitstatus_to_exitcode(status)
    return process.returncode, usage.ru_utime + usage.ru_stime
