"""Running the gateway: one process, or N worker processes sharing the port (SO_REUSEPORT).

SIGTERM or Ctrl-C stops accepting connections, lets in-flight requests finish (up to
`SHUTDOWN_GRACE` seconds), flushes the journal, and exits. With workers, the parent forwards the
signal to every worker and waits for all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from typing import Any

import structlog
from aiohttp import web

from gateway import appkeys
from gateway.admin.app import create_admin_app
from gateway.app import create_app
from gateway.config import Settings
from gateway.connection import GatewayRunner
from gateway.demo import DEMO_DIR, demo_instructions, ensure_demo_tenant
from gateway.errors import ConfigError
from gateway.logs import configure_logging
from gateway.redis_server import embedded_redis_url
from gateway.store.redis import create_redis

log = structlog.get_logger("gateway.server")

SHUTDOWN_GRACE = 30.0


def run_async(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when it is installed, else asyncio's own loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
    else:
        uvloop.run(main)


def display_host(host: str) -> str:
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host  # noqa: S104


async def start_admin(settings: Settings, app: web.Application) -> web.AppRunner | None:
    """The admin port beside the main site, when an admin token is configured."""
    if not settings.admin_token:
        log.warning(
            "admin_port_disabled",
            reason="GATEWAY_ADMIN_TOKEN is not set; the admin API, /metrics and the dashboard "
            "are off",
        )
        return None
    runner = GatewayRunner(create_admin_app(settings, app[appkeys.METRICS]), access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.admin_host, settings.admin_port)
        await listen(site, settings.admin_host, settings.admin_port, "GATEWAY_ADMIN")
    except BaseException:
        await runner.cleanup()
        raise
    log.info(
        "admin_listening",
        url=f"http://{display_host(settings.admin_host)}:{settings.admin_port}/admin/",
    )
    return runner


async def serve_app(
    settings: Settings,
    secret: str,
    *,
    reuse_port: bool,
    on_ready: Callable[[int], None],
    admin: bool = True,
) -> None:
    app = create_app(settings, secret)
    runner = GatewayRunner(app, handler_cancellation=True, access_log=None)
    await runner.setup()
    admin_runner = None
    try:
        admin_runner = await start_admin(settings, app) if admin else None
        site = web.TCPSite(
            runner,
            settings.host,
            settings.port,
            reuse_port=reuse_port or None,
            shutdown_timeout=SHUTDOWN_GRACE,
            backlog=1024,
        )
        await listen(site, settings.host, settings.port, "GATEWAY")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        port = runner.addresses[0][1] if runner.addresses else settings.port
        log.info("gateway_listening", host=settings.host, port=port)
        on_ready(port)
        await stop.wait()
        log.info("gateway_stopping")
    finally:
        # Also when a port is taken: what started (sessions, Redis, the journal) is closed,
        # so the one-line error is not followed by asyncio's "Unclosed ..." warnings.
        if admin_runner is not None:
            await admin_runner.cleanup()
        await runner.cleanup()
    log.info("gateway_stopped")


async def listen(site: web.TCPSite, host: str, port: int, prefix: str) -> None:
    """Start `site`, or say in one line which address failed and which setting moves it
    (`prefix` is `GATEWAY` or `GATEWAY_ADMIN`: `GATEWAY_PORT`, `GATEWAY_ADMIN_HOST`, ...)."""
    try:
        await site.start()
    except OSError as exc:
        raise ConfigError(bind_failure(host, port, prefix, exc)) from exc


def bind_failure(host: str, port: int, prefix: str, exc: OSError) -> str:
    address = f"{display_host(host)}:{port}"
    if exc.errno == errno.EADDRINUSE:
        reason = f"port {port} is already in use ({address})"
    elif exc.errno == errno.EACCES:
        reason = f"no permission to listen on {address}"
    else:
        reason = f"cannot listen on {address}: {exc.strerror or exc}"
    return f"{reason}: set {prefix}_PORT to a free port (or {prefix}_HOST to another address)"


def _worker_main(settings: Settings, secret: str, index: int) -> None:
    configure_logging(settings.log_level, {"worker": index})
    # Only worker 0 serves the admin port (its /metrics are that worker's; docs/journal.md).
    try:
        run_async(
            serve_app(
                settings, secret, reuse_port=True, on_ready=lambda _port: None, admin=index == 0
            )
        )
    except ConfigError as exc:
        sys.stderr.write(f"gateway: worker {index}: {exc.message}\n")
        raise SystemExit(1) from None


def check_bindable(host: str, port: int, prefix: str, *, reuse_port: bool) -> None:
    """Bind and release `host:port` once, so a taken port fails in the parent with one line
    instead of once in every worker."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ConfigError(bind_failure(host, port, prefix, exc)) from exc


def _run_workers(settings: Settings, secret: str) -> None:
    check_bindable(settings.host, settings.port, "GATEWAY", reuse_port=True)
    if settings.admin_token:
        check_bindable(settings.admin_host, settings.admin_port, "GATEWAY_ADMIN", reuse_port=False)
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_worker_main, args=(settings, secret, i), name=f"gateway-worker-{i}")
        for i in range(settings.workers)
    ]
    for worker in workers:
        worker.start()

    def forward(signum: int, _frame: object) -> None:
        for worker in workers:
            if worker.pid and worker.is_alive():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for worker in workers:
            worker.join()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    failed = [w.name for w in workers if w.exitcode not in (0, -signal.SIGTERM)]
    if failed:
        raise SystemExit(f"workers failed: {', '.join(failed)}")


@contextlib.contextmanager
def redis_for(settings: Settings) -> Iterator[Settings]:
    """Settings with a Redis URL: the configured one, or the embedded Redis under var/."""
    if settings.redis_url:
        yield settings
        return
    with embedded_redis_url(settings.var_path) as url:
        yield settings.replace(redis_url=url)


def serve(settings: Settings, secret: str, *, demo: bool = False) -> None:
    configure_logging(settings.log_level)
    with redis_for(settings) as live:
        instructions = ""
        if demo:
            instructions = _prepare_demo(live, secret)

        def ready(_port: int) -> None:
            if instructions:
                sys.stdout.write(instructions)
                sys.stdout.flush()

        if live.workers == 1:
            run_async(serve_app(live, secret, reuse_port=False, on_ready=ready))
        else:
            ready(live.port)
            _run_workers(live, secret)


def _prepare_demo(settings: Settings, secret: str) -> str:
    async def prepare() -> tuple[str, str]:
        redis = create_redis(settings.redis_url)
        try:
            return await ensure_demo_tenant(redis, settings, secret)
        finally:
            await redis.aclose()

    hostname, key = asyncio.run(prepare())
    dashboard = None
    if settings.admin_token:
        host = display_host(settings.admin_host)
        dashboard = f"http://{host}:{settings.admin_port}/admin/#token={settings.admin_token}"
    return demo_instructions(
        hostname,
        key,
        display_host(settings.host),
        settings.port,
        dashboard,
        demo_dir=settings.var_path / DEMO_DIR,
    )
