"""`gateway serve` as a real process on loopback ports, for the fuzz and fault tests: they
speak to it over HTTP only (request ids from `x-request-id`, records read from Redis), so they
keep working whatever the request path looks like inside."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import TEST_SECRET, free_port
from tests.support.raw_http import exchange

ADMIN_TOKEN = "fuzz-admin-token-3f9c"  # the suite's secret scan looks for it (tests/secrets.py)


@dataclasses.dataclass
class GatewayProcess:
    process: subprocess.Popen[bytes]
    port: int
    admin_port: int
    log_path: Path

    def log_text(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signum)
        return self.process.wait(timeout=timeout)


def wait_for_port(port: int, process: subprocess.Popen[bytes], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while True:
        assert process.poll() is None, "the gateway exited"
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        assert time.monotonic() < deadline, "the gateway did not come up"
        time.sleep(0.05)


@contextlib.contextmanager
def gateway_process(redis_url: str, var_dir: Path, **settings: str) -> Iterator[GatewayProcess]:
    """A `gateway serve` with the suite's secret, an admin port, and its log in a file."""
    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_SECRET": TEST_SECRET,
        "GATEWAY_PORT": str(port),
        "GATEWAY_ADMIN_PORT": str(admin_port),
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_VAR_DIR": str(var_dir),
        "GATEWAY_ACCESS_LOG": "true",
        **{f"GATEWAY_{name.upper()}": value for name, value in settings.items()},
    }
    var_dir.mkdir(parents=True, exist_ok=True)
    log_path = var_dir / "gateway.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve"], env=env, stdout=log, stderr=log
        )
    running = GatewayProcess(process, port, admin_port, log_path)
    try:
        wait_for_port(port, process)
        wait_for_port(admin_port, process)
        yield running
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def metric(port: int, name: str) -> float:
    responses = exchange(
        port,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + ADMIN_TOKEN.encode()
        + b"\r\nConnection: close\r\n\r\n",
    )  # fmt: skip
    for line in responses[0].body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")
