"""Custom domains proven by a DNS TXT record, checked against a real DNS server on loopback,
and then routed by the real app to their client (through the openai SDK)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator

import openai
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.domains import add_domain, challenge_name, challenge_value, txt_values, verify_domain
from gateway.errors import DomainVerificationError
from gateway.store.records import DomainRecord
from gateway.store.repositories import ClientRepository, DomainRepository
from tests.conftest import ACCOUNT, Cli, Tenant, make_tenant, sdk_kwargs
from tests.support.dns_server import TxtDnsServer

HOST = "api.acme.test"

SdkFor = Callable[[str], openai.AsyncOpenAI]


@pytest.fixture
def dns_server() -> Iterator[TxtDnsServer]:
    server = TxtDnsServer().start()
    yield server
    server.stop()


async def _claim(redis: Redis, hostname: str = HOST, client: str = "echo-bot") -> DomainRecord:
    return await add_domain(
        DomainRepository(redis),
        ClientRepository(redis),
        "api.localhost",
        hostname=hostname,
        account=ACCOUNT,
        client=client,
    )


async def _verify(
    redis: Redis, dns_server: TxtDnsServer, hostname: str = HOST, *, force: bool = False
) -> DomainRecord:
    return await verify_domain(
        DomainRepository(redis), hostname, force=force, nameserver="127.0.0.1", port=dns_server.port
    )


async def test_txt_values_reads_every_string(dns_server: TxtDnsServer) -> None:
    dns_server.set_txt("_x.acme.test", "one", "two words")
    found = await txt_values("_x.acme.test", "127.0.0.1", dns_server.port)
    assert sorted(found) == ["one", "two words"]
    assert await txt_values("_none.acme.test", "127.0.0.1", dns_server.port) == []
    dns_server.set_txt("_empty.acme.test")  # the name exists but has no TXT record
    assert await txt_values("_empty.acme.test", "127.0.0.1", dns_server.port) == []


async def test_verify_succeeds_with_the_right_txt(
    redis: Redis, echo_tenant: Tenant, dns_server: TxtDnsServer
) -> None:
    record = await _claim(redis)
    assert record.verified is False
    dns_server.set_txt(challenge_name(HOST), "v=spf1 -all", challenge_value(record))
    verified = await _verify(redis, dns_server, "API.Acme.Test.")
    assert verified.verified is True
    assert verified.verified_at is not None
    assert (await DomainRepository(redis).require(HOST)).verified is True
    assert dns_server.queries == [challenge_name(HOST)]


@pytest.mark.parametrize("txt", [None, (), ("gateway-verify=not-the-token",), ("something else",)])
async def test_verify_fails_without_the_right_txt(
    redis: Redis, echo_tenant: Tenant, dns_server: TxtDnsServer, txt: tuple[str, ...] | None
) -> None:
    await _claim(redis)
    if txt is not None:
        dns_server.set_txt(challenge_name(HOST), *txt)
    with pytest.raises(DomainVerificationError, match="does not hold") as caught:
        await _verify(redis, dns_server)
    assert caught.value.status == 400
    assert (await DomainRepository(redis).require(HOST)).verified is False
    assert dns_server.queries == [challenge_name(HOST)]


async def test_force_skips_dns(redis: Redis, echo_tenant: Tenant, dns_server: TxtDnsServer) -> None:
    await _claim(redis)
    assert (await _verify(redis, dns_server, force=True)).verified is True
    assert dns_server.queries == []


def test_cli_domains_verify_against_the_dns_server(cli: Cli, dns_server: TxtDnsServer) -> None:
    assert cli("clients", "add", "support", "--account", ACCOUNT, "--provider", "echo").code == 0
    added = cli("domains", "add", HOST, "--account", ACCOUNT, "--client", "support", "--json")
    assert added.code == 0
    txt = added.json["dns_record"]
    verify = ["domains", "verify", HOST, "--nameserver", "127.0.0.1"]
    verify += ["--dns-port", str(dns_server.port)]

    missing = cli(*verify)
    assert missing.code == 1
    assert missing.err.startswith(f"gateway: TXT record {txt['name']} does not hold")
    assert missing.err.count("\n") == 1

    dns_server.set_txt(txt["name"], "gateway-verify=wrong")
    assert cli(*verify).code == 1
    assert cli("domains", "list", "--json").json[0]["verified"] is False

    dns_server.set_txt(txt["name"], txt["value"])
    done = cli(*verify, "--json")
    assert done.code == 0, done.err
    assert done.json["verified"] is True
    assert dns_server.queries == [txt["name"]] * 3


def test_cli_domains_verify_force(cli: Cli, dns_server: TxtDnsServer) -> None:
    assert cli("clients", "add", "support", "--account", ACCOUNT, "--provider", "echo").code == 0
    assert cli("domains", "add", HOST, "--account", ACCOUNT, "--client", "support").code == 0
    forced = cli("domains", "verify", HOST, "--force", "--nameserver", "127.0.0.1")
    assert forced.code == 0
    assert dns_server.queries == []
    assert cli("domains", "list", "--json").json[0]["verified"] is True


# --- routing through the real app ------------------------------------------------------------


@pytest.fixture
async def sdk_for(gateway: TestServer, echo_tenant: Tenant) -> AsyncIterator[SdkFor]:
    opened: list[openai.AsyncOpenAI] = []

    def make(host: str) -> openai.AsyncOpenAI:
        sdk = openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant, default_headers={"Host": host}))
        opened.append(sdk)
        return sdk

    yield make
    for sdk in opened:
        await sdk.close()


async def _ask(sdk: openai.AsyncOpenAI) -> str | None:
    reply = await sdk.chat.completions.create(
        model="echo-1", messages=[{"role": "user", "content": "hello via custom domain"}]
    )
    return reply.choices[0].message.content


async def _answers_within(sdk: openai.AsyncOpenAI, seconds: float = 5.0) -> str | None:
    """The reply once the gateway has picked up a change (it is pushed over pub/sub)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            return await _ask(sdk)
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.02)


async def _not_found_within(sdk: openai.AsyncOpenAI, seconds: float = 5.0) -> openai.NotFoundError:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await _ask(sdk)
        except openai.NotFoundError as exc:
            return exc
        if time.monotonic() > deadline:
            raise AssertionError("the host still routes")
        await asyncio.sleep(0.02)


async def test_verified_custom_domain_routes_to_its_client(
    redis: Redis, dns_server: TxtDnsServer, sdk_for: SdkFor, echo_tenant: Tenant
) -> None:
    custom: openai.AsyncOpenAI = sdk_for(HOST)
    with_port: openai.AsyncOpenAI = sdk_for("API.ACME.TEST:443")
    other_tenant = await make_tenant(redis, client="other-bot", provider="echo")
    assert other_tenant.client != echo_tenant.client

    record = await _claim(redis)
    unverified = await _not_found_within(custom)
    assert unverified.code == "unknown_host"

    dns_server.set_txt(challenge_name(HOST), challenge_value(record))
    await _verify(redis, dns_server)
    assert await _answers_within(custom) == "echo: hello via custom domain"
    assert await _answers_within(with_port) == "echo: hello via custom domain"

    await DomainRepository(redis).remove(HOST)
    await _not_found_within(custom)


async def test_unverified_custom_domain_answers_404(
    redis: Redis, sdk_for: SdkFor, echo_tenant: Tenant
) -> None:
    await _claim(redis, "chat.acme.test")
    with pytest.raises(openai.NotFoundError) as caught:
        await _ask(sdk_for("chat.acme.test"))
    assert caught.value.code == "unknown_host"
    with pytest.raises(openai.NotFoundError):
        await _ask(sdk_for("never-claimed.acme.test"))
