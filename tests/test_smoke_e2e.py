"""First end-to-end check through the openai SDK."""

from __future__ import annotations

import openai

from tests.upstream_server import UpstreamServer


async def test_chat_completion_is_relayed_unchanged(
    client: openai.AsyncOpenAI, upstream_server: UpstreamServer
) -> None:
    reply = await client.chat.completions.create(
        model="gpt-test", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content == "Hello from upstream"
    assert reply.model == "gpt-test-2024"
    assert len(upstream_server.seen) == 1
