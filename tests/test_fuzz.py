"""No input reaches a 500, stops the journal or goes unjournaled (issue 10): a hypothesis fuzz of
at least 2,000 bad requests per run through a real `gateway serve` process and a real Redis,
over raw sockets (arbitrary header bytes, Host values, bodies, encodings, methods, paths,
nesting, numbers, every chat field with wrong types, framing a client library refuses to send),
then a normal request through the official SDK.

It speaks HTTP only: request ids come from `x-request-id`, records are read from Redis, and the
writer's health from `/metrics` on the admin port. The figures are printed (`-s` shows them) and
quoted in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from pathlib import Path
from typing import Any

import openai
import orjson
import redis as sync_redis_lib
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from gateway.store.redis import create_redis
from tests.conftest import Tenant, make_tenant
from tests.support.gateway_process import gateway_process, metric
from tests.support.raw_http import RawResponse, exchange
from tests.support.secret_scan import register_log_file
from tests.test_connection import parser_cases

EXAMPLES = 2000
CHAT_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
TENANT_PATHS = (
    "/tenants/echo-bot.3141-5926-5359/v1/chat/completions",
    "/tenants/limited.3141-5926-5359/v1/models",
    "/tenants/nobody.0000-0000-0000/v1/chat/completions",
    "/tenants/../v1/models",
    "/tenants/%ff%00.x/v1/chat/completions",
)
PATHS = (
    *CHAT_PATHS,
    *TENANT_PATHS,
    "/v1/models",
    "/healthz",
    "/readyz",
    "/v1/nope",
    "/",
    "/admin/journal",
)

# --- values ------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([10**18, 2**63, 2**64, -(2**63) - 1, 0, -1]),
)
json_leaf = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
json_value = st.recursive(
    json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
raw_numbers = st.sampled_from(
    [b"1e400", b"-1e400", b"1" * 400, b"-0", b"NaN", b"Infinity", b"0x10", b"1.", b".5", b"01"]
)

CHAT_FIELDS = (
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "n", "stop", "tools", "tool_choice", "response_format", "user",
    "logit_bias", "seed", "presence_penalty", "frequency_penalty", "prompt", "input",
)  # fmt: skip


@st.composite
def chat_body(draw: st.DrawFn) -> bytes:
    """A chat request with some fields of the wrong type (or wrong content parts)."""
    body: dict[str, Any] = {
        "model": "echo-1",
        "messages": [{"role": "user", "content": "hi"}],
    }
    for name in draw(st.lists(st.sampled_from(CHAT_FIELDS), max_size=4, unique=True)):
        body[name] = draw(json_value)
    if draw(st.booleans()):
        part = {"type": "text", "text": draw(json_value)}
        body["messages"] = [{"role": draw(json_value), "content": [part, draw(json_value)]}]
    if draw(st.booleans()):
        body["max_tokens"] = draw(st.sampled_from([10**18, 2**64, 10**30, -5, 1.5e300]))
    if draw(st.booleans()):
        body["stream"] = draw(st.booleans())
    try:
        return orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS)
    except TypeError:  # an int past 64 bits: orjson refuses it, the stdlib writes it
        import json

        return json.dumps(body).encode()


@st.composite
def odd_body(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["nested", "bytes", "number", "text", "empty", "dup"]))
    if kind == "nested":
        depth = draw(st.integers(min_value=200, max_value=1100))
        opener, closer = draw(st.sampled_from([(b"[", b"]"), (b'{"a":', b"}")]))
        inner = opener * depth + b"1" + closer * depth
        return b'{"model": "echo-1", "messages": ' + inner + b"}"
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "number":
        return b'{"model": "echo-1", "max_tokens": ' + draw(raw_numbers) + b', "messages": []}'
    if kind == "text":
        text = draw(st.text(max_size=200))
        return text.encode("utf-8", "surrogatepass")
    if kind == "dup":
        return b'{"model": 1, "model": "echo-1", "messages": [{"role": "user", "content": "x"}]}'
    return b""


header_name = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_!#$%&'*+.^`|~",
    min_size=1,
    max_size=30,
)
header_value = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@st.composite
def bad_request(draw: st.DrawFn, tenants: list[Tenant]) -> bytes:
    """The raw bytes of one (mostly) bad request."""
    tenant = draw(st.sampled_from(tenants))
    if draw(st.integers(0, 9)) == 0:
        return draw(st.sampled_from(list(parser_cases(tenant.key).values())))
    method = draw(
        st.sampled_from([b"POST"] * 6 + [b"GET", b"PUT", b"DELETE", b"OPTIONS", b"HEAD", b"PATCH"])
        | st.binary(min_size=1, max_size=12).filter(lambda m: b" " not in m and b"\r" not in m)
    )
    path = (
        draw(
            st.sampled_from(PATHS).map(str.encode)
            | st.text(max_size=60).map(lambda t: b"/" + t.encode("utf-8", "surrogatepass"))
            | st.just(b"/v1/chat/completions?" + b"a=" * 300)
        )
        .replace(b" ", b"%20")
        .replace(b"\r", b"")
        .replace(b"\n", b"")
    )
    host = draw(
        st.sampled_from([t.hostname for t in tenants]).map(str.encode)
        | st.sampled_from(
            [tenant.hostname.upper() + ":8443", "a" * 300, "x..y", "[::1]", "", "127.0.0.1"]
        ).map(str.encode)
        | st.binary(max_size=80).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
    )
    auth = draw(
        st.sampled_from(
            [
                b"Authorization: Bearer " + tenant.key.encode(),
                b"api-key: " + tenant.key.encode(),
                b"x-api-key: " + tenant.key.encode(),
                b"Authorization: Bearer gwk_000000000000_nope",
                b"Authorization: " + tenant.key.encode(),
                b"",
            ]
        )
    )
    body = draw(chat_body() | odd_body())
    encoding = draw(st.sampled_from(["", "", "", "gzip", "deflate", "gzip-bad", "bogus", "br"]))
    if encoding == "gzip":
        body = gzip.compress(body)
    elif encoding == "deflate":
        body = zlib.compress(body)
    elif encoding == "gzip-bad":
        body, encoding = b"\x1f\x8b\x08\x00" + body, "gzip"
    lines = [method + b" " + (path if path.startswith(b"/") else b"/" + path) + b" HTTP/1.1"]
    lines.append(b"Host: " + host)
    if auth:
        lines.append(auth)
    if encoding:
        lines.append(b"Content-Encoding: " + encoding.encode())
    lines.append(b"Content-Type: " + draw(st.sampled_from([b"application/json", b"text/plain"])))
    for name, value in draw(st.lists(st.tuples(header_name, header_value), max_size=4)):
        lines.append(name.encode() + b": " + value)
    chunked = draw(st.booleans())
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        framed = (b"%x\r\n" % len(body) + body + b"\r\n" if body else b"") + b"0\r\n\r\n"
    else:
        lines.append(b"Content-Length: %d" % len(body))
        framed = body
    lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n" + framed


# --- the test ----------------------------------------------------------------------------


def journal_ids(redis_url: str) -> list[str]:
    client = sync_redis_lib.Redis.from_url(redis_url)
    try:
        entries: Any = client.xrange("gw:{journal}:all", "-", "+")
        return [fields[b"request_id"].decode() for _id, fields in entries]
    finally:
        client.close()


def make_tenants(redis_url: str) -> list[Tenant]:
    async def make() -> list[Tenant]:
        redis = create_redis(redis_url)
        try:
            await redis.flushdb()
            return [
                await make_tenant(redis, client="echo-bot", provider="echo"),
                await make_tenant(
                    redis,
                    client="limited",
                    provider="echo",
                    rpm=10**9,
                    tpm=10**12,
                    tokens_per_day=10**14,
                    max_concurrent=1000,
                ),
            ]
        finally:
            await redis.aclose()

    return asyncio.run(make())


def test_fuzz_no_bad_request_reaches_a_5xx_or_escapes_the_journal(
    redis_url: str, tmp_path: Path
) -> None:
    tenants = make_tenants(redis_url)
    answered: list[RawResponse] = []
    sent = 0
    started = time.monotonic()
    with gateway_process(redis_url, tmp_path / "var", header_timeout="2") as gateway:
        register_log_file(gateway.log_path)

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(data=bad_request(tenants))
        def send(data: bytes) -> None:
            nonlocal sent
            sent += 1
            responses = exchange(gateway.port, data)
            for response in responses:
                assert response.status < 500, (response.status, response.body[:300], data[:300])
                assert response.headers.get("x-request-id"), (response.status, data[:200])
            answered.extend(responses)

        send()
        fuzzed = time.monotonic() - started
        tenant = tenants[0]
        with openai.OpenAI(
            base_url=f"http://127.0.0.1:{gateway.port}/v1",
            api_key=tenant.key,
            default_headers={"Host": tenant.hostname},
            max_retries=0,
        ) as sdk:
            raw = sdk.chat.completions.with_raw_response.create(
                model="echo-1", messages=[{"role": "user", "content": "after the fuzz"}]
            )
        normal_id = raw.headers["x-request-id"]
        deadline = time.monotonic() + 1.0
        while normal_id not in journal_ids(redis_url):
            assert time.monotonic() < deadline, "the normal request was not journaled within 1 s"
            time.sleep(0.02)
        assert metric(gateway.admin_port, "gateway_journal_writer_up") == 1
        assert metric(gateway.admin_port, "gateway_journal_writer_restarts_total") == 0
        assert metric(gateway.admin_port, "gateway_journal_dead_lettered_total") == 0
        assert gateway.stop() == 0
    ids = journal_ids(redis_url)
    answered_ids = [r.headers["x-request-id"] for r in answered]
    missing = set(answered_ids) - set(ids)
    assert not missing, f"{len(missing)} answered requests are not in the journal"
    assert len(ids) == len(set(ids)), "a request id is journaled twice"
    statuses: dict[int, int] = {}
    for response in answered:
        statuses[response.status] = statuses.get(response.status, 0) + 1
    print(  # the figures docs/reliability.md quotes
        f"\nfuzz: sent={sent} answered={len(answered)} journaled={len(ids)} lost={len(missing)} "
        f"5xx=0 statuses={dict(sorted(statuses.items()))} seconds={fuzzed:.1f}"
    )
    assert sent >= EXAMPLES
