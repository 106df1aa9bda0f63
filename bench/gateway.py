"""Everything the gateway targets need: their own Redis, two tenants with keys, and the servers.

The gateway is driven only through its public contract (the `gateway` CLI, its environment, and
`GET /readyz`), so the bench measures what an operator would run. The JSON tenant and the SSE
tenant differ only in their upstream base URL, because nginx picks its reply by path.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.procs import Server, free_port, http_status, start_server, tcp_open, wait_until

ACCOUNT = "0000-0000-0001"
API_DOMAIN = "api.localhost"
UPSTREAM_KEY = "bench-upstream-key"
# The journal keeps request and response bodies: at its default cap (1M records) the 64 KB
# scenario alone would fill gigabytes of Redis on a shared machine. The bench caps the stream
# unless the caller sets GATEWAY_JOURNAL_MAX_RECORDS itself; XADD trims the same way either way.
JOURNAL_MAX_RECORDS = "10000"
READY_TIMEOUT_S = 60.0
# The gateway reads config/gateway.toml from its working directory: run it from the checkout.
REPO_ROOT = Path(__file__).resolve().parent.parent


class GatewayUnavailableError(RuntimeError):
    """The gateway CLI is missing or failed; the gateway targets are skipped."""


@dataclass(frozen=True, slots=True)
class Tenant:
    host: str
    key: str


@dataclass(frozen=True, slots=True)
class Tenants:
    chat: Tenant
    sse: Tenant
    #: The same two with every limit set, far above what the bench can reach: what a checked
    #: (but never refused) request costs.
    limited_chat: Tenant
    limited_sse: Tenant


@dataclass(slots=True)
class GatewayStack:
    """A Redis, the environment that points a gateway at it, and the tenants provisioned in it."""

    gateway: str
    redis: Server
    redis_port: int
    env: dict[str, str]
    tenants: Tenants | None = None


def start_redis(redis_server: str, work_dir: Path) -> tuple[Server, int]:
    port = free_port()
    data_dir = work_dir / "redis"
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    argv += ["--appendonly", "no", "--dir", str(data_dir)]
    server = start_server("redis", argv, work_dir)
    wait_until(lambda: redis_ping(port), server, timeout_s=15, what="PONG")
    return server, port


def redis_command(port: int, *args: str) -> bytes:
    """Send one command in RESP and return a simple-string or bulk-string reply's payload."""
    request = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
    with socket.create_connection(("127.0.0.1", port), timeout=5.0) as sock:
        sock.sendall(request.encode())
        reply = b""
        while b"\r\n" not in reply:
            chunk = sock.recv(65536)
            if not chunk:
                break
            reply += chunk
        head, _, rest = reply.partition(b"\r\n")
        if not head.startswith(b"$"):
            return head[1:]
        size = int(head[1:])
        while len(rest) < size:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return rest[:size]


def redis_ping(port: int) -> bool:
    try:
        return tcp_open(port) and redis_command(port, "PING") == b"PONG"
    except OSError:
        return False


def redis_used_memory_mb(port: int) -> float:
    for line in redis_command(port, "INFO", "memory").decode().splitlines():
        if line.startswith("used_memory:"):
            return int(line.split(":", 1)[1]) / 2**20
    return 0.0


def create_stack(gateway: str, redis_server: str, work_dir: Path) -> GatewayStack:
    redis, port = start_redis(redis_server, work_dir)
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{port}/0",
        "GATEWAY_SECRET": secrets.token_urlsafe(32),
        "GATEWAY_API_DOMAIN": API_DOMAIN,
        # Spill files and anything else the gateway keeps on disk stay in the bench's temp dir.
        "GATEWAY_VAR_DIR": str(work_dir / "gateway-var"),
        "GATEWAY_JOURNAL_MAX_RECORDS": os.environ.get(
            "GATEWAY_JOURNAL_MAX_RECORDS", JOURNAL_MAX_RECORDS
        ),
    }
    return GatewayStack(gateway=gateway, redis=redis, redis_port=port, env=env)


def _cli_json(stack: GatewayStack, *args: str) -> dict[str, object]:
    argv = [stack.gateway, *args, "--json"]
    try:
        result = subprocess.run(
            argv,
            env=stack.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GatewayUnavailableError(f"`{' '.join(argv)}` failed: {exc}") from exc
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        last_line = output.splitlines()[-1] if output else "no output"
        raise GatewayUnavailableError(
            f"`gateway {args[0]} {args[1]}` exited with {result.returncode}: {last_line}\n"
            f"$ {' '.join(argv)}\n{output[-3000:]}"
        )
    start = result.stdout.find("{")
    try:
        record, _ = json.JSONDecoder().raw_decode(result.stdout[start:])
    except ValueError as exc:
        raise GatewayUnavailableError(f"`{' '.join(argv)}` printed no JSON:\n{output}") from exc
    if not isinstance(record, dict):
        raise GatewayUnavailableError(f"`{' '.join(argv)}` printed {record!r}")
    return record


#: Every limit of `gateway clients update`, set where no bench run can reach it.
UNREACHABLE_LIMITS = (
    *("--rpm", "1000000000", "--tpm", "1000000000000", "--max-concurrent", "1000000"),
    *("--tokens-per-day", "1000000000000", "--tokens-per-month", "1000000000000"),
)


def provision_tenants(stack: GatewayStack, upstream_port: int) -> Tenants:
    """Create the JSON and the SSE tenant, each with its own key, through the CLI."""
    upstream = f"http://127.0.0.1:{upstream_port}"

    def tenant(name: str, upstream_url: str, limited: bool = False) -> Tenant:
        record = _cli_json(
            stack,
            *("clients", "add", name, "--account", ACCOUNT, "--provider", "openai"),
            *("--upstream-url", upstream_url, "--upstream-key", UPSTREAM_KEY),
        )
        if limited:
            _cli_json(stack, "clients", "update", name, "--account", ACCOUNT, *UNREACHABLE_LIMITS)
        key = _cli_json(
            stack, *("keys", "create", "--account", ACCOUNT, "--client", name, "--name", name)
        )
        host = record.get("hostname") or f"{name}.{ACCOUNT}.{API_DOMAIN}"
        return Tenant(host=str(host), key=str(key["key"]))

    stack.tenants = Tenants(
        chat=tenant("bench", f"{upstream}/v1"),
        sse=tenant("bench-sse", f"{upstream}/sse/v1"),
        limited_chat=tenant("bench-limits", f"{upstream}/v1", limited=True),
        limited_sse=tenant("bench-limits-sse", f"{upstream}/sse/v1", limited=True),
    )
    return stack.tenants


def log_events(log_path: Path) -> dict[str, int]:
    """Count the gateway's warning and error log events by level, name and exception."""
    counts: dict[str, int] = {}
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return counts
    for line in lines:
        if '"level":"warning"' not in line and '"level":"error"' not in line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        name = f"{event.get('level')}:{event.get('event')}"
        exception = str(event.get("exception") or "").strip().splitlines()
        if exception:
            name += f" ({exception[-1][:120]})"
        counts[name] = counts.get(name, 0) + 1
    return counts


def start_gateway(
    stack: GatewayStack,
    name: str,
    *,
    workers: int,
    journal: bool,
    log_dir: Path,
    otlp_endpoint: str | None = None,
    checkout: Path | None = None,
) -> tuple[Server, int]:
    """`checkout`: run that checkout's gateway (its `.venv/bin/gateway`, from its directory)."""
    port = free_port()
    gateway = str(checkout / ".venv" / "bin" / "gateway") if checkout else stack.gateway
    argv = [gateway, "serve", "--host", "127.0.0.1", "--port", str(port)]
    if workers != 1:
        argv += ["--workers", str(workers)]
    env = dict(stack.env)
    if not journal:
        env["GATEWAY_JOURNAL_ENABLED"] = "false"
    if otlp_endpoint:  # docs/observability.md: the SDK's own variables
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp_endpoint
        env["OTEL_SERVICE_NAME"] = "gateway-bench"
    server = start_server(name, argv, log_dir, env, cwd=checkout or REPO_ROOT)
    wait_until(
        lambda: http_status(f"http://127.0.0.1:{port}/readyz") == 200,
        server,
        timeout_s=READY_TIMEOUT_S,
        what="GET /readyz == 200",
    )
    return server, port
