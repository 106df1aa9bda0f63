"""The invalidation listener while Redis is away: it backs off, logs at most once per interval
with a count of the failed attempts, and resubscribes (clearing the caches) once Redis is back.

A real Redis is started on a port where nothing listened before, so the outage is real too.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from structlog.testing import capture_logs

from gateway.cache import InvalidationListener
from gateway.redis_server import EmbeddedRedis
from gateway.store import keys
from gateway.store.redis import create_redis
from tests.conftest import TEST_SECRET, free_port
from tests.support.helpers import wait_for
from tests.test_server import GatewayProcess

LOG_INTERVAL = 0.4
OUTAGE_WINDOW = 3.5  # seconds


async def test_an_outage_is_logged_once_per_interval_with_counts(tmp_path: Path) -> None:
    port = free_port()
    redis = create_redis(f"redis://127.0.0.1:{port}/0")
    messages: list[str] = []
    listener = InvalidationListener(
        redis, messages.append, retry_delay=0.01, max_delay=0.05, log_interval=LOG_INTERVAL
    )
    server = EmbeddedRedis(tmp_path / "redis", port=port, persistent=False)
    with capture_logs() as logs:
        task = asyncio.create_task(listener.run())
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()

            async def many_failures() -> bool:
                return listener.failures >= 25

            await wait_for(many_failures, timeout=10.0, what="25 failed attempts")
            elapsed = loop.time() - started
            lost = [e for e in logs if e["event"] == "invalidation_listener_lost"]
            # Every attempt is counted in some line, but lines come at most once per interval.
            assert 1 <= len(lost) <= int(elapsed / LOG_INTERVAL) + 2, (len(lost), elapsed)
            assert lost[0]["failures"] == 1  # the first failure is logged at once
            assert sum(e["failures"] for e in lost) <= listener.failures
            assert all(e["log_level"] == "warning" for e in lost)
            # Backed off: 25 attempts at the 0.01 s floor would take 0.25 s; doubling to the
            # 0.05 s ceiling takes longer.
            assert elapsed >= 0.01 + 0.02 + 0.04 + 0.05 * 20
            assert not listener.subscribed.is_set()

            await asyncio.to_thread(server.start)
            await asyncio.wait_for(listener.subscribed.wait(), 10.0)
            restored = [e for e in logs if e["event"] == "invalidation_listener_restored"]
            assert len(restored) == 1
            assert restored[0]["failures"] >= 25
            assert listener.failures == 0
            assert messages[-1] == "*"  # a resubscription drops every cached entry

            async def delivered() -> bool:
                await redis.publish(keys.INVALIDATION_CHANNEL, "client:x")
                return "client:x" in messages

            await wait_for(delivered, timeout=5.0, what="a message after the outage")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await redis.aclose()
            await asyncio.to_thread(server.stop)


def test_serve_against_a_down_redis_logs_the_loss_once(tmp_path: Path) -> None:
    """The real `gateway serve` with its default back-off and interval: over a few seconds of
    outage, one `invalidation_listener_lost` line, where it used to log one every half second."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        GATEWAY_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        GATEWAY_SECRET=TEST_SECRET,
        GATEWAY_VAR_DIR=str(tmp_path / "var"),
    )
    port = free_port()
    gateway = GatewayProcess(["serve", "--port", str(port)], env, tmp_path, port)
    try:
        # Listening despite the outage (/readyz says 503 while Redis is away, by design).
        gateway.wait_for(
            lambda: any(e["event"] == "gateway_listening" for e in gateway.events()),
            "gateway_listening",
            30.0,
        )
        started = time.monotonic()

        def lost() -> list[dict[str, object]]:
            return [e for e in gateway.events() if e["event"] == "invalidation_listener_lost"]

        # Watch for a window in which the old code logged 7 lines (one every 0.5 s).
        gateway.wait_for(lambda: time.monotonic() - started > OUTAGE_WINDOW, "the window")
        assert len(lost()) == 1, lost()
        assert lost()[0]["failures"] == 1
        assert gateway.terminate() == 0
    finally:
        gateway.kill()
