"""The `echo` provider answers every endpoint offline, as the official SDK reads them, its
stream helpers included (the demo tenant is an echo tenant)."""

from __future__ import annotations

import openai
from aiohttp.test_utils import TestServer

from tests.conftest import Tenant, sdk_kwargs


async def test_echo_serves_every_endpoint_json_and_stream(
    gateway: TestServer, echo_tenant: Tenant
) -> None:
    async with openai.AsyncOpenAI(**sdk_kwargs(gateway, echo_tenant)) as sdk:
        text = await sdk.completions.create(model="echo-1", prompt="say hi")
        assert text.choices[0].text == "echo: say hi"
        assert text.usage is not None
        assert text.usage.total_tokens == 5
        chunks = [
            c
            async for c in await sdk.completions.create(
                model="echo-1", prompt="say hi", stream=True
            )
        ]
        assert "".join(c.choices[0].text for c in chunks if c.choices) == "echo: say hi"

        floats = await sdk.embeddings.create(
            model="echo-1", input=["a", "b c"], encoding_format="float", dimensions=4
        )
        packed = await sdk.embeddings.create(model="echo-1", input=["a", "b c"], dimensions=4)
        assert [len(e.embedding) for e in floats.data] == [4, 4]
        assert [round(x, 4) for x in packed.data[1].embedding] == [
            round(x, 4) for x in floats.data[1].embedding
        ]
        assert floats.usage.total_tokens == 3

        reply = await sdk.responses.create(model="echo-1", input="say hi")
        assert reply.output_text == "echo: say hi"
        async with sdk.responses.stream(model="echo-1", input="say hi") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
        assert "".join(deltas) == "echo: say hi" == final.output_text
        assert final.usage is not None
        assert final.usage.output_tokens == 3
