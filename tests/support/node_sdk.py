"""The official openai Node SDK for the tests: installed once from npm under `var/node/`.

Node's fetch drops a `Host` header, so the Node SDK is the client that path addressing exists
for. `node_openai()` installs the pinned package (a no-op when it is already there) and returns
the `node_modules` folder, or skips the test, saying why, where `node` or `npm` is absent.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODE_DIR = REPO / "var" / "node"
#: The last openai release line that runs on Node 20 (7.x needs Node 22).
OPENAI_NODE_VERSION = "6.30.1"
PATH_CLIENT = Path(__file__).resolve().parent / "node" / "path_client.cjs"


def _installed_version(modules: Path) -> str | None:
    manifest = modules / "openai" / "package.json"
    if not manifest.is_file():
        return None
    version = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    return version if isinstance(version, str) else None


def node_openai() -> Path:
    """`var/node/node_modules` holding openai@OPENAI_NODE_VERSION (installed if missing)."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("the openai Node SDK tests need `node` and `npm` on PATH (neither is here)")
    modules = NODE_DIR / "node_modules"
    NODE_DIR.mkdir(parents=True, exist_ok=True)
    with (NODE_DIR / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install, however many test processes ask
        if _installed_version(modules) != OPENAI_NODE_VERSION:
            manifest = {"private": True, "dependencies": {"openai": OPENAI_NODE_VERSION}}
            (NODE_DIR / "package.json").write_text(json.dumps(manifest), encoding="utf-8")
            done = subprocess.run(
                [npm, "install", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=NODE_DIR,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert done.returncode == 0, f"npm install openai failed: {done.stderr[-2000:]}"
    assert _installed_version(modules) == OPENAI_NODE_VERSION
    return modules


def node_env(modules: Path) -> dict[str, str]:
    """The environment for `node`: `require("openai")` finds the cached package."""
    return {**os.environ, "NODE_PATH": str(modules)}


async def run_node(modules: Path, script: Path, *args: str, timeout: float = 60.0) -> str:
    """Run `node script args...` without blocking the event loop the gateway serves on."""
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        *args,
        env=node_env(modules),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    return stdout.decode()
