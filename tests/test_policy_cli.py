"""`gateway clients add/update` policy flags and policy files, against the suite's Redis."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from tests.conftest import ACCOUNT

CLIENT = "policy-cli"


@pytest.fixture
def cli_env(redis_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GATEWAY_REDIS_URL", redis_url)
    monkeypatch.setenv("GATEWAY_VAR_DIR", str(tmp_path / "var"))
    main(["clients", "remove", CLIENT, "--account", ACCOUNT])  # a leftover from an earlier run


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, object]:
    assert main([*argv, "--json"]) == 0
    data = orjson.loads(capsys.readouterr().out)
    assert isinstance(data, dict)
    return data


def test_update_merges_flags_into_the_stored_policy(
    cli_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("--account", ACCOUNT)
    _run(capsys, "clients", "add", CLIENT, *base, "--provider", "echo", "--alias", "fast=echo-1")
    record = _run(
        capsys,
        "clients",
        "update",
        CLIENT,
        *base,
        "--alias",
        "smart=gpt-4o",
        "--allow-model",
        "gpt-4o",
        "--default",
        "temperature=0.2",
        "--force",
        "user=anon",
        "--max-tokens-ceiling",
        "512",
        "--strip",
        "logit_bias",
        "--system-prompt",
        "Be brief.",
        "--system-prompt-mode",
        "always",
        "--upstream-header",
        "OpenAI-Project=proj_1",
    )
    policy = record["policy"]
    assert isinstance(policy, dict)
    assert policy["aliases"] == {"fast": "echo-1", "smart": "gpt-4o"}
    assert policy["allowed_models"] == ["gpt-4o"]
    assert policy["defaults"] == {"temperature": 0.2}
    assert policy["forced"] == {"user": "anon"}
    assert policy["max_tokens_ceiling"] == 512
    assert policy["strip"] == ["logit_bias"]
    assert (policy["system_prompt"], policy["system_prompt_mode"]) == ("Be brief.", "always")
    assert policy["upstream_headers"] == {"OpenAI-Project": "proj_1"}

    shown = _run(capsys, "clients", "update", CLIENT, *base, "--unset", "fast")
    assert shown["policy"]["aliases"] == {"smart": "gpt-4o"}  # type: ignore[index]


def test_policy_file_in_yaml_replaces_the_policy(
    cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ("--account", ACCOUNT)
    _run(capsys, "clients", "add", CLIENT, *base, "--provider", "echo", "--alias", "old=x")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "aliases:\n  fast: gpt-4o-mini\ndefaults:\n  temperature: 0.3\n"
        "fallbacks:\n  - url: https://backup.example/v1\n    key: sk-fallback\n",
        encoding="utf-8",
    )
    record = _run(capsys, "clients", "update", CLIENT, *base, "--policy-file", str(policy_file))
    policy = record["policy"]
    assert isinstance(policy, dict)
    assert policy["aliases"] == {"fast": "gpt-4o-mini"}
    assert policy["defaults"] == {"temperature": 0.3}
    assert policy["fallbacks"] == [
        {"url": "https://backup.example/v1", "key_env": "", "key": "***"}
    ]


def test_policy_file_with_deployments_is_stored_and_kept_by_later_flags(
    cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ("--account", ACCOUNT)
    _run(capsys, "clients", "add", CLIENT, *base, "--provider", "echo")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        "strategy: weighted\nrequest_deadline: 20\ndeployments:\n"
        "  - {url: 'https://a.example/v1', key_env: A_KEY, weight: 3}\n"
        "  - url: https://b.example/v1\n    key: sk-deployment-b\n"
        "    models: {gpt-4o: b-gpt-4o}\n",
        encoding="utf-8",
    )
    record = _run(capsys, "clients", "update", CLIENT, *base, "--policy-file", str(policy_file))
    assert "sk-deployment-b" not in orjson.dumps(record).decode()
    policy = record["policy"]
    assert isinstance(policy, dict)
    assert (policy["strategy"], policy["request_deadline"]) == ("weighted", 20.0)
    assert policy["deployments"] == [
        {"url": "https://a.example/v1", "key_env": "A_KEY", "key": "", "weight": 3.0, "models": {}},
        {
            "url": "https://b.example/v1",
            "key_env": "",
            "key": "***",
            "weight": 1.0,
            "models": {"gpt-4o": "b-gpt-4o"},
        },
    ]
    later = _run(capsys, "clients", "update", CLIENT, *base, "--alias", "fast=gpt-4o")
    assert later["policy"]["deployments"] == policy["deployments"]  # type: ignore[index]


def test_an_openai_client_with_deployments_needs_no_upstream_url(
    cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ("--account", ACCOUNT, "--provider", "openai")
    assert main(["clients", "add", CLIENT, *base]) == 1
    assert "needs --upstream-url (or a policy with deployments)" in capsys.readouterr().err
    policy_file = tmp_path / "policy.json"
    policy_file.write_text('{"deployments": ["https://a.example/v1"]}', encoding="utf-8")
    record = _run(capsys, "clients", "add", CLIENT, *base, "--policy-file", str(policy_file))
    assert record["upstream_url"] in ("", None)
    assert record["policy"]["deployments"][0]["url"] == "https://a.example/v1"  # type: ignore[index]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"alias": {"a": "b"}}', "unknown policy field(s): alias"),
        ('{"strategy": "fastest"}', "strategy must be one of ordered, weighted, least_busy"),
        ('{"deployments": [{"url": "https://a", "weight": 0}]}', "deployments[0].weight"),
        ('{"request_deadline": -1}', "request_deadline must be a positive number"),
        ('{"strip": ["model"]}', "strip may not remove"),
        ('{"mode": "magic"}', "mode must be one of"),
        ("[1, 2]", "must hold an object"),
    ],
)
def test_bad_policy_file_is_refused_with_a_reason(
    cli_env: None,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    content: str,
    message: str,
) -> None:
    _run(capsys, "clients", "add", CLIENT, "--account", ACCOUNT, "--provider", "echo")
    policy_file = tmp_path / "policy.json"
    policy_file.write_text(content, encoding="utf-8")
    argv = ["clients", "update", CLIENT, "--account", ACCOUNT, "--policy-file", str(policy_file)]
    assert main(argv) == 1
    assert message in capsys.readouterr().err


def test_update_of_unknown_client_fails(cli_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        main(["clients", "update", "nobody-here", "--account", ACCOUNT, "--mode", "managed"]) == 1
    )
    assert "no client 'nobody-here'" in capsys.readouterr().err


def test_plugins_add_list_remove(
    cli_env: None, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    base = ("--account", ACCOUNT)
    _run(capsys, "clients", "add", CLIENT, *base, "--provider", "echo", "--mode", "managed")
    manifest = tmp_path / "weather.yaml"
    manifest.write_text(
        "name: get_weather\nkind: http\nselect: {search_terms: [weather]}\n"
        "http:\n  url: https://api.example.com/weather\n"
        "  headers: {Authorization: Bearer s3cret}\n",
        encoding="utf-8",
    )
    added = _run(capsys, "plugins", "add", str(manifest), *base, "--client", CLIENT)
    assert added["header_names"] == ["Authorization"]
    assert "s3cret" not in orjson.dumps(added).decode()
    shown = _run(capsys, "clients", "show", CLIENT, *base)
    assert "s3cret" not in orjson.dumps(shown).decode()
    assert main(["plugins", "list", *base, "--client", CLIENT, "--json"]) == 0
    listed = orjson.loads(capsys.readouterr().out)
    assert [p["name"] for p in listed] == ["get_weather"]
    _run(capsys, "plugins", "remove", "get_weather", *base, "--client", CLIENT)
    assert main(["plugins", "remove", "get_weather", *base, "--client", CLIENT]) == 1
    assert "no plugin 'get_weather'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x", "kind": "static", "select": {"always": true}}', encoding="utf-8")
    assert main(["plugins", "add", str(bad), *base, "--client", CLIENT]) == 1
    assert "static plugin needs static.data" in capsys.readouterr().err
