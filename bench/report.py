"""From runs to figures: medians per target and scenario, ratios, and the tables that show them.

Every figure is a median over rounds taken in the same run, and every ratio compares targets from
that same run, so a slower or busier machine moves numerator and denominator together.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.goals import goal_rows

README_START = "<!-- results:start -->"
README_END = "<!-- results:end -->"
DISTURBED_PCT = 25.0  # median CPU of other processes (% of one core) that makes a run suspect


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One wrk run of one target under one scenario in one round."""

    round: int
    target: str
    scenario: str
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    max_ms: float
    errors: dict[str, int]
    cpu_ms_per_req: float
    redis_cpu_ms_per_req: float | None
    wrk_cpu_s: float
    wrk_cpu_pct: float
    other_cpu_pct: float
    rss_mb: float


@dataclass(frozen=True, slots=True)
class SummaryRow:
    target: str
    scenario: str
    rounds: int
    rps: float
    p50_ms: float
    p99_ms: float
    added_p50_ms: float | None
    cpu_ms_per_req: float
    redis_cpu_ms_per_req: float | None
    wrk_cpu_pct: float
    other_cpu_pct: float
    errors: int


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def summarize(runs: Sequence[RunRecord]) -> list[SummaryRow]:
    """Medians over rounds per (target, scenario), in the order the runs first appear."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault((run.target, run.scenario), []).append(run)
    direct_p50 = {
        scenario: _median(run.p50_ms for run in group)
        for (target, scenario), group in groups.items()
        if target == "direct"
    }
    rows = []
    for (target, scenario), group in groups.items():
        p50 = _median(run.p50_ms for run in group)
        redis = [run.redis_cpu_ms_per_req for run in group if run.redis_cpu_ms_per_req is not None]
        rows.append(
            SummaryRow(
                target=target,
                scenario=scenario,
                rounds=len(group),
                rps=_median(run.rps for run in group),
                p50_ms=p50,
                p99_ms=_median(run.p99_ms for run in group),
                added_p50_ms=p50 - direct_p50[scenario] if scenario in direct_p50 else None,
                cpu_ms_per_req=_median(run.cpu_ms_per_req for run in group),
                redis_cpu_ms_per_req=_median(redis) if redis else None,
                wrk_cpu_pct=_median(run.wrk_cpu_pct for run in group),
                other_cpu_pct=_median(run.other_cpu_pct for run in group),
                errors=sum(sum(run.errors.values()) for run in group),
            )
        )
    return rows


def ratios(rows: Sequence[SummaryRow]) -> list[dict[str, Any]]:
    """Per scenario: gateway against bare, 2 workers against 1, journal off against on."""
    by_key = {(row.target, row.scenario): row for row in rows}
    scenarios = list(dict.fromkeys(row.scenario for row in rows))

    def ratio(a: str, b: str, scenario: str, field: Callable[[SummaryRow], float]) -> float | None:
        top, bottom = by_key.get((a, scenario)), by_key.get((b, scenario))
        if top is None or bottom is None or field(bottom) == 0:
            return None
        return field(top) / field(bottom)

    def rps(row: SummaryRow) -> float:
        return row.rps

    def cpu(row: SummaryRow) -> float:
        return row.cpu_ms_per_req

    result = []
    for scenario in scenarios:
        gateway, bare = by_key.get(("gateway", scenario)), by_key.get(("bare", scenario))
        result.append(
            {
                "scenario": scenario,
                "gateway_vs_bare_rps": ratio("gateway", "bare", scenario, rps),
                "gateway_w2_vs_w1_rps": ratio("gateway-w2", "gateway", scenario, rps),
                "bare_w2_vs_w1_rps": ratio("bare-w2", "bare", scenario, rps),
                "workers_scaling_vs_bare": _over(
                    ratio("gateway-w2", "gateway", scenario, rps),
                    ratio("bare-w2", "bare", scenario, rps),
                ),
                "journal_off_vs_on_rps": ratio("gateway-nojournal", "gateway", scenario, rps),
                "limits_on_vs_off_rps": ratio("gateway-limits", "gateway", scenario, rps),
                "tracing_on_vs_off_rps": ratio("gateway-tracing", "gateway", scenario, rps),
                "tracing_on_vs_off_cpu_per_req": ratio("gateway-tracing", "gateway", scenario, cpu),
                "gateway_vs_bare_cpu_per_req": ratio("gateway", "bare", scenario, cpu),
                "gateway_vs_baseline_rps": ratio("gateway", "gateway-baseline", scenario, rps),
                "gateway_vs_baseline_cpu_per_req": ratio(
                    "gateway", "gateway-baseline", scenario, cpu
                ),
                "gateway_minus_bare_p50_ms": (
                    gateway.p50_ms - bare.p50_ms if gateway and bare else None
                ),
            }
        )
    return result


def _over(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or not bottom else top / bottom


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "target", "req/s", "p50 ms", "p99 ms", "+p50 vs direct ms"]
    header += ["CPU ms/req", "Redis CPU ms/req", "wrk CPU %", "other CPU %", "errors"]
    rows = [
        [
            row["scenario"],
            row["target"],
            f"{row['rps']:.0f}",
            _num(row["p50_ms"]),
            _num(row["p99_ms"]),
            _num(row["added_p50_ms"]),
            _num(row["cpu_ms_per_req"], 3),
            _num(row["redis_cpu_ms_per_req"], 3),
            f"{row['wrk_cpu_pct']:.0f}",
            f"{row['other_cpu_pct']:.0f}",
            str(row["errors"]),
        ]
        for row in sorted(results["summary"], key=lambda r: _scenario_order(results, r))
    ]
    return header, rows


def _scenario_order(results: dict[str, Any], row: dict[str, Any]) -> tuple[int, int]:
    scenarios, targets = list(results["scenarios"]), list(results["targets"])
    return scenarios.index(row["scenario"]), targets.index(row["target"])


def _ratio_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["scenario", "gateway/bare req/s", "w2/w1 req/s", "bare w2/w1 req/s"]
    header += ["w2/w1 over bare's", "journal off/on req/s"]
    header += ["limits on/off req/s", "tracing on/off req/s", "tracing on/off CPU per req"]
    header += ["gateway/bare CPU per req", "gateway-bare p50 ms"]
    header += ["gateway/baseline req/s", "gateway/baseline CPU per req"]
    rows = [
        [
            item["scenario"],
            _num(item["gateway_vs_bare_rps"]),
            _num(item["gateway_w2_vs_w1_rps"]),
            _num(item.get("bare_w2_vs_w1_rps")),
            _num(item.get("workers_scaling_vs_bare")),
            _num(item["journal_off_vs_on_rps"]),
            _num(item.get("limits_on_vs_off_rps")),
            _num(item.get("tracing_on_vs_off_rps")),
            _num(item.get("tracing_on_vs_off_cpu_per_req")),
            _num(item["gateway_vs_bare_cpu_per_req"]),
            _num(item["gateway_minus_bare_p50_ms"]),
            _num(item.get("gateway_vs_baseline_rps")),
            _num(item.get("gateway_vs_baseline_cpu_per_req")),
        ]
        for item in results["ratios"]
    ]
    return header, rows


def _target_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["target", "what", "status", "peak RSS MB (sum of VmHWM)", "processes"]
    rows = [
        [
            name,
            info["description"],
            info["status"] if not info.get("reason") else f"{info['status']}: {info['reason']}",
            _num(info.get("peak_rss_mb"), 1),
            str(info.get("processes", "-")),
        ]
        for name, info in results["targets"].items()
    ]
    return header, rows


def _plain(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(header, widths, strict=True))]
    lines.append("  ".join("-" * width for width in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "/") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _memory_line(results: dict[str, Any]) -> str:
    memory = results.get("memory")
    if not memory:
        return "Memory check: not run."
    if "error" in memory:
        return f"Memory check: failed: {memory['error']}"
    reached = "" if memory["reached"] else f" (stopped early: asked for {memory['requested']})"
    return (
        f"Memory check ({memory['target']}, {memory['scenario']}):"
        f" RSS {memory['rss_after_warmup_mb']} MB after warm-up,"
        f" {memory['rss_after_mb']} MB after {memory['answered']} more requests"
        f"{reached}: growth {memory['growth_mb']} MB, peak {memory.get('peak_rss_mb', '-')} MB,"
        f" {memory.get('rss_settled_mb', '-')} MB once the journal had drained;"
        f" Redis used_memory grew"
        f" {memory['redis_growth_mb']} MB; errors {memory['errors']}."
    )


def _wrk_line(results: dict[str, Any]) -> str:
    wrk = results["wrk_cpu"]
    line = (
        f"wrk CPU: {wrk['total_s']:.1f} s over {wrk['runs']} measured runs; per run median"
        f" {wrk['median_pct']:.0f} % of one core, max {wrk['max_pct']:.0f} %."
        f" Other processes on the machine: {results['machine']['background_cpu_pct_before']:.0f} %"
        f" of a core before the start, {results['other_cpu_median_pct']:.0f} % (median) during"
        " the runs."
    )
    if results["other_cpu_median_pct"] > DISTURBED_PCT:
        line += (
            " WARNING: other work shared the 2 cores during the measurement; absolute figures"
            " are depressed and noisy, compare ratios only, and rerun on a quiet machine."
        )
    return line


def _server_lines(results: dict[str, Any]) -> list[str]:
    """What went wrong around the measurements: slow stops, SIGKILLs, warnings in gateway logs."""
    lines = []
    for name, info in results.get("servers", {}).items():
        notes = []
        if info["killed"]:
            notes.append(f"did not exit within {info['seconds']} s of SIGTERM, SIGKILLed")
        elif info["exit_code"] not in (0, None, -15):
            notes.append(f"exited with {info['exit_code']} after SIGTERM")
        events = info.get("log_events") or {}
        if events:
            notes.append("log: " + ", ".join(f"{k} x{v}" for k, v in sorted(events.items())))
        if notes:
            lines.append(f"Server {name}: " + "; ".join(notes) + ".")
    return lines


def render_text(results: dict[str, Any]) -> str:
    parts = [_plain(*_table_rows(results)), "", _plain(*_ratio_rows(results)), ""]
    parts += [_plain(*_target_rows(results)), "", _plain(*goal_rows(results)), ""]
    parts += [_memory_line(results), _wrk_line(results)]
    return "\n".join(parts + _server_lines(results))


def render_markdown(results: dict[str, Any]) -> str:
    machine, options = results["machine"], results["options"]
    commit = machine["git"]
    heading = (
        f"Run of {results['generated_at']} on {machine['cpu_model']} ({machine['nproc']} cores),"
        f" Python {machine['python']}, {machine['nginx']}, {machine['wrk']}; commit"
        f" `{str(commit['commit'])[:12]}`{' (dirty)' if commit['dirty'] else ''};"
        f" {options['rounds']} rounds x {options['duration_s']} s per target and scenario,"
        f" medians. Command: `{options['command']}`."
    )
    parts = [heading, "", _markdown(*_table_rows(results)), "", _markdown(*_ratio_rows(results))]
    parts += ["", _markdown(*_target_rows(results)), "", _markdown(*goal_rows(results))]
    parts += ["", _memory_line(results)]
    parts += ["", _wrk_line(results)]
    parts += [f"\n{line}" for line in _server_lines(results)]
    return "\n".join(parts)


def update_readme(readme: Path, markdown: str) -> None:
    """Replace what lies between the result markers (append the markers if they are missing)."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{README_START}\n{markdown}\n{README_END}"
    if README_START in text and README_END in text:
        head, _, rest = text.partition(README_START)
        _, _, tail = rest.partition(README_END)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    readme.write_text(text)


def to_jsonable(rows: Iterable[RunRecord | SummaryRow]) -> list[dict[str, Any]]:
    return [asdict(row) for row in rows]


def write_json(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    tmp.replace(path)
