"""Property: a scoped admin token never gets another account's data, whatever route, method,
body or identifiers it tries. Hypothesis draws the requests; the admin app runs for real in a
thread (Hypothesis drives a sync test), against the suite's Redis, seeded with the CLI."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx2 as httpx
import orjson
import pytest
import redis
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.admin.api import ROUTES
from gateway.admin.app import create_admin_app
from gateway.config import Settings
from gateway.metrics import GatewayMetrics
from gateway.store import keys
from tests.conftest import ACCOUNT, OTHER_ACCOUNT, TEST_SECRET, Cli, Result

OPERATOR = "isolation-operator-token"
#: Strings only the other account's records hold: none may appear in an answer to a token of
#: ACCOUNT (unless the request itself carried it).
VICTIM_NAME = "Bravo Secret Corp"
VICTIM_UPSTREAM = "http://127.0.0.1:7/bravo-upstream"


def _json(result: Result) -> Any:
    assert result.code == 0, result.err
    return result.json


@pytest.fixture
def world(cli: Cli, sync_redis: redis.Redis) -> dict[str, Any]:
    """Two accounts with a client, a key, a domain, a price and an admin token each."""
    found: dict[str, Any] = {}
    for account, label in ((ACCOUNT, "alpha"), (OTHER_ACCOUNT, "bravo")):
        name = VICTIM_NAME if account == OTHER_ACCOUNT else "Alpha"
        _json(cli("accounts", "add", account, "--name", name, "--json"))
        upstream = VICTIM_UPSTREAM if account == OTHER_ACCOUNT else "http://127.0.0.1:7/alpha"
        _json(
            cli("clients", "add", f"{label}-bot", "--account", account, "--provider", "openai",
                "--upstream-url", upstream, "--json")
        )  # fmt: skip
        key = _json(
            cli("keys", "create", "--account", account, "--name", f"{label}-key-name", "--json")
        )
        domain = _json(
            cli("domains", "add", f"api.{label}.test", "--account", account, "--client",
                f"{label}-bot", "--json")
        )  # fmt: skip
        _json(
            cli("prices", "set", f"{label}-model", "--input-per-mtok", "1", "--output-per-mtok",
                "2", "--account", account, "--json")
        )  # fmt: skip
        rw = _json(cli("admin-tokens", "create", "--account", account, "--json"))
        ro = _json(cli("admin-tokens", "create", "--account", account, "--read-only", "--json"))
        found[label] = {
            "account": account,
            "client": f"{label}-bot",
            "key_id": key["id"],
            "key": key["key"],
            "hostname": domain["hostname"],
            "domain_token": domain["token"],
            "model": f"{label}-model",
            "token_id": rw["id"],
            "tokens": [rw["token"], ro["token"]],
        }
    return found


@pytest.fixture
def admin_url(settings: Settings, world: dict[str, Any]) -> Iterator[str]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    app = create_admin_app(settings.replace(admin_token=OPERATOR), GatewayMetrics(), TEST_SECRET)
    runner = web.AppRunner(app, access_log=None)

    async def start() -> int:
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        server: Any = site._server
        port: int = server.sockets[0].getsockname()[1]
        return port

    port = asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()


_OPERATIONS = [(path, method) for path, views in ROUTES for method in views]
_BODIES: st.SearchStrategy[dict[str, Any] | None] = st.one_of(
    st.none(),
    st.just({}),
    st.fixed_dictionaries(
        {},
        optional={
            "name": st.text(max_size=8),
            "rpm": st.integers(0, 10),
            "usd_per_day": st.floats(0, 100),
            "account": st.sampled_from([ACCOUNT, OTHER_ACCOUNT]),
            "client": st.sampled_from(["alpha-bot", "bravo-bot"]),
            "model": st.sampled_from(["alpha-model", "bravo-model"]),
            "input_per_mtok": st.just("1"),
            "output_per_mtok": st.just("1"),
            "hostname": st.sampled_from(["api.bravo.test", "x.bravo.test"]),
            "verify": st.booleans(),
            "provider": st.just("echo"),
        },
    ),
)


def _victim_markers(victim: dict[str, Any]) -> dict[str, str]:
    return {
        "name": VICTIM_NAME,
        "upstream": VICTIM_UPSTREAM,
        "key name": "bravo-key-name",
        "key": victim["key"],
        "domain token": victim["domain_token"],
        "account": victim["account"],
        "key id": victim["key_id"],
        "token id": victim["token_id"],
        "model": victim["model"],
        "client": victim["client"],
        "hostname": victim["hostname"],
    }


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    operation=st.sampled_from(_OPERATIONS),
    read_only=st.booleans(),
    body=_BODIES,
    victim_query=st.booleans(),
)
def test_scoped_tokens_never_see_another_accounts_data(
    admin_url: str,
    world: dict[str, Any],
    sync_redis: redis.Redis,
    operation: tuple[str, str],
    read_only: bool,
    body: dict[str, Any] | None,
    victim_query: bool,
) -> None:
    path, method = operation
    attacker, victim = world["alpha"], world["bravo"]
    token = attacker["tokens"][1 if read_only else 0]
    params = {name: victim[name] for name in ("account", "client", "key_id", "hostname", "model")}
    params["token_id"] = victim["token_id"]
    params["request_id"] = "no-such-request"
    url = admin_url + "/admin/v1" + path.format(**params)
    query = {"account": victim["account"]} if victim_query else {}
    request_text = url + orjson.dumps(query).decode() + orjson.dumps(body).decode()
    with httpx.Client(timeout=10.0) as http:
        response = http.request(
            method,
            url,
            params=query,
            content=None if body is None else orjson.dumps(body),
            headers={"Authorization": f"Bearer {token}"},
        )
    text = response.text
    assert response.status_code != 500, text
    filtered = path in ("/prices", "/prices/{model}", "/audit", "/admin-tokens")
    if (
        "{account}" in path
        or "{token_id}" in path
        or (victim_query and filtered and method == "GET")
    ):
        assert response.status_code in (403, 404), (method, url, text)
    if "{account}" in path and method == "GET":
        assert response.status_code == 404, (method, url, text)
    for what, marker in _victim_markers(victim).items():
        if marker not in request_text:
            assert marker not in text, f"{method} {url} revealed the other account's {what}"
    # Nothing the attacker did changed the other account.
    entries: Any = sync_redis.xrange(keys.AUDIT_STREAM)
    for _id, fields in entries:
        record = orjson.loads(fields[b"record"])
        assert not (record["account"] == victim["account"] and record["actor"] != "operator")
