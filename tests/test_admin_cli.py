"""`gateway accounts | prices | admin-tokens | audit`, and the audit stream the CLI's writes
leave: one record per write, secrets masked."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import redis

from gateway.auth import hash_key
from gateway.store import keys
from tests.conftest import ACCOUNT, OTHER_ACCOUNT, TEST_SECRET, Cli, Result

UPSTREAM_SECRET = "sk-upstream-never-in-the-audit-42"


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    assert result.err == ""
    return result


def _failed(result: Result, mentions: str) -> None:
    assert result.code == 1, result.out
    assert result.out == ""
    assert result.err.startswith("gateway: ")
    assert result.err.count("\n") == 1
    assert mentions in result.err


def _entries(sync_redis: redis.Redis) -> list[bytes]:
    entries: Any = sync_redis.xrange(keys.AUDIT_STREAM)
    return [fields[b"record"] for _id, fields in entries]


def _audit(sync_redis: redis.Redis) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in _entries(sync_redis)]


def test_accounts_add_update_show_list_remove(cli: Cli, sync_redis: redis.Redis) -> None:
    added = _ok(
        cli("accounts", "add", ACCOUNT, "--name", "Acme", "--usd-per-day", "25.5", "--rpm", "600",
            "--json")
    ).json  # fmt: skip
    assert added["name"] == "Acme"
    assert added["usd_per_day"] == 25.5
    assert added["rpm"] == 600
    assert added["usd_per_month"] is None
    updated = _ok(
        cli("accounts", "update", ACCOUNT, "--usd-per-month", "500", "--rpm", "none", "--json")
    ).json
    assert updated["usd_per_month"] == 500.0
    assert updated["rpm"] is None
    assert updated["name"] == "Acme"
    assert updated["usd_per_day"] == 25.5
    shown = _ok(cli("accounts", "show", ACCOUNT, "--json")).json
    assert shown == updated
    _ok(cli("accounts", "add", OTHER_ACCOUNT))
    listed = _ok(cli("accounts", "list", "--json")).json
    assert [a["account"] for a in listed] == sorted([ACCOUNT, OTHER_ACCOUNT])
    text = _ok(cli("accounts", "list")).out
    assert "Acme" in text
    assert OTHER_ACCOUNT in text
    _failed(cli("accounts", "add", ACCOUNT), "already exists")
    _ok(cli("clients", "add", "bot", "--account", ACCOUNT, "--provider", "echo"))
    _failed(cli("accounts", "remove", ACCOUNT), "still has clients")
    _ok(cli("clients", "remove", "bot", "--account", ACCOUNT))
    token = _ok(cli("admin-tokens", "create", "--account", ACCOUNT, "--json")).json
    _failed(cli("accounts", "remove", ACCOUNT), "still has active admin tokens")
    _ok(cli("admin-tokens", "revoke", token["id"]))
    assert _ok(cli("accounts", "remove", ACCOUNT, "--json")).json["account"] == ACCOUNT
    _failed(cli("accounts", "show", ACCOUNT), "no account")
    assert sync_redis.get(keys.account(ACCOUNT)) is None


@pytest.mark.parametrize(
    "argv",
    [
        ("accounts", "add", "12-34"),
        ("accounts", "add", ACCOUNT, "--usd-per-day", "-1"),
        ("accounts", "add", ACCOUNT, "--usd-per-day", "lots"),
        ("accounts", "update", ACCOUNT, "--tpm", "1.5"),
        ("prices", "set", "m", "--input-per-mtok", "-2", "--output-per-mtok", "1"),
        ("prices", "set", "m", "--input-per-mtok", "1"),
        ("prices", "set", "m", "--input-per-mtok", "1", "--output-per-mtok", "1", "--client", "x"),
        ("admin-tokens", "create", "--account", "nope"),
        ("admin-tokens", "create", "--account", ACCOUNT, "--expires-in", "soon"),
    ],
)
def test_bad_arguments_are_usage_errors(cli: Cli, argv: tuple[str, ...]) -> None:
    if argv[-2:] == ("--client", "x"):  # well-formed, refused by the service: exit 1
        _failed(cli(*argv), "needs its account")
        return
    with pytest.raises(SystemExit) as caught:
        cli(*argv)
    assert caught.value.code == 2


def test_prices_set_list_remove(cli: Cli) -> None:
    _ok(cli("clients", "add", "bot", "--account", ACCOUNT, "--provider", "echo"))
    glob = _ok(
        cli("prices", "set", "llama-3-70b", "--input-per-mtok", "0.59", "--output-per-mtok",
            "0.79", "--json")
    ).json  # fmt: skip
    assert glob == {**glob, "level": "global", "input_per_mtok": "0.59", "account": None}
    client = _ok(
        cli("prices", "set", "llama-3-70b", "--input-per-mtok", "0.1", "--output-per-mtok", "0.2",
            "--cached-input-per-mtok", "0.05", "--account", ACCOUNT, "--client", "bot", "--json")
    ).json  # fmt: skip
    assert client["level"] == "client"
    assert client["cached_input_per_mtok"] == "0.05"
    _failed(
        cli("prices", "set", "m", "--input-per-mtok", "1", "--output-per-mtok", "1",
            "--account", ACCOUNT, "--client", "ghost"),
        "no client",
    )  # fmt: skip
    listed = _ok(cli("prices", "list", "--json")).json
    assert [(p["level"], p["model"]) for p in listed] == [
        ("global", "llama-3-70b"),
        ("client", "llama-3-70b"),
    ]
    assert "USD per 1M tokens" in _ok(cli("prices", "list")).out
    _ok(cli("prices", "remove", "llama-3-70b", "--account", ACCOUNT, "--client", "bot"))
    _failed(cli("prices", "remove", "llama-3-70b", "--account", ACCOUNT), "no price override")
    assert len(_ok(cli("prices", "list", "--json")).json) == 1


def test_admin_tokens_create_list_revoke(cli: Cli, sync_redis: redis.Redis) -> None:
    _failed(cli("admin-tokens", "create", "--account", ACCOUNT), "no account")
    _ok(cli("accounts", "add", ACCOUNT))
    created = _ok(
        cli("admin-tokens", "create", "--account", ACCOUNT, "--read-only", "--expires-in", "30d",
            "--name", "dash", "--json")
    ).json  # fmt: skip
    token = created["token"]
    assert token.startswith("gwa_")
    assert created["read_only"] is True
    assert created["expires_at"] - created["created_at"] == pytest.approx(30 * 86400)
    stored = sync_redis.get(keys.admin_token(created["id"]))
    assert stored is not None
    assert token.encode() not in stored
    assert orjson.loads(stored)["hash"] == hash_key(TEST_SECRET, token)
    listed = _ok(cli("admin-tokens", "list", "--json")).json
    assert [t["id"] for t in listed] == [created["id"]]
    assert "token" not in listed[0]
    assert "hash" not in listed[0]
    revoked = _ok(cli("admin-tokens", "revoke", created["id"], "--json")).json
    assert revoked["revoked_at"] is not None
    assert "revoked" in _ok(cli("admin-tokens", "list")).out


def test_every_cli_write_is_audited_once_with_secrets_masked(
    cli: Cli, sync_redis: redis.Redis
) -> None:
    writes: list[tuple[str, ...]] = [
        ("accounts", "add", ACCOUNT, "--name", "Acme"),
        ("accounts", "update", ACCOUNT, "--usd-per-day", "10"),
        ("clients", "add", "bot", "--account", ACCOUNT, "--provider", "openai",
         "--upstream-url", "http://127.0.0.1:9/v1", "--upstream-key", UPSTREAM_SECRET),
        ("clients", "update", "bot", "--account", ACCOUNT, "--rpm", "5"),
        ("keys", "create", "--account", ACCOUNT, "--name", "k"),
        ("domains", "add", "api.acme.test", "--account", ACCOUNT, "--client", "bot"),
        ("domains", "verify", "api.acme.test", "--force"),
        ("domains", "remove", "api.acme.test"),
        ("prices", "set", "m", "--input-per-mtok", "1", "--output-per-mtok", "2"),
        ("prices", "remove", "m"),
        ("admin-tokens", "create", "--account", ACCOUNT),
    ]  # fmt: skip
    secrets: list[str] = [UPSTREAM_SECRET]
    for argv in writes:
        out = _ok(cli(*argv, "--json")).json
        # An API key or admin token (a domain's "token" is its public DNS challenge).
        secrets += [v for v in (out.get("key"), out.get("token")) if str(v)[:4] in ("gwk_", "gwa_")]
    assert len(secrets) == 3  # the upstream key, the API key, the admin token
    key_id = next(r["target"] for r in _audit(sync_redis) if r["action"] == "keys.create")
    token_id = next(r["target"] for r in _audit(sync_redis) if r["action"] == "admin_tokens.create")
    later: list[tuple[str, ...]] = [
        ("keys", "update", key_id, "--tpm", "100"),
        ("keys", "revoke", key_id),
        ("admin-tokens", "revoke", token_id),
        ("clients", "remove", "bot", "--account", ACCOUNT),
    ]
    for argv in later:
        _ok(cli(*argv))
    records = _audit(sync_redis)
    assert [r["action"] for r in records] == [
        "accounts.add", "accounts.update", "clients.add", "clients.update", "keys.create",
        "domains.add", "domains.verify", "domains.remove", "prices.set", "prices.remove",
        "admin_tokens.create", "keys.update", "keys.revoke", "admin_tokens.revoke",
        "clients.remove",
    ]  # fmt: skip
    assert all(r["actor"] == "operator" and r["via"] == "cli" for r in records)
    raw = b"".join(_entries(sync_redis))
    for secret in secrets:
        assert secret.encode() not in raw
    assert b'"hash"' not in raw
    update = records[3]
    assert update["before"]["rpm"] is None
    assert update["after"]["rpm"] == 5
    assert update["after"]["upstream_key"] == "***"
    # Reads leave nothing; failed writes leave nothing.
    _ok(cli("accounts", "list"))
    _failed(cli("accounts", "add", ACCOUNT), "already exists")
    assert len(_audit(sync_redis)) == len(records)
    tail = _ok(cli("audit", "tail", "-n", "3", "--json")).json
    assert [r["action"] for r in tail] == ["clients.remove", "admin_tokens.revoke", "keys.revoke"]
    text = _ok(cli("audit", "tail", "-n", "2")).out.splitlines()
    assert text[-1].split("  ")[2] == "clients.remove"  # oldest first on a terminal
