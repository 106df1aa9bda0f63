"""Command-line options of `python -m bench.run`, each with a BENCH_* environment default.

The environment form exists for `make bench`, which takes no arguments:
`BENCH_MEMORY_REQUESTS=200000 make bench` runs the long memory check.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.scenarios import SCENARIOS, SCENARIOS_BY_NAME
from bench.targets import TARGETS, TARGETS_BY_NAME

RESULTS_DIR = Path(__file__).resolve().parent / "results"
QUICK_MEMORY_REQUESTS = 2000


@dataclass(frozen=True, slots=True)
class BenchOptions:
    duration_s: int
    rounds: int
    warmup_s: int
    timeout_s: int
    targets: tuple[str, ...]
    scenarios: tuple[str, ...]
    memory_requests: int
    memory_max_s: int
    memory_scenario: str
    wait_quiet_s: int
    output: Path
    update_readme: bool
    keep_workdir: bool
    quick: bool
    command: str


def _env_int(name: str) -> int | None:
    value = os.environ.get(name)
    return int(value) if value else None


def _names(text: str, known: dict[str, object], what: str) -> tuple[str, ...]:
    names = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise SystemExit(
            f"unknown {what}: {', '.join(unknown) or text!r}; known: {', '.join(known)}"
        )
    return tuple(name for name in known if name in names)  # keep the canonical order


def create_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description="Benchmark the gateway against a direct upstream and a bare aiohttp proxy.",
    )
    parser.add_argument("--duration", type=int, help="seconds per wrk run (BENCH_DURATION, 5)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (BENCH_ROUNDS, 3)")
    parser.add_argument("--warmup", type=int, help="warm-up seconds per run (BENCH_WARMUP, 1)")
    parser.add_argument("--timeout", type=int, help="wrk --timeout seconds (BENCH_TIMEOUT, 10)")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 1 round of 2 s, short memory check"
    )
    parser.add_argument(
        "--targets", help=f"comma list (BENCH_TARGETS); all: {','.join(t.name for t in TARGETS)}"
    )
    parser.add_argument(
        "--scenarios",
        help=f"comma list (BENCH_SCENARIOS); all: {','.join(s.name for s in SCENARIOS)}",
    )
    parser.add_argument(
        "--memory-requests",
        type=int,
        help="requests for the memory-growth check, 0 to skip (BENCH_MEMORY_REQUESTS, 20000)",
    )
    parser.add_argument(
        "--memory-max-seconds",
        type=int,
        help="time bound of the memory check (BENCH_MEMORY_MAX_SECONDS, 900)",
    )
    parser.add_argument(
        "--memory-scenario",
        choices=list(SCENARIOS_BY_NAME),
        help="load of the memory check (BENCH_MEMORY_SCENARIO, small-c32)",
    )
    parser.add_argument(
        "--wait-quiet",
        type=int,
        help="wait up to this many seconds for other processes to leave the CPU idle before"
        " starting (BENCH_WAIT_QUIET, 0)",
    )
    parser.add_argument("--output", type=Path, help="results file (default results/latest.json)")
    parser.add_argument(
        "--no-readme", action="store_true", help="do not rewrite the table in bench/README.md"
    )
    parser.add_argument(
        "--keep-workdir", action="store_true", help="keep the temp dir with configs and logs"
    )
    return parser


def parse_options(argv: Sequence[str] | None = None) -> BenchOptions:
    args = create_parser().parse_args(argv)
    quick: bool = args.quick

    def pick(arg: int | None, env: str, default: int, quick_value: int | None = None) -> int:
        for value in (arg, _env_int(env)):
            if value is not None:
                return value
        return quick_value if quick and quick_value is not None else default

    rounds = pick(args.rounds, "BENCH_ROUNDS", 3, 1)
    duration = pick(args.duration, "BENCH_DURATION", 5, 2)
    if rounds < 1 or duration < 1:
        raise SystemExit("--rounds and --duration must be at least 1")
    # gateway-baseline is measured by default only when there is a baseline checkout to run.
    default_targets = [
        name
        for name, spec in TARGETS_BY_NAME.items()
        if not spec.baseline or os.environ.get("BENCH_BASELINE")
    ]
    targets = args.targets or os.environ.get("BENCH_TARGETS") or ",".join(default_targets)
    scenarios = args.scenarios or os.environ.get("BENCH_SCENARIOS") or ",".join(SCENARIOS_BY_NAME)
    output = args.output or RESULTS_DIR / ("quick.json" if quick else "latest.json")
    return BenchOptions(
        duration_s=duration,
        rounds=rounds,
        warmup_s=pick(args.warmup, "BENCH_WARMUP", 1),
        timeout_s=pick(args.timeout, "BENCH_TIMEOUT", 10),
        targets=_names(targets, dict(TARGETS_BY_NAME), "target"),
        scenarios=_names(scenarios, dict(SCENARIOS_BY_NAME), "scenario"),
        memory_requests=pick(
            args.memory_requests, "BENCH_MEMORY_REQUESTS", 20000, QUICK_MEMORY_REQUESTS
        ),
        memory_max_s=pick(args.memory_max_seconds, "BENCH_MEMORY_MAX_SECONDS", 900),
        memory_scenario=_names(
            args.memory_scenario or os.environ.get("BENCH_MEMORY_SCENARIO") or "small-c32",
            dict(SCENARIOS_BY_NAME),
            "memory scenario",
        )[0],
        wait_quiet_s=pick(args.wait_quiet, "BENCH_WAIT_QUIET", 0),
        output=output,
        update_readme=not (args.no_readme or quick),
        keep_workdir=args.keep_workdir,
        quick=quick,
        command=_command_line(argv),
    )


def _command_line(argv: Sequence[str] | None) -> str:
    words = list(sys.argv[1:] if argv is None else argv)
    env = [f"{k}={shlex.quote(v)}" for k, v in sorted(os.environ.items()) if k.startswith("BENCH_")]
    return " ".join([*env, "python -m bench.run", *map(shlex.quote, words)])
