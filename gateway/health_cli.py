"""`gateway clients health NAME`: each deployment of a client as every gateway process sees it.

Outlier ejection lives in each process's memory; processes write their view to Redis when a
deployment is ejected or comes back (`gateway.store.health`), and this command reads those
views. A deployment no process has reported on is in service everywhere.
"""

from __future__ import annotations

import time
from typing import Any

from redis.asyncio import Redis

from gateway.store.health import HealthBoard
from gateway.store.repositories import ClientRepository
from gateway.upstream.deployments import deployments_of


def health_report(
    strategy: str, urls: list[tuple[str, float]], views: dict[str, dict[str, Any]], now: float
) -> dict[str, Any]:
    """The report for deployments `urls` (url, weight) from every process's view."""
    deployments = []
    for url, weight in urls:
        seen: dict[str, Any] = {}
        for instance, view in views.items():
            for item in view.get("deployments", ()):
                if item.get("url") != url:
                    continue
                until = item.get("ejected_until")
                left = max(0.0, until - now) if isinstance(until, int | float) else 0.0
                seen[instance] = {
                    "ejected": left > 0,
                    "ejected_for": round(left, 1),
                    "ejections": item.get("ejections", 0),
                    "reported_at": view.get("at"),
                }
        deployments.append(
            {
                "url": url,
                "weight": weight,
                "ejected_anywhere": any(v["ejected"] for v in seen.values()),
                "instances": seen,
            }
        )
    return {"strategy": strategy, "deployments": deployments, "instances": sorted(views)}


def health_text(name: str, report: dict[str, Any]) -> str:
    lines = [
        f"{name}: strategy {report['strategy']}, {len(report['deployments'])} deployment(s), "
        f"{len(report['instances'])} gateway process(es) reported"
    ]
    for item in report["deployments"]:
        ejected = [
            f"ejected on {instance} for {view['ejected_for']:g} s more "
            f"({view['ejections']} ejection(s))"
            for instance, view in item["instances"].items()
            if view["ejected"]
        ]
        state = "; ".join(ejected) if ejected else "in service"
        lines.append(f"  {item['url']}  weight {item['weight']:g}  {state}")
    return "\n".join(lines)


async def client_health(redis: Redis, account: str, name: str) -> tuple[dict[str, Any], str]:
    """The health of client `name` as JSON-ready data and as text."""
    record = await ClientRepository(redis).require(account, name)
    views = await HealthBoard(redis).read((record.account, record.name))
    if record.policy.deployments:
        urls = [(d.public_url(), d.weight) for d in record.policy.deployments]
        strategy = record.policy.strategy
    else:
        urls = (
            [(d.public_url(), 1.0) for d in deployments_of(record)] if record.upstream_url else []
        )
        strategy = "fallbacks (no ejection)"
    report = health_report(strategy, urls, views, time.time())
    data = {"client": record.name, "account": record.account, **report}
    return data, health_text(record.name, report)
