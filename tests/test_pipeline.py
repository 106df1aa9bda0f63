"""The pipeline's pure stages: rewrite (policy, stream usage), the body it hands upstream, and
how a route names its tenant (no Redis)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from gateway.auth import UserProfile
from gateway.exchange import Exchange, Identity
from gateway.pipeline import TENANT_ROUTES, TenantRoute, rewrite, wants_usage
from gateway.protocols import Provider
from gateway.rewrite import ClientPolicy
from gateway.store.records import ClientRecord

ROUTES: dict[str, TenantRoute] = {route.endpoint: route for route in TENANT_ROUTES}


async def _chat(
    request: web.Request, user_profile: UserProfile, data: dict[str, Any]
) -> dict[str, Any]:
    raise AssertionError("no handler is called by a pure stage")


async def _models(request: web.Request, user_profile: UserProfile) -> dict[str, Any]:
    raise AssertionError("no handler is called by a pure stage")


def _identity(policy: ClientPolicy) -> Identity:
    client = ClientRecord(account="0000-0000-0000", name="c", provider="openai", policy=policy)
    user = UserProfile(account="0000-0000-0000", client="c", key_id="0" * 12, key_name="k")
    return Identity(client, user, Provider("p", _chat, _models), "host")


def _received(route: TenantRoute, body: dict[str, Any]) -> tuple[Exchange, dict[str, Any]]:
    exchange = Exchange("req_test")
    raw = orjson.dumps(body)
    exchange.body_received(raw)
    data = orjson.loads(raw)
    assert route.validate is not None
    model, stream = route.validate(data)
    exchange.body_parsed(data, model, stream)
    return exchange, data


def test_untouched_body_goes_upstream_as_the_callers_bytes() -> None:
    route = ROUTES["chat"]
    raw = b'{"model":"m",  "messages":[{"role":"user","content":"hi"}]}'
    exchange = Exchange("req_test")
    exchange.body_received(raw)
    data = orjson.loads(raw)
    exchange.body_parsed(data, "m", False)
    out, answer = rewrite(_identity(ClientPolicy()), route, exchange, data)
    assert answer is None
    assert exchange.upstream_body(out) == raw  # byte for byte, odd spacing included
    assert not exchange.usage_hidden


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_a_stream_asks_for_usage_and_hides_it(endpoint: str) -> None:
    route = ROUTES[endpoint]
    field = (
        {"messages": [{"role": "user", "content": "hi"}]}
        if endpoint == "chat"
        else {"prompt": "hi"}
    )
    exchange, data = _received(route, {"model": "m", "stream": True, **field})
    out, _ = rewrite(_identity(ClientPolicy()), route, exchange, data)
    assert wants_usage(out)
    assert exchange.usage_hidden
    assert orjson.loads(exchange.upstream_body(out))["stream_options"] == {"include_usage": True}


def test_a_caller_that_asked_for_usage_sees_it() -> None:
    route = ROUTES["chat"]
    body = {
        "model": "m",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "hi"}],
    }
    exchange, data = _received(route, body)
    rewrite(_identity(ClientPolicy()), route, exchange, data)
    assert not exchange.usage_hidden


@pytest.mark.parametrize("endpoint", ["embeddings", "responses"])
def test_routes_without_the_usage_option_are_left_alone(endpoint: str) -> None:
    route = ROUTES[endpoint]
    field = {"input": "hi"}
    exchange, data = _received(route, {"model": "m", "stream": False, **field})
    out, _ = rewrite(_identity(ClientPolicy()), route, exchange, data)
    assert out is data
    assert not exchange.usage_hidden


def test_a_policy_rewrite_is_serialized_and_aliases_answer_models() -> None:
    policy = ClientPolicy(aliases={"fast": "gpt-4o-mini"})
    route = ROUTES["chat"]
    exchange, data = _received(route, {"model": "fast", "messages": [{"role": "user"}]})
    out, _ = rewrite(_identity(policy), route, exchange, data)
    assert orjson.loads(exchange.upstream_body(out))["model"] == "gpt-4o-mini"
    _, listing = rewrite(_identity(policy), ROUTES["models"], Exchange("req_2"), {})
    assert listing is not None
    assert [m["id"] for m in listing["data"]] == ["fast"]
