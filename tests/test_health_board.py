"""The health board (`gateway.store.health`) against the suite's real Redis."""

from __future__ import annotations

import time

from redis.asyncio import Redis

from gateway.health_cli import health_report, health_text
from gateway.routing import DeploymentHealth
from gateway.store import keys
from gateway.store.health import HEALTH_TTL, HealthBoard, health_entry
from tests.conftest import ACCOUNT

CLIENT = (ACCOUNT, "health-board")


def _health(url: str, ejected_for: float) -> DeploymentHealth:
    return DeploymentHealth(
        url=url,
        ejected=ejected_for > 0,
        ejected_for=ejected_for,
        failures=0,
        ejections=1 if ejected_for else 0,
        in_flight=0,
    )


def test_an_entry_carries_wall_clock_ejection_ends() -> None:
    entry = health_entry([_health("http://a", 30.0), _health("http://b", 0.0)], now=1000.0)
    assert entry["at"] == 1000.0
    assert [d["ejected_until"] for d in entry["deployments"]] == [1030.0, None]


async def test_each_instance_publishes_its_own_view_and_the_key_expires(redis: Redis) -> None:
    await redis.delete(keys.client_health(*CLIENT))
    one, two = HealthBoard(redis, "host:1"), HealthBoard(redis, "host:2")
    await one.publish(CLIENT, [_health("http://a", 30.0)])
    await two.publish(CLIENT, [_health("http://a", 0.0)])
    await one.publish(CLIENT, [_health("http://a", 10.0)])  # a later view replaces the first
    views = await one.read(CLIENT)
    assert sorted(views) == ["host:1", "host:2"]
    until = views["host:1"]["deployments"][0]["ejected_until"]
    assert time.time() + 9 < until <= time.time() + 10.01  # published rounded to 1 ms
    assert views["host:2"]["deployments"][0]["ejected_until"] is None
    assert 0 < await redis.ttl(keys.client_health(*CLIENT)) <= HEALTH_TTL
    assert await one.read((ACCOUNT, "never-routed")) == {}


def test_a_report_reads_every_view_and_an_ejection_that_ended_is_in_service() -> None:
    views = {
        "host:1": {
            "at": 990.0,
            "deployments": [{"url": "http://a", "ejected_until": 1012.0, "ejections": 2}],
        },
        "host:2": {
            "at": 900.0,
            "deployments": [{"url": "http://a", "ejected_until": 950.0, "ejections": 1}],
        },
    }
    report = health_report("weighted", [("http://a", 3.0), ("http://b", 1.0)], views, now=1000.0)
    a, b = report["deployments"]
    assert a["ejected_anywhere"] is True
    assert a["instances"]["host:1"] == {
        "ejected": True,
        "ejected_for": 12.0,
        "ejections": 2,
        "reported_at": 990.0,
    }
    assert a["instances"]["host:2"]["ejected"] is False
    assert (b["ejected_anywhere"], b["instances"]) == (False, {})
    text = health_text("acme", report)
    assert "acme: strategy weighted, 2 deployment(s), 2 gateway process(es) reported" in text
    assert "http://a  weight 3  ejected on host:1 for 12 s more (2 ejection(s))" in text
    assert "http://b  weight 1  in service" in text
