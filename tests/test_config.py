"""Settings: the dataclass mirrors `config/gateway.toml`; env overrides; clear errors; secret."""

from __future__ import annotations

import dataclasses
import stat
import tomllib
from pathlib import Path

import pytest

from gateway.config import SECRET_FILE_NAME, Settings, load_settings, resolve_secret
from gateway.errors import ConfigError

CONFIG_FILE = Path(__file__).resolve().parents[1] / "config" / "gateway.toml"


def _no_file(tmp_path: Path) -> Path:
    return tmp_path / "absent.toml"


def test_dataclass_defaults_equal_the_shipped_file_both_ways() -> None:
    document = tomllib.loads(CONFIG_FILE.read_text(encoding="utf-8"))
    defaults = {field.name: field.default for field in dataclasses.fields(Settings)}
    assert set(document) == set(defaults)
    for name, value in document.items():
        assert value == defaults[name], name
        assert type(value) is type(defaults[name]), name


def test_loading_the_shipped_file_gives_the_defaults() -> None:
    assert load_settings(CONFIG_FILE, environ={}) == Settings()


def test_gateway_config_names_the_file_to_read(tmp_path: Path) -> None:
    path = tmp_path / "other.toml"
    path.write_text('api_domain = "gw.example.test"\nport = 9001\n', encoding="utf-8")
    settings = load_settings(environ={"GATEWAY_CONFIG": str(path)})
    assert (settings.api_domain, settings.port) == ("gw.example.test", 9001)


@pytest.mark.parametrize(
    ("variable", "raw", "field", "expected"),
    [
        ("GATEWAY_PORT", "9000", "port", 9000),
        ("GATEWAY_WORKERS", " 3 ", "workers", 3),
        ("GATEWAY_UPSTREAM_TIMEOUT", "2.5", "upstream_timeout", 2.5),
        ("GATEWAY_CACHE_TTL", "1", "cache_ttl", 1.0),
        ("GATEWAY_JOURNAL_ENABLED", "false", "journal_enabled", False),
        ("GATEWAY_JOURNAL_ENABLED", "0", "journal_enabled", False),
        ("GATEWAY_ACCESS_LOG", "off", "access_log", False),
        ("GATEWAY_ACCESS_LOG", "YES", "access_log", True),
        ("GATEWAY_REDIS_URL", "redis://127.0.0.1:1/0", "redis_url", "redis://127.0.0.1:1/0"),
        ("GATEWAY_API_DOMAIN", "gw.example.test", "api_domain", "gw.example.test"),
        ("GATEWAY_REQUEST_DEADLINE", "30", "request_deadline", 30.0),
        ("GATEWAY_OUTLIER_CONSECUTIVE_FAILURES", "3", "outlier_consecutive_failures", 3),
        ("GATEWAY_OUTLIER_BASE_EJECTION", "2.5", "outlier_base_ejection", 2.5),
        ("GATEWAY_OUTLIER_MAX_EJECTION", "60", "outlier_max_ejection", 60.0),
    ],
)
def test_environment_overrides_each_type(
    tmp_path: Path, variable: str, raw: str, field: str, expected: object
) -> None:
    settings = load_settings(CONFIG_FILE, environ={variable: raw})
    value = getattr(settings, field)
    assert value == expected
    assert type(value) is type(expected)


def test_environment_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("port = 9001\n", encoding="utf-8")
    assert load_settings(path, environ={"GATEWAY_PORT": "9002"}).port == 9002


@pytest.mark.parametrize(
    ("variable", "raw", "mentions"),
    [
        ("GATEWAY_PORT", "eighty", "GATEWAY_PORT"),
        ("GATEWAY_PORT", "80.5", "GATEWAY_PORT"),
        ("GATEWAY_UPSTREAM_TIMEOUT", "soon", "GATEWAY_UPSTREAM_TIMEOUT"),
        ("GATEWAY_ACCESS_LOG", "maybe", "GATEWAY_ACCESS_LOG"),
        ("GATEWAY_PORT", "70000", "out of range"),
        ("GATEWAY_WORKERS", "0", "workers"),
        ("GATEWAY_MAX_BODY_BYTES", "10", "max_body_bytes"),
        ("GATEWAY_UPSTREAM_CONNECT_TIMEOUT", "0", "timeouts"),
        ("GATEWAY_API_DOMAIN", "API.Example.test", "api_domain"),
        ("GATEWAY_API_DOMAIN", "", "api_domain"),
        ("GATEWAY_REQUEST_DEADLINE", "0", "request_deadline must be positive"),
        ("GATEWAY_REQUEST_DEADLINE", "-1", "request_deadline must be positive"),
        ("GATEWAY_OUTLIER_CONSECUTIVE_FAILURES", "0", "outlier_consecutive_failures"),
        ("GATEWAY_OUTLIER_BASE_EJECTION", "0", "outlier_base_ejection"),
        ("GATEWAY_OUTLIER_BASE_EJECTION", "400", "at most outlier_max_ejection"),
        ("GATEWAY_LOG_LEVEL", "verbose", "log_level 'verbose' is not one of"),
        ("GATEWAY_BODY_TIMEOUT", "0", "body_timeout must be positive"),
    ],
)
def test_bad_environment_value_is_a_clear_config_error(
    tmp_path: Path, variable: str, raw: str, mentions: str
) -> None:
    with pytest.raises(ConfigError, match=mentions):
        load_settings(_no_file(tmp_path), environ={variable: raw})


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("prot = 8080\n", "unknown setting 'prot'"),
        ("port = true\n", "'port': expected int, got a boolean"),
        ('port = "x"\n', "'port': expected int"),
        ("port = 8080.5\n", "'port': expected int"),
        ("access_log = 3\n", "'access_log': expected true or false"),
        ("api_domain = 5\n", "'api_domain': expected str"),
        ("port = \n", "g.toml"),
    ],
)
def test_bad_file_is_a_clear_config_error(tmp_path: Path, text: str, mentions: str) -> None:
    path = tmp_path / "g.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=mentions):
        load_settings(path, environ={})


def test_a_toml_integer_is_accepted_for_a_float_setting(tmp_path: Path) -> None:
    path = tmp_path / "g.toml"
    path.write_text("upstream_timeout = 30\n", encoding="utf-8")
    value = load_settings(path, environ={}).upstream_timeout
    assert value == 30.0
    assert isinstance(value, float)


def test_gateway_config_naming_a_missing_file_is_an_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"GATEWAY_CONFIG names .*nope\.toml"):
        load_settings(environ={"GATEWAY_CONFIG": str(missing)})


def test_empty_gateway_config_means_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config/gateway.toml here: built-in defaults
    assert load_settings(environ={"GATEWAY_CONFIG": ""}) == Settings()


def test_missing_default_file_gives_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings(environ={}) == Settings()


def test_secret_setting_wins_over_the_file(tmp_path: Path) -> None:
    settings = Settings(secret="from-setting", var_dir=str(tmp_path))
    (tmp_path / SECRET_FILE_NAME).write_text("from-file\n", encoding="utf-8")
    assert resolve_secret(settings) == "from-setting"


def test_secret_is_read_from_the_file(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE_NAME).write_text("  from-file \n", encoding="utf-8")
    assert resolve_secret(Settings(var_dir=str(tmp_path))) == "from-file"


def test_secret_file_is_created_private_when_asked(tmp_path: Path) -> None:
    settings = Settings(var_dir=str(tmp_path / "var"))
    created = resolve_secret(settings, create=True)
    path = tmp_path / "var" / SECRET_FILE_NAME
    assert len(created) >= 32
    assert path.read_text(encoding="utf-8").strip() == created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert resolve_secret(settings, create=True) == created  # made once, then reused
    assert resolve_secret(settings) == created


def test_no_secret_and_no_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_SECRET"):
        resolve_secret(Settings(var_dir=str(tmp_path)))
    assert not (tmp_path / SECRET_FILE_NAME).exists()


def test_empty_secret_file_is_replaced_when_creating(tmp_path: Path) -> None:
    (tmp_path / SECRET_FILE_NAME).write_text("\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="GATEWAY_SECRET"):
        resolve_secret(Settings(var_dir=str(tmp_path)))
    created = resolve_secret(Settings(var_dir=str(tmp_path)), create=True)
    assert len(created) >= 32
    assert (tmp_path / SECRET_FILE_NAME).read_text(encoding="utf-8").strip() == created
