"""Host parsing: examples and properties of `normalise_host` and `parse_host` (pure code)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.store.records import ClientRecord
from gateway.tenancy import (
    CustomHost,
    DefaultHost,
    is_account_number,
    is_client_name,
    normalise_host,
    parse_host,
)

API = "api.localhost"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("demo.0000-0000-0000.api.localhost", "demo.0000-0000-0000.api.localhost"),
        ("demo.0000-0000-0000.api.localhost:8080", "demo.0000-0000-0000.api.localhost"),
        ("Demo.0000-0000-0000.API.Localhost", "demo.0000-0000-0000.api.localhost"),
        ("demo.0000-0000-0000.api.localhost.", "demo.0000-0000-0000.api.localhost"),
        ("demo.0000-0000-0000.api.localhost.:443", "demo.0000-0000-0000.api.localhost"),
        ("  api.acme.test  ", "api.acme.test"),
        ("x", "x"),
        ("a" * 63 + ".test", "a" * 63 + ".test"),
        ("[::1]:8080", None),
        ("[::1]", None),
        ("::1", None),
        ("api.acme.test:http", None),
        ("api.acme.test:", None),
        ("", None),
        ("   ", None),
        (".", None),
        ("a..b", None),
        (".a.b", None),
        ("a.b..", None),
        ("-a.test", None),
        ("a-.test", None),
        ("a_b.test", None),
        ("a b.test", None),
        ("a" * 64 + ".test", None),
        (".".join(["a" * 63] * 4), None),  # 255 characters: too long for a hostname
        ("exämple.test", None),
        ("a.test/path", None),
        ("user@a.test", None),
    ],
)
def test_normalise_host(raw: str, expected: str | None) -> None:
    assert normalise_host(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("demo.0000-0000-0000.api.localhost", DefaultHost("demo", "0000-0000-0000")),
        (
            "Customer-Support.3141-5926-5359.api.localhost:8443",
            DefaultHost("customer-support", "3141-5926-5359"),
        ),
        ("a.3141-5926-5359.api.localhost.", DefaultHost("a", "3141-5926-5359")),
        ("api.acme.test", CustomHost("api.acme.test")),
        ("API.Acme.Test:443", CustomHost("api.acme.test")),
        ("evilapi.localhost", CustomHost("evilapi.localhost")),
        (
            "demo.0000-0000-0000.api.localhost.evil.test",
            CustomHost("demo.0000-0000-0000.api.localhost.evil.test"),
        ),
        # Under the api domain but not {client}.{account}: never a tenant, never a custom domain.
        ("api.localhost", None),
        ("API.localhost:8080", None),
        ("x.api.localhost", None),
        ("0000-0000-0000.api.localhost", None),
        ("demo.0000-0000-000.api.localhost", None),
        ("demo.00000-0000-0000.api.localhost", None),
        ("demo.0000_0000_0000.api.localhost", None),
        ("demo.abcd-0000-0000.api.localhost", None),
        ("a.b.0000-0000-0000.api.localhost", None),
        ("demo.0000-0000-0000.x.api.localhost", None),
        ("[::1]:8080", None),
        ("bad_host", None),
    ],
)
def test_parse_host(raw: str, expected: DefaultHost | CustomHost | None) -> None:
    assert parse_host(raw, API) == expected


def test_parse_host_uses_the_configured_api_domain() -> None:
    assert parse_host("a.1234-5678-9012.gw.example.test", "gw.example.test") == DefaultHost(
        "a", "1234-5678-9012"
    )
    assert parse_host("a.1234-5678-9012.api.localhost", "gw.example.test") == CustomHost(
        "a.1234-5678-9012.api.localhost"
    )


@pytest.mark.parametrize("name", ["a", "demo", "customer-support", "x1", "1x", "a" * 63])
def test_valid_client_names(name: str) -> None:
    assert is_client_name(name)


@pytest.mark.parametrize("name", ["", "-a", "a-", "A", "a_b", "a.b", "a" * 64, "ä"])
def test_invalid_client_names(name: str) -> None:
    assert not is_client_name(name)


@pytest.mark.parametrize("account", ["0000-0000-0000", "3141-5926-5359"])
def test_valid_account_numbers(account: str) -> None:
    assert is_account_number(account)


@pytest.mark.parametrize(
    "account", ["", "000-0000-0000", "0000-0000-00000", "0000 0000 0000", "000000000000", "a"]
)
def test_invalid_account_numbers(account: str) -> None:
    assert not is_account_number(account)


_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"
client_names = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?", fullmatch=True)
accounts = st.from_regex(r"[0-9]{4}-[0-9]{4}-[0-9]{4}", fullmatch=True)
api_domains = st.sampled_from(["api.localhost", "gw.example.test", "a.b.c.example"])


@given(
    name=client_names,
    account=accounts,
    api_domain=api_domains,
    port=st.none() | st.integers(min_value=0, max_value=65535),
    upper=st.booleans(),
    trailing_dot=st.booleans(),
)
def test_every_client_hostname_round_trips(
    name: str,
    account: str,
    api_domain: str,
    port: int | None,
    upper: bool,
    trailing_dot: bool,
) -> None:
    hostname = ClientRecord(account=account, name=name, provider="echo").hostname(api_domain)
    raw = (hostname.upper() if upper else hostname) + ("." if trailing_dot else "")
    if port is not None:
        raw += f":{port}"
    assert parse_host(raw, api_domain) == DefaultHost(client=name, account=account)


@given(raw=st.text(), api_domain=api_domains)
def test_arbitrary_text_never_raises(raw: str, api_domain: str) -> None:
    parsed = parse_host(raw, api_domain)
    assert parsed is None or isinstance(parsed, DefaultHost | CustomHost)
    normalised = normalise_host(raw)
    assert normalised is None or normalised == normalised.strip().lower()


@given(head=st.text(), api_domain=api_domains)
def test_nothing_under_the_api_domain_is_a_custom_host(head: str, api_domain: str) -> None:
    parsed = parse_host(f"{head}.{api_domain}", api_domain)
    assert not isinstance(parsed, CustomHost)
    if isinstance(parsed, DefaultHost):
        assert is_client_name(parsed.client)
        assert is_account_number(parsed.account)


@given(
    labels=st.lists(
        st.text(alphabet=_LABEL_CHARS + "-", min_size=1, max_size=20), min_size=1, max_size=4
    ),
    api_domain=api_domains,
    suffix=st.sampled_from(["", ".", ":8080", ".:1"]),
)
def test_label_soup_under_the_api_domain_is_a_tenant_or_nothing(
    labels: list[str], api_domain: str, suffix: str
) -> None:
    raw = ".".join(labels) + "." + api_domain.upper() + suffix
    parsed = parse_host(raw, api_domain)
    assert not isinstance(parsed, CustomHost)
    expected_tenant = (
        len(labels) == 2 and is_client_name(labels[0]) and is_account_number(labels[1])
    )
    assert isinstance(parsed, DefaultHost) == expected_tenant


@given(hostname=st.lists(client_names, min_size=2, max_size=4).map(".".join))
def test_other_domains_are_custom_hosts(hostname: str) -> None:
    parsed = parse_host(hostname, "api.localhost")
    if hostname == "api.localhost" or hostname.endswith(".api.localhost"):
        assert not isinstance(parsed, CustomHost)
    elif len(hostname) <= 253:
        assert parsed == CustomHost(hostname)
