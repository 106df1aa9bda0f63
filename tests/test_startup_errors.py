"""An operator's first mistakes get one line that says what to change, exit 1, and no traceback.

The ways in: the gateway's port taken (one process, workers), the admin port taken, a
`GATEWAY_REDIS_URL` that is not a URL (for `serve` and for admin commands), a Redis that does
not answer, and a Redis that refuses the URL's password (which must never be printed).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET, free_port

PASSWORD = "hunter2-never-printed"


def gateway(tmp_path: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGV` with only these GATEWAY_* variables; must end by itself."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    environ.update(GATEWAY_VAR_DIR=str(tmp_path / "var"), GATEWAY_SECRET=TEST_SECRET, **env)
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        env=environ,
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def one_line_failure(done: subprocess.CompletedProcess[str], *mentions: str) -> str:
    """Exit 1; stderr is exactly one `gateway: ...` line naming `mentions`; no noise anywhere."""
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stderr.startswith("gateway: "), done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    for mention in mentions:
        assert mention in done.stderr
    everything = done.stdout + done.stderr
    for noise in ("Traceback", "Unclosed", "Task was destroyed", "Exception ignored"):
        assert noise not in everything, everything
    return done.stderr


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A loopback port something else listens on (without SO_REUSEPORT)."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_gateway_port_in_use(tmp_path: Path, redis_url: str, taken_port: int, workers: str) -> None:
    done = gateway(
        tmp_path,
        "serve",
        "--workers",
        workers,
        GATEWAY_PORT=str(taken_port),
        GATEWAY_REDIS_URL=redis_url,
    )
    line = one_line_failure(done, f"port {taken_port} is already in use", "GATEWAY_PORT")
    assert "GATEWAY_ADMIN_PORT" not in line


def test_admin_port_in_use(tmp_path: Path, redis_url: str, taken_port: int) -> None:
    done = gateway(
        tmp_path,
        "serve",
        GATEWAY_PORT=str(free_port()),
        GATEWAY_ADMIN_PORT=str(taken_port),
        GATEWAY_ADMIN_TOKEN="admin-token-never-printed",
        GATEWAY_REDIS_URL=redis_url,
    )
    one_line_failure(done, f"port {taken_port} is already in use", "GATEWAY_ADMIN_PORT")
    assert "admin-token-never-printed" not in done.stdout + done.stderr


@pytest.mark.parametrize("argv", [["clients", "list"], ["serve"], ["journal", "tail"]])
@pytest.mark.parametrize(
    "url", ["bogus", "http://127.0.0.1:6379/0", f"redis://:{PASSWORD}@127.0.0.1:x/0", "unix://"]
)
def test_a_redis_url_that_is_not_one(tmp_path: Path, argv: list[str], url: str) -> None:
    done = gateway(tmp_path, *argv, GATEWAY_REDIS_URL=url, GATEWAY_PORT=str(free_port()))
    line = one_line_failure(done, "GATEWAY_REDIS_URL", "is not a Redis URL")
    assert PASSWORD not in line
    if PASSWORD in url:
        assert "redis://:***@127.0.0.1:x/0" in line


def test_a_redis_that_does_not_answer(tmp_path: Path) -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there
    done = gateway(tmp_path, "clients", "list", GATEWAY_REDIS_URL=url)
    line = one_line_failure(done, "cannot reach Redis at", "GATEWAY_REDIS_URL")
    assert url.replace(PASSWORD, "***") in line
    assert PASSWORD not in line


def test_a_redis_that_refuses_the_password(tmp_path: Path, redis_url: str) -> None:
    # The suite's Redis has no user "nobody": it refuses AUTH as that user.
    url = redis_url.replace("redis://", f"redis://nobody:{PASSWORD}@", 1)
    assert PASSWORD in url
    done = gateway(tmp_path, "keys", "list", "--account", "3141-5926-5359", GATEWAY_REDIS_URL=url)
    line = one_line_failure(done, "Redis at", "GATEWAY_REDIS_URL")
    assert PASSWORD not in line
