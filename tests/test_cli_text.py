"""The CLI as a newcomer reads it: help that lists every group and provider, `clients add` with
limits, key states, and `clients show` in readable fields (never Python reprs)."""

from __future__ import annotations

import argparse
import re
import time

import pytest
import redis

from gateway.cli import build_parser
from gateway.cli_text import fields_text, key_state, value_text
from gateway.handlers.registry import provider_names
from gateway.limits.checks import LIMIT_FIELDS
from gateway.store import keys
from gateway.store.records import ApiKeyRecord, ClientRecord
from tests.conftest import ACCOUNT, REPO, Cli

PYTHON_REPRS = re.compile(r"\(\)|\('|None|\{'|\[\]|\['|True|False")


def _groups() -> dict[str, argparse.ArgumentParser]:
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no command groups")


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([*argv, "--help"])
    assert done.value.code == 0
    return capsys.readouterr().out


def test_gateway_help_lists_every_command_group(capsys: pytest.CaptureFixture[str]) -> None:
    groups = _groups()
    assert {"serve", "clients", "keys", "usage", "domains", "journal", "plugins"} <= set(groups)
    text = _help(capsys)
    for name in groups:
        assert re.search(rf"^    {name} +\S", text, re.MULTILINE), f"{name} missing from --help"
    description = build_parser().description or ""
    for name in set(groups) - {"serve"}:
        assert f"`{name}`" in description, f"the description forgets {name}"


def test_readme_lists_every_command_group() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## Command line") :]
    for name in _groups():
        assert f"gateway {name} " in block, f"README's command list forgets `gateway {name}`"


def test_clients_add_help_lists_every_installed_provider(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_help(capsys, "clients", "add").split())
    assert set(provider_names()) >= {"openai", "echo", "azure"}
    assert f"installed here: {', '.join(provider_names())}" in text


def test_clients_add_takes_the_same_limit_options_as_update() -> None:
    groups = _groups()
    actions = groups["clients"]._actions
    commands = next(a for a in actions if isinstance(a, argparse._SubParsersAction)).choices

    def limit_options(parser: argparse.ArgumentParser) -> set[str]:
        return {o for a in parser._actions for o in a.option_strings if a.dest in LIMIT_FIELDS}

    assert limit_options(commands["add"]) == limit_options(commands["update"])
    assert limit_options(commands["add"]) == {"--" + f.replace("_", "-") for f in LIMIT_FIELDS}


def test_clients_add_with_limits_stores_them(cli: Cli, sync_redis: redis.Redis) -> None:
    added = cli(
        "clients", "add", "bot", "--account", ACCOUNT, "--provider", "echo",
        "--rpm", "5", "--tpm", "1000", "--max-concurrent", "2",
        "--tokens-per-day", "100000", "--tokens-per-month", "none", "--json",
    )  # fmt: skip
    assert added.code == 0, added.err
    expected = {
        "rpm": 5,
        "tpm": 1000,
        "max_concurrent": 2,
        "tokens_per_day": 100000,
        "tokens_per_month": None,
    }
    assert {name: added.json[name] for name in LIMIT_FIELDS} == expected
    stored = ClientRecord.from_json(sync_redis.get(keys.client(ACCOUNT, "bot")) or b"")
    assert {name: getattr(stored, name) for name in LIMIT_FIELDS} == expected
    text = cli("clients", "add", "bot2", "--account", ACCOUNT, "--provider", "echo", "--rpm", "7")
    assert text.code == 0
    assert "rpm=7" in text.out
    with pytest.raises(SystemExit) as bad:
        cli("clients", "add", "bot3", "--account", ACCOUNT, "--provider", "echo", "--rpm", "-1")
    assert bad.value.code == 2


def test_keys_list_says_expired_revoked_or_active(cli: Cli, sync_redis: redis.Redis) -> None:
    ids = {}
    for name, extra in (("live", ()), ("old", ("--expires-in", "1s")), ("gone", ())):
        created = cli("keys", "create", "--account", ACCOUNT, "--name", name, *extra, "--json")
        assert created.code == 0, created.err
        ids[name] = created.json["id"]
    assert cli("keys", "revoke", ids["gone"]).code == 0
    # Expire "old" now, without waiting: its stored expiry moves into the past.
    raw = sync_redis.get(keys.api_key(ids["old"]))
    assert raw is not None
    record = ApiKeyRecord.from_json(raw)
    past = ApiKeyRecord(**{**record.to_dict(), "expires_at": time.time() - 1})
    sync_redis.set(keys.api_key(ids["old"]), past.to_json())
    listed = cli("keys", "list", "--account", ACCOUNT)
    assert listed.code == 0
    states = {line.split()[1]: line.split()[-1] for line in listed.out.splitlines()}
    assert states == {"live": "active", "old": "expired", "gone": "revoked"}


def test_key_state_boundaries() -> None:
    assert key_state({"revoked_at": None, "expires_at": None}) == "active"
    assert key_state({"revoked_at": None, "expires_at": 100.0}, now=99.9) == "active"
    assert key_state({"revoked_at": None, "expires_at": 100.0}, now=100.0) == "expired"
    assert key_state({"revoked_at": 5.0, "expires_at": 100.0}, now=200.0) == "revoked"


def test_clients_show_prints_readable_fields(cli: Cli) -> None:
    added = cli(
        "clients", "add", "chat", "--account", ACCOUNT, "--provider", "openai",
        "--upstream-url", "http://127.0.0.1:9/v1", "--upstream-key-env", "UPSTREAM",
        "--cors-origin", "https://a.test", "--cors-origin", "https://b.test",
        "--alias", "fast=gpt-4o-mini", "--allow-model", "gpt-4o-mini", "--rpm", "3",
    )  # fmt: skip
    assert added.code == 0, added.err
    shown = cli("clients", "show", "chat", "--account", ACCOUNT)
    assert shown.code == 0
    lines = shown.out.splitlines()
    assert lines[0] == f"hostname:             chat.{ACCOUNT}.api.localhost"
    fields = dict(re.split(r":\s+", line.strip(), maxsplit=1) for line in lines if ": " in line)
    assert fields["cors_origins"] == "https://a.test, https://b.test"
    assert fields["allowed_models"] == "gpt-4o-mini"
    assert fields["aliases"] == '{"fast":"gpt-4o-mini"}'
    assert fields["rpm"] == "3"
    assert fields["tpm"] == "-"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", fields["created_at"])
    assert "  mode:" in shown.out  # policy fields, indented under `policy:`
    assert not PYTHON_REPRS.search(shown.out), shown.out


def test_value_text_shapes() -> None:
    assert value_text("x", None) == value_text("x", "") == value_text("x", ()) == "-"
    assert value_text("x", ("a", "b")) == "a, b"
    assert value_text("x", [{"url": "u"}]) == '[{"url":"u"}]'
    assert value_text("x", True) == "yes"
    assert value_text("verified_at", 0) == "1970-01-01 00:00:00 UTC"
    assert fields_text({"a": 1, "long_name": None}) == "a:         1\nlong_name: -"
