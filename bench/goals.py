"""The performance targets of issue 15, each with what this run measured and whether it is met.

Every figure comes from the run's own medians (`results["summary"]`, `results["ratios"]`), so a
target is judged against the bare proxy measured in the same run. A target whose targets or
scenarios were not part of the run says `not measured`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: (what, scenario, figure of the run, is it met, how the figure is shown)
Goal = tuple[str, str, Callable[[dict[str, Any], str], float | None], Callable[[float], bool], str]


def _summary(results: dict[str, Any], target: str, scenario: str) -> dict[str, Any] | None:
    for row in results["summary"]:
        if row["target"] == target and row["scenario"] == scenario:
            return dict(row)
    return None


def _ratio(name: str, invert: bool = False) -> Callable[[dict[str, Any], str], float | None]:
    def figure(results: dict[str, Any], scenario: str) -> float | None:
        for item in results["ratios"]:
            if item["scenario"] == scenario and item.get(name) is not None:
                value = float(item[name])
                return 1.0 / value if invert and value else value
        return None

    return figure


def _added_cpu(results: dict[str, Any], scenario: str) -> float | None:
    gateway, bare = _summary(results, "gateway", scenario), _summary(results, "bare", scenario)
    if gateway is None or bare is None:
        return None
    return float(gateway["cpu_ms_per_req"]) - float(bare["cpu_ms_per_req"])


def _memory_growth(results: dict[str, Any], _scenario: str) -> float | None:
    memory = results.get("memory") or {}
    return float(memory["growth_mb"]) if "growth_mb" in memory else None


GOALS: tuple[Goal, ...] = (
    (
        "CPU per request over bare's <= +0.09 ms",
        "small-c32",
        _added_cpu,
        lambda v: v <= 0.09,
        "+{:.3f} ms",
    ),
    (
        "small body, 32 connections >= 0.65x bare",
        "small-c32",
        _ratio("gateway_vs_bare_rps"),
        lambda v: v >= 0.65,
        "{:.2f}x",
    ),
    (
        "stream, 32 connections >= 0.6x bare",
        "sse-c32",
        _ratio("gateway_vs_bare_rps"),
        lambda v: v >= 0.6,
        "{:.2f}x",
    ),
    (
        "added p50 at 1 connection within 0.15 ms of bare's",
        "small-c1",
        _ratio("gateway_minus_bare_p50_ms"),
        lambda v: v <= 0.15,
        "+{:.2f} ms",
    ),
    (
        "limits on against off >= 0.85x (small)",
        "small-c32",
        _ratio("limits_on_vs_off_rps"),
        lambda v: v >= 0.85,
        "{:.2f}x",
    ),
    (
        "limits on against off >= 0.85x (stream)",
        "sse-c32",
        _ratio("limits_on_vs_off_rps"),
        lambda v: v >= 0.85,
        "{:.2f}x",
    ),
    (
        "journal on against off >= 0.9x (small)",
        "small-c32",
        _ratio("journal_off_vs_on_rps", invert=True),
        lambda v: v >= 0.9,
        "{:.2f}x",
    ),
    (
        "journal on against off >= 0.9x (stream)",
        "sse-c32",
        _ratio("journal_off_vs_on_rps", invert=True),
        lambda v: v >= 0.9,
        "{:.2f}x",
    ),
    (
        "--workers 2 w2/w1 >= 0.95 of bare's w2/w1",
        "small-c32",
        _ratio("workers_scaling_vs_bare"),
        lambda v: v >= 0.95,
        "{:.2f}",
    ),
    ("memory growth < 20 MB", "-", _memory_growth, lambda v: v < 20.0, "{:.1f} MB"),
)


def goal_rows(results: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["target (issue 15)", "scenario", "measured", "status"]
    rows = []
    for what, scenario, figure, met, shown in GOALS:
        value = figure(results, scenario)
        if value is None:
            rows.append([what, scenario, "-", "not measured"])
        else:
            rows.append([what, scenario, shown.format(value), "met" if met(value) else "not met"])
    return header, rows
