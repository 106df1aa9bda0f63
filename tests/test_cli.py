"""The `gateway` command, run in-process through `gateway.cli.main` against the suite's Redis."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from gateway.auth import hash_key, key_id_of
from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord
from tests.conftest import ACCOUNT, OTHER_ACCOUNT, TEST_SECRET, Cli, Result

UPSTREAM_SECRET = "sk-upstream-never-printed-123"


def _ok(result: Result) -> Result:
    assert result.code == 0, result.err
    assert result.err == ""
    return result


def _failed(result: Result, mentions: str) -> None:
    assert result.code == 1
    assert result.out == ""
    assert result.err.startswith("gateway: ")
    assert result.err.count("\n") == 1, "the reason is one line"
    assert mentions in result.err


def _usage_error(cli: Cli, *argv: str) -> None:
    with pytest.raises(SystemExit) as caught:
        cli(*argv)
    assert caught.value.code == 2


def _add_echo(cli: Cli, name: str = "support", account: str = ACCOUNT) -> Result:
    return _ok(cli("clients", "add", name, "--account", account, "--provider", "echo"))


# --- clients --------------------------------------------------------------------------------


def test_clients_add_text_and_json(cli: Cli, sync_redis: redis.Redis) -> None:
    text = _add_echo(cli)
    assert text.out == f"added support.{ACCOUNT}.api.localhost  provider=echo  upstream=-\n"
    data = _ok(
        cli(
            "clients",
            "add",
            "chat",
            "--account",
            ACCOUNT,
            "--provider",
            "openai",
            "--upstream-url",
            "http://127.0.0.1:9/v1/",
            "--upstream-key-env",
            "OPENAI_API_KEY",
            "--cors-origin",
            "https://app.test",
            "--cors-origin",
            "https://b.test",
            "--json",
        )
    ).json
    assert data["hostname"] == f"chat.{ACCOUNT}.api.localhost"
    assert data["upstream_url"] == "http://127.0.0.1:9/v1"
    assert data["upstream_key_env"] == "OPENAI_API_KEY"
    assert data["cors_origins"] == ["https://app.test", "https://b.test"]
    stored = ClientRecord.from_json(sync_redis.get(keys.client(ACCOUNT, "chat")) or b"")
    assert stored.provider == "openai"


def test_clients_add_failures(cli: Cli) -> None:
    _add_echo(cli)
    _failed(cli("clients", "add", "support", "--account", ACCOUNT, "--provider", "echo"), "exists")
    _failed(
        cli("clients", "add", "x", "--account", ACCOUNT, "--provider", "nope"), "unknown provider"
    )
    _failed(
        cli("clients", "add", "x", "--account", ACCOUNT, "--provider", "openai"), "--upstream-url"
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("clients", "add", "Bad_Name", "--account", ACCOUNT, "--provider", "echo"),
        ("clients", "add", "x", "--account", "1234", "--provider", "echo"),
        ("clients", "add", "x", "--provider", "echo"),
        ("clients", "add", "x", "--account", ACCOUNT),
        ("clients", "add", "x", "--account", ACCOUNT, "--provider", "openai", "--upstream-url", "ftp://x"),
        (
            "clients", "add", "x", "--account", ACCOUNT, "--provider", "echo",
            "--upstream-key", "a", "--upstream-key-env", "B",
        ),
        ("clients",),
        ("clients", "rename", "x"),
        ("clients", "show", "x"),
        ("keys", "create", "--account", ACCOUNT),
        ("keys", "create", "--account", ACCOUNT, "--name", "n", "--expires-in", "soon"),
        ("keys", "revoke"),
        ("domains", "add", "api.acme.test", "--account", ACCOUNT),
        ("domains", "verify", "api.acme.test", "--dns-port", "fifty"),
        ("domains",),
        (),
        ("nonsense",),
        ("clients", "list", "--json", "--extra"),
    ],
)  # fmt: skip
def test_usage_errors_exit_2(
    cli: Cli, argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    _usage_error(cli, *argv)
    assert "usage:" in capsys.readouterr().err


def test_clients_list_show_remove(cli: Cli) -> None:
    assert _ok(cli("clients", "list")).out == "no clients\n"
    assert _ok(cli("clients", "list", "--json")).json == []
    _add_echo(cli, "b")
    _add_echo(cli, "a")
    _add_echo(cli, "z", OTHER_ACCOUNT)
    lines = _ok(cli("clients", "list", "--account", ACCOUNT)).out.splitlines()
    assert [line.split()[0] for line in lines] == [
        f"a.{ACCOUNT}.api.localhost",
        f"b.{ACCOUNT}.api.localhost",
    ]
    every = _ok(cli("clients", "list", "--json")).json
    assert [(r["account"], r["name"]) for r in every] == [
        (OTHER_ACCOUNT, "z"),
        (ACCOUNT, "a"),
        (ACCOUNT, "b"),
    ]
    shown = _ok(cli("clients", "show", "a", "--account", ACCOUNT)).out
    assert re.search(rf"^hostname: +a\.{ACCOUNT}\.api\.localhost$", shown, re.MULTILINE)
    assert re.search(r"^provider: +echo$", shown, re.MULTILINE)
    assert _ok(cli("clients", "show", "a", "--account", ACCOUNT, "--json")).json["name"] == "a"
    removed = _ok(cli("clients", "remove", "a", "--account", ACCOUNT))
    assert removed.out == f"removed a.{ACCOUNT}.api.localhost\n"
    assert _ok(cli("clients", "remove", "b", "--account", ACCOUNT, "--json")).json["name"] == "b"
    assert _ok(cli("clients", "list", "--account", ACCOUNT)).out == "no clients\n"
    _failed(cli("clients", "show", "a", "--account", ACCOUNT), "no client 'a'")
    _failed(cli("clients", "remove", "a", "--account", ACCOUNT), "no client 'a'")


def test_stored_upstream_key_is_never_printed(cli: Cli, sync_redis: redis.Redis) -> None:
    add = ["clients", "add", "chat", "--account", ACCOUNT, "--provider", "openai"]
    add += ["--upstream-url", "http://127.0.0.1:9/v1", "--upstream-key", UPSTREAM_SECRET]
    outputs = [_ok(cli(*add)), _ok(cli(*add[:2], "other", *add[3:], "--json"))]
    for flags in ((), ("--json",)):
        outputs.append(_ok(cli("clients", "list", *flags)))
        outputs.append(_ok(cli("clients", "show", "chat", "--account", ACCOUNT, *flags)))
    outputs.append(_ok(cli("clients", "remove", "other", "--account", ACCOUNT, "--json")))
    outputs.append(_ok(cli("clients", "remove", "chat", "--account", ACCOUNT)))
    for result in outputs:
        assert UPSTREAM_SECRET not in result.out + result.err
    assert outputs[1].json["upstream_key"] == "***"
    # It was stored (the gateway needs it), only never shown.
    _ok(cli(*add))
    assert UPSTREAM_SECRET.encode() in (sync_redis.get(keys.client(ACCOUNT, "chat")) or b"")


# --- keys -----------------------------------------------------------------------------------


def test_keys_create_json_has_id_and_key(cli: Cli, sync_redis: redis.Redis) -> None:
    _add_echo(cli)
    data = _ok(cli("keys", "create", "--account", ACCOUNT, "--name", "ci", "--json")).json
    assert key_id_of(data["key"]) == data["id"]
    assert data["clients"] == []
    assert data["expires_at"] is None
    assert "hash" not in data
    stored = ApiKeyRecord.from_json(sync_redis.get(keys.api_key(data["id"])) or b"")
    assert stored.hash == hash_key(TEST_SECRET, data["key"])
    assert data["key"].encode() not in (sync_redis.get(keys.api_key(data["id"])) or b"")


def test_keys_create_text_limited_and_expiring(cli: Cli) -> None:
    _add_echo(cli)
    _add_echo(cli, "billing")
    text = _ok(
        cli(
            "keys", "create", "--account", ACCOUNT, "--name", "ci",
            "--client", "support", "--client", "billing", "--expires-in", "2h",
        )
    ).out  # fmt: skip
    first, key, note = text.splitlines()
    assert first == f"key id {key_id_of(key)}"
    assert "shown once" in note
    listed = _ok(cli("keys", "list", "--account", ACCOUNT, "--json")).json
    assert len(listed) == 1
    assert listed[0]["clients"] == ["support", "billing"]
    assert listed[0]["expires_at"] - listed[0]["created_at"] == pytest.approx(7200)
    _failed(
        cli("keys", "create", "--account", ACCOUNT, "--name", "x", "--client", "ghost"),
        "no client 'ghost'",
    )


def test_keys_list_and_revoke(cli: Cli) -> None:
    assert _ok(cli("keys", "list", "--account", ACCOUNT)).out == "no keys\n"
    created = _ok(cli("keys", "create", "--account", ACCOUNT, "--name", "ci", "--json")).json
    line = _ok(cli("keys", "list", "--account", ACCOUNT)).out
    assert line == f"{created['id']}  ci  clients=*  active\n"
    assert created["key"] not in line
    assert _ok(cli("keys", "revoke", created["id"])).out == f"revoked {created['id']}\n"
    again = _ok(cli("keys", "revoke", created["id"], "--json")).json
    assert again["revoked_at"] is not None
    listed = _ok(cli("keys", "list", "--account", ACCOUNT)).out
    assert listed == f"{created['id']}  ci  clients=*  revoked\n"
    assert _ok(cli("keys", "list", "--account", OTHER_ACCOUNT, "--json")).json == []
    _failed(cli("keys", "revoke", "ffffffffffff"), "no key with id")


# --- domains (DNS verification itself: tests/test_domains.py) ------------------------------


def test_domains_add_list_verify_remove(cli: Cli) -> None:
    _add_echo(cli)
    assert _ok(cli("domains", "list")).out == "no domains\n"
    text = _ok(cli("domains", "add", "API.Acme.Test", "--account", ACCOUNT, "--client", "support"))
    assert text.out.startswith("added api.acme.test (unverified)")
    assert '_gateway-challenge.api.acme.test. TXT "gateway-verify=' in text.out
    data = _ok(
        cli(
            "domains",
            "add",
            "chat.acme.test",
            "--account",
            ACCOUNT,
            "--client",
            "support",
            "--json",
        )
    ).json
    assert data["dns_record"] == {
        "name": "_gateway-challenge.chat.acme.test",
        "type": "TXT",
        "value": "gateway-verify=" + data["token"],
    }
    assert data["verified"] is False
    listed = _ok(cli("domains", "list", "--account", ACCOUNT)).out.splitlines()
    assert listed == [
        f"api.acme.test  {ACCOUNT}/support  unverified",
        f"chat.acme.test  {ACCOUNT}/support  unverified",
    ]
    verified = _ok(cli("domains", "verify", "api.acme.test", "--force"))
    assert verified.out == "verified api.acme.test: it now routes to support\n"
    rows = _ok(cli("domains", "list", "--client", "support", "--json")).json
    assert [(r["hostname"], r["verified"]) for r in rows] == [
        ("api.acme.test", True),
        ("chat.acme.test", False),
    ]
    assert _ok(cli("domains", "remove", "api.acme.test")).out == "removed api.acme.test\n"
    assert _ok(cli("domains", "remove", "Chat.Acme.Test.", "--json")).json["hostname"] == (
        "chat.acme.test"
    )
    assert _ok(cli("domains", "list", "--json")).json == []


def test_domains_failures(cli: Cli) -> None:
    _add_echo(cli)
    claim = ["--account", ACCOUNT, "--client", "support"]
    _failed(
        cli("domains", "add", "x.acme.test", "--account", ACCOUNT, "--client", "nope"), "no client"
    )
    _failed(cli("domains", "add", f"a.{ACCOUNT}.api.localhost", *claim), "gateway's own domain")
    _failed(cli("domains", "add", "api.localhost", *claim), "gateway's own domain")
    _failed(cli("domains", "add", "bad_host.test", *claim), "not a valid hostname")
    _failed(cli("domains", "add", "api.acme.test:443", *claim), "not a valid hostname")
    _ok(cli("domains", "add", "api.acme.test", *claim))
    _failed(cli("domains", "add", "api.acme.test", *claim), "already claimed")
    _failed(cli("domains", "verify", "ghost.acme.test", "--force"), "add it first")
    _failed(cli("domains", "remove", "ghost.acme.test"), "no custom domain")


def test_unreachable_redis_is_exit_1(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_REDIS_URL", "redis://127.0.0.1:1/0")
    result = cli("clients", "list")
    assert result.code == 1
    assert result.err.startswith("gateway: ")
    assert result.err.count("\n") == 1


def test_bad_configuration_is_exit_1(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_PORT", "eighty")
    _failed(cli("clients", "list"), "GATEWAY_PORT")


def test_missing_secret_is_exit_1(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GATEWAY_SECRET")
    _add_echo(cli)
    _failed(cli("keys", "create", "--account", ACCOUNT, "--name", "ci"), "GATEWAY_SECRET")


# --- the installed command ------------------------------------------------------------------


def _gateway_process(*argv: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return subprocess.run(
        [sys.executable, "-m", "gateway", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def test_gateway_command_help(tmp_path: Path) -> None:
    done = _gateway_process("--help", tmp_path=tmp_path)
    assert done.returncode == 0
    for command in ("serve", "clients", "keys", "domains"):
        assert command in done.stdout


def test_gateway_command_usage_error_is_exit_2(tmp_path: Path) -> None:
    done = _gateway_process("clients", "add", "Bad_Name", tmp_path=tmp_path)
    assert done.returncode == 2
    assert done.stdout == ""
    assert "usage: gateway clients add" in done.stderr
