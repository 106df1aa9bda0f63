"""Child processes of the bench: start, wait until ready, stop, and read their cost from /proc.

Each server starts in its own session, so that a stop reaches the workers a server forked even when
the server itself is gone. Cost is read for a whole process tree, because a multi-worker gateway is
several processes and its CPU and memory are the sum of theirs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_INTERVAL_S = 0.05


class ServerStartError(RuntimeError):
    """A server exited, or did not become ready before its deadline."""


@dataclass(slots=True)
class Server:
    """A started child process whose combined output goes to `log_path`."""

    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass(frozen=True, slots=True)
class TreeUsage:
    """CPU time (ticks) and memory (kB) summed over a process tree at one instant."""

    cpu_ticks: int
    rss_kb: int
    hwm_kb: int
    processes: int

    def cpu_ms_since(self, before: TreeUsage) -> float:
        return ticks_to_ms(self.cpu_ticks - before.cpu_ticks)


def ticks_to_ms(ticks: int) -> float:
    return ticks * 1000.0 / CLOCK_TICKS


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    name: str,
    argv: list[str],
    log_dir: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Server:
    log_path = log_dir / f"{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    return Server(name=name, process=process, log_path=log_path)


@dataclass(frozen=True, slots=True)
class StopOutcome:
    """How a server ended: seconds from SIGTERM to exit, and whether SIGKILL was needed."""

    seconds: float
    killed: bool
    exit_code: int | None


def stop_server(server: Server, timeout_s: float = 15.0) -> StopOutcome:
    """SIGTERM the server, wait for it, then SIGKILL whatever is left of its session."""
    started, killed = time.monotonic(), False
    if server.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            server.process.send_signal(signal.SIGTERM)
        try:
            server.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            print(f"bench: {server.name} did not exit {timeout_s:.0f} s after SIGTERM: SIGKILL")
            killed = True
    seconds = time.monotonic() - started
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(server.pid, signal.SIGKILL)  # workers left behind, if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        server.process.wait(timeout=timeout_s)
    code = server.process.returncode
    return StopOutcome(seconds=round(seconds, 2), killed=killed, exit_code=code)


def wait_until(ready: Callable[[], bool], server: Server, timeout_s: float, what: str) -> None:
    """Poll `ready` until it holds; fail early if the server exits, and at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        code = server.process.poll()
        if code is not None:
            raise ServerStartError(
                f"{server.name} exited with {code} before {what}\n{server.log_tail()}"
            )
        if time.monotonic() > deadline:
            raise ServerStartError(
                f"{server.name}: no {what} within {timeout_s:.0f} s\n{server.log_tail()}"
            )
        time.sleep(POLL_INTERVAL_S)


def tcp_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def http_status(url: str) -> int | None:
    """Status of a GET on a loopback URL, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:  # noqa: S310 (loopback)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def machine_busy_ticks() -> int:
    """CPU ticks all cores spent not idle since boot (first line of /proc/stat)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user; leave it out of the sum.
    return sum(fields[:8]) - idle


def background_cpu_pct(seconds: float) -> float:
    """Machine-wide CPU busy over `seconds`, in % of one core, from processes not ours."""
    busy, own = machine_busy_ticks(), tree_usage(os.getpid()).cpu_ticks
    time.sleep(seconds)
    spent = machine_busy_ticks() - busy - (tree_usage(os.getpid()).cpu_ticks - own)
    return max(0.0, ticks_to_ms(spent) / 10.0 / seconds)


def wait_for_quiet(limit_pct: float, max_wait_s: float, sample_s: float = 2.0) -> float:
    """Sample background CPU until it is under `limit_pct` of a core or `max_wait_s` passes."""
    deadline = time.monotonic() + max_wait_s
    while True:
        busy = background_cpu_pct(sample_s)
        if busy <= limit_pct or time.monotonic() >= deadline:
            return busy
        print(f"bench: machine busy ({busy:.0f} % of a core from other processes); waiting")


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name is in parentheses and may hold spaces: split after the last ')'.
    return raw[raw.rfind(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """`root` and every live descendant of it."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, []))
    return found


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_usage(root: int) -> TreeUsage:
    """utime+stime of the tree (reaped children included) and its summed VmRSS and VmHWM."""
    ticks = rss = hwm = count = 0
    for pid in tree_pids(root):
        fields = _stat_fields(pid)
        if fields is None:
            continue
        # After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14).
        ticks += sum(int(value) for value in fields[11:15])
        rss += _status_kb(pid, "VmRSS")
        hwm += _status_kb(pid, "VmHWM")
        count += 1
    return TreeUsage(cpu_ticks=ticks, rss_kb=rss, hwm_kb=hwm, processes=count)
