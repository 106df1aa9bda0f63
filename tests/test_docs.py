"""The documents a newcomer reads first stay true to the code: every setting in
`docs/configuration.md` (name, variable, default), every error code in the README's table, and
gateway key examples in the real `gwk_` form."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from typing import Any

import pytest

from gateway.config import ENV_PREFIX, Settings
from tests.conftest import REPO

CONFIGURATION = REPO / "docs" / "configuration.md"
ROW = re.compile(r"^\| `([a-z_]+)` \| `([A-Z_]+)` \| `([^`]*)` \| (.+) \|$")
CODE_IN_SOURCE = re.compile(r'(?:code=|default_code = )"([a-z_]+)"')


def _documented_settings() -> dict[str, tuple[str, str, str]]:
    rows: dict[str, tuple[str, str, str]] = {}
    for line in CONFIGURATION.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            name, variable, default, meaning = match.groups()
            assert name not in rows, f"{name} is documented twice"
            rows[name] = (variable, default, meaning)
    return rows


def test_configuration_md_lists_every_setting_and_nothing_else() -> None:
    fields = {field.name for field in dataclasses.fields(Settings)}
    documented = set(_documented_settings())
    assert fields - documented == set(), "settings missing from docs/configuration.md"
    assert documented - fields == set(), "docs/configuration.md names settings that do not exist"


@pytest.mark.parametrize("field", dataclasses.fields(Settings), ids=lambda f: f.name)
def test_each_documented_setting_has_its_variable_and_default(field: Any) -> None:
    variable, default, meaning = _documented_settings()[field.name]
    assert variable == ENV_PREFIX + field.name.upper()
    documented = tomllib.loads(f"value = {default}")["value"]  # written as in gateway.toml
    actual = Settings().__getattribute__(field.name)
    assert type(documented) is type(actual), (default, actual)
    assert documented == actual
    assert len(meaning.strip()) > 20, f"{field.name}: say what it means"


def test_configuration_md_examples_use_only_real_variables() -> None:
    text = CONFIGURATION.read_text(encoding="utf-8")
    known = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)} | {"GATEWAY_CONFIG"}
    assert set(re.findall(r"\bGATEWAY_[A-Z_]+", text)) <= known


def _source_codes() -> set[str]:
    codes: set[str] = set()
    for path in (REPO / "gateway").rglob("*.py"):
        codes |= set(CODE_IN_SOURCE.findall(path.read_text(encoding="utf-8")))
    return codes


def test_readme_error_table_names_every_error_code() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("| status | when | `code` |") : readme.index("## Watching")]
    missing = {code for code in _source_codes() if f"`{code}`" not in section}
    assert {"rate_limit_exceeded", "insufficient_quota", "endpoint_not_supported"} <= (
        _source_codes()
    )
    assert missing == set(), "README's error table forgets these codes"


DOCUMENTS = sorted([REPO / "README.md", *(REPO / "docs").glob("*.md")])
KEY_EXAMPLE = re.compile(
    r"""(?:api_key=|apiKey:\s*|"api_key":\s*)"([^"]*)"|Authorization: Bearer (?!<)(\S+?)["`\s]"""
)


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_gateway_key_examples_use_the_gwk_form(document: Any) -> None:
    text = document.read_text(encoding="utf-8")
    for match in KEY_EXAMPLE.finditer(text):
        example = match.group(1) or match.group(2)
        if example.startswith(("$", "KEY", "WEATHER")):  # a variable, or an upstream's key
            continue
        assert example.startswith("gwk_"), f"{document.name}: key example {example!r}"
    assert not re.search(r"\bgw-[.…]", text), f"{document.name}: an old `gw-` key example"
