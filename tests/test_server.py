"""The real `gateway serve` as a subprocess: readiness, serving, workers, SIGTERM, demo mode."""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import orjson
import pytest

from gateway.demo import DEMO_ACCOUNT, DEMO_CLIENT
from tests.conftest import ACCOUNT, TEST_SECRET, Cli, free_port
from tests.support.node_sdk import node_openai

START_DEADLINE = 30.0
STOP_DEADLINE = 20.0


class GatewayProcess:
    """`python -m gateway serve ...` with its output collected line by line as it arrives."""

    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path, port: int) -> None:
        self.port = port
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gateway", *argv],
            env=env,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group, so kill() can end its workers too
        )
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        self._readers = [
            threading.Thread(
                target=self._pump, args=(self.process.stdout, self.stdout), daemon=True
            ),
            threading.Thread(
                target=self._pump, args=(self.process.stderr, self.stderr), daemon=True
            ),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _pump(stream: object, lines: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.stdout)

    def events(self) -> list[dict[str, object]]:
        found = []
        for line in list(self.stdout):
            if line.startswith("{"):
                found.append(orjson.loads(line))
        return found

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE
        url = f"http://127.0.0.1:{self.port}/readyz"
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"gateway exited early: {''.join(self.stderr)[-2000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"gateway not ready within {START_DEADLINE}s")
            time.sleep(0.05)

    def wait_for(self, predicate: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=STOP_DEADLINE)
        self._close()
        return code

    def kill(self) -> None:
        """Clean-up after a failed test: the gateway's group (it, workers, redis) by its id."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self._close()

    def _close(self) -> None:
        for reader in self._readers:
            reader.join(timeout=5)
        if not any(reader.is_alive() for reader in self._readers):
            for stream in (self.process.stdout, self.process.stderr):
                if stream is not None:
                    stream.close()


def children_of(pid: int) -> dict[int, str]:
    """Live child processes of `pid` and their command lines, read from /proc."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, ppid = fields[0], int(fields[1])
        if ppid == pid and state != "Z":
            found[int(entry.name)] = cmdline
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def start_gateway(tmp_path: Path, redis_url: str) -> Iterator[Callable[..., GatewayProcess]]:
    started: list[GatewayProcess] = []

    def start(*argv: str, redis: bool = True, secret: bool = True) -> GatewayProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env["GATEWAY_VAR_DIR"] = str(tmp_path / "var")
        env["GATEWAY_ADMIN_PORT"] = str(free_port())  # the demo opens it; 8081 may be taken
        if redis:
            env["GATEWAY_REDIS_URL"] = redis_url
        if secret:
            env["GATEWAY_SECRET"] = TEST_SECRET
        port = free_port()
        process = GatewayProcess(["serve", "--port", str(port), *argv], env, tmp_path, port)
        started.append(process)
        return process

    yield start
    for process in started:
        process.kill()


def _echo_tenant(cli: Cli) -> tuple[str, str]:
    assert cli("clients", "add", "bot", "--account", ACCOUNT, "--provider", "echo").code == 0
    created = cli("keys", "create", "--account", ACCOUNT, "--name", "srv", "--json")
    assert created.code == 0
    return f"bot.{ACCOUNT}.api.localhost", created.json["key"]


def test_serve_answers_and_stops_on_sigterm(
    cli: Cli, start_gateway: Callable[..., GatewayProcess]
) -> None:
    hostname, key = _echo_tenant(cli)
    gateway = start_gateway()
    gateway.wait_ready()
    with openai.OpenAI(
        base_url=f"http://127.0.0.1:{gateway.port}/v1",
        api_key=key,
        default_headers={"Host": hostname},
        max_retries=0,
        timeout=10.0,
    ) as sdk:
        reply = sdk.chat.completions.create(
            model="echo-1", messages=[{"role": "user", "content": "hi from a process"}]
        )
    assert reply.choices[0].message.content == "echo: hi from a process"
    started = time.monotonic()
    assert gateway.terminate() == 0
    assert time.monotonic() - started < STOP_DEADLINE
    names = [event["event"] for event in gateway.events()]
    assert "gateway_listening" in names
    assert names[-1] == "gateway_stopped"
    assert key not in gateway.output + "".join(gateway.stderr)


def _post(port: int, hostname: str, key: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = orjson.dumps({"model": "echo-1", "messages": [{"role": "user", "content": "w"}]})
        connection.request(
            "POST",
            "/v1/chat/completions",
            body=body,
            headers={
                "Host": hostname,
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json",
                "Connection": "close",
            },
        )
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_two_workers_both_serve_and_all_stop(
    cli: Cli, start_gateway: Callable[..., GatewayProcess]
) -> None:
    hostname, key = _echo_tenant(cli)
    gateway = start_gateway("--workers", "2")
    gateway.wait_ready()
    children = children_of(gateway.process.pid)  # the workers and multiprocessing's tracker
    workers = [pid for pid, cmd in children.items() if "spawn_main" in cmd]
    assert len(workers) == 2, children

    def served_by() -> set[object]:
        return {
            event.get("worker")
            for event in gateway.events()
            if event["event"] == "request_handled" and event.get("status") == 200
        }

    deadline = time.monotonic() + 30.0
    for _ in range(300):  # new connection each time: the kernel spreads them over the workers
        assert _post(gateway.port, hostname, key) == 200
        if served_by() == {0, 1} or time.monotonic() > deadline:
            break
    gateway.wait_for(lambda: served_by() == {0, 1}, "a request served by each worker")

    assert gateway.terminate() == 0
    for pid in children:
        gateway.wait_for(lambda: not is_running(pid), f"child {children[pid]!r} to stop", 10.0)  # noqa: B023
    stopped = [e.get("worker") for e in gateway.events() if e["event"] == "gateway_stopped"]
    assert sorted(stopped, key=str) == [0, 1]


def _demo_files(gateway: GatewayProcess) -> dict[str, Path]:
    """The snippet files the demo printed (`  <how to run> <path>` lines), checked against the
    printed text: each file is exactly what pasting its printed block would give."""
    gateway.wait_for(lambda: "console.log(reply" in gateway.output, "the demo instructions")
    text = gateway.output
    files = {}
    for line in text.splitlines():
        if line.startswith("  ") and line.rstrip().endswith(("curl.sh", "demo.py", "demo.mjs")):
            path = Path(line.split()[-1])
            files[path.name] = path
            snippet = path.read_text(encoding="utf-8")
            assert not snippet[0].isspace()
            assert "\n\n" + snippet in text, f"{path.name} is not printed flush left as is"
    assert sorted(files) == ["curl.sh", "demo.mjs", "demo.py"]
    return files


def _run(argv: list[str], cwd: Path | None = None) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_serve_demo_with_embedded_redis(
    tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    gateway = start_gateway("--demo", redis=False, secret=False)
    gateway.wait_ready()
    files = _demo_files(gateway)
    text = gateway.output
    hostname = f"{DEMO_CLIENT}.{DEMO_ACCOUNT}.api.localhost"
    key = (tmp_path / "var" / "demo.key").read_text(encoding="utf-8").strip()
    assert f"curl -s http://{hostname}:{gateway.port}/v1/chat/completions" in text
    assert f"Authorization: Bearer {key}" in text
    assert (tmp_path / "var" / "gateway.secret").is_file()
    assert files["demo.py"] == tmp_path / "var" / "demo" / "demo.py"

    redis_children = [
        pid for pid, cmd in children_of(gateway.process.pid).items() if "redis" in cmd
    ]
    assert len(redis_children) == 1
    assert (tmp_path / "var" / "redis" / "redis.sock").exists()

    assert f'api_key="{key}"' in files["demo.py"].read_text(encoding="utf-8")
    assert _run([sys.executable, str(files["demo.py"])]) == "echo: Hello, gateway!\n"
    if shutil.which("curl"):  # curl resolves *.localhost to 127.0.0.1 by itself
        reply = orjson.loads(_run(["sh", str(files["curl.sh"])]))
        assert reply["choices"][0]["message"]["content"] == "echo: Hello, gateway!"

    assert gateway.terminate() == 0
    gateway.wait_for(
        lambda: not is_running(redis_children[0]), "the embedded redis-server to stop", 10.0
    )
    assert not (tmp_path / "var" / "redis" / "redis.sock").exists()


def test_serve_demo_node_snippet_runs(
    tmp_path: Path, start_gateway: Callable[..., GatewayProcess]
) -> None:
    modules = node_openai()
    gateway = start_gateway("--demo", redis=False, secret=False)
    gateway.wait_ready()
    files = _demo_files(gateway)
    demo_dir = files["demo.mjs"].parent
    # What `npm install --prefix var/demo openai@6` leaves there, from the suite's npm cache.
    (demo_dir / "node_modules").symlink_to(modules, target_is_directory=True)
    assert _run(["node", str(files["demo.mjs"])], cwd=tmp_path) == "echo: Hello, gateway!\n"
    assert gateway.terminate() == 0
