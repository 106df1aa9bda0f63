"""The demo tenant: made once, its key reused while it works, and usable end to end."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

import openai
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis

from gateway.auth import key_id_of
from gateway.config import Settings
from gateway.demo import (
    DEMO_ACCOUNT,
    DEMO_CLIENT,
    DEMO_KEY_FILE,
    demo_instructions,
    demo_snippets,
    ensure_demo_tenant,
)
from gateway.store.records import ClientRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository
from tests.conftest import TEST_SECRET

HOSTNAME = f"{DEMO_CLIENT}.{DEMO_ACCOUNT}.api.localhost"


async def _active_demo_keys(redis: Redis) -> list[str]:
    return [r.id for r in await ApiKeyRepository(redis).list(DEMO_ACCOUNT) if r.revoked_at is None]


async def test_ensure_twice_gives_the_same_key(redis: Redis, settings: Settings) -> None:
    hostname, key = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    assert hostname == HOSTNAME
    again = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    assert again == (hostname, key)
    assert await _active_demo_keys(redis) == [key_id_of(key)]
    client = await ClientRepository(redis).require(DEMO_ACCOUNT, DEMO_CLIENT)
    assert client.provider == "echo"
    key_file = settings.var_path / DEMO_KEY_FILE
    assert key_file.read_text(encoding="utf-8").strip() == key
    assert key_file.stat().st_mode & 0o777 == 0o600


async def test_lost_key_file_gives_a_new_key_and_revokes_the_old(
    redis: Redis, settings: Settings
) -> None:
    _, old = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    (settings.var_path / DEMO_KEY_FILE).unlink()
    _, new = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    assert new != old
    assert await _active_demo_keys(redis) == [key_id_of(new)]
    old_record = await ApiKeyRepository(redis).get(key_id_of(old) or "")
    assert old_record is not None
    assert old_record.revoked_at is not None


async def test_a_revoked_or_foreign_saved_key_is_replaced(redis: Redis, settings: Settings) -> None:
    _, first = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    await ApiKeyRepository(redis).revoke(key_id_of(first) or "")
    _, second = await ensure_demo_tenant(redis, settings, TEST_SECRET)
    assert second != first
    # The saved key no longer matches its hash (the server secret changed): replaced too.
    _, third = await ensure_demo_tenant(redis, settings, "a-new-secret")
    assert third != second
    assert await _active_demo_keys(redis) == [key_id_of(third)]


async def test_an_existing_demo_client_is_kept(redis: Redis, settings: Settings) -> None:
    custom = ClientRecord(
        account=DEMO_ACCOUNT, name=DEMO_CLIENT, provider="echo", cors_origins=("*",)
    )
    await ClientRepository(redis).put(custom)
    await ensure_demo_tenant(redis, settings, TEST_SECRET)
    assert await ClientRepository(redis).require(DEMO_ACCOUNT, DEMO_CLIENT) == custom


def test_instructions_name_the_host_and_key() -> None:
    key = "gwk_0123456789ab_" + "k" * 43
    text = demo_instructions(HOSTNAME, key, "127.0.0.1", 8123)
    assert f"http://{HOSTNAME}:8123/v1" in text
    assert f"curl -s http://{HOSTNAME}:8123/v1/chat/completions" in text
    assert f'-H "Authorization: Bearer {key}"' in text
    assert 'base_url="http://127.0.0.1:8123/v1"' in text
    assert f'api_key="{key}"' in text
    assert f'default_headers={{"Host": "{HOSTNAME}"}}' in text
    assert 'baseURL: "http://127.0.0.1:8123/tenants/demo.0000-0000-0000/v1"' in text
    assert f'apiKey: "{key}"' in text


def test_snippets_are_printed_flush_left_and_written_to_private_files(tmp_path: Path) -> None:
    key = "gwk_0123456789ab_" + "k" * 43
    demo_dir = tmp_path / "var" / "demo"
    text = demo_instructions(HOSTNAME, key, "127.0.0.1", 8123, demo_dir=demo_dir)
    snippets = demo_snippets(HOSTNAME, key, "127.0.0.1", 8123)
    assert [s.file_name for s in snippets] == ["curl.sh", "demo.py", "demo.mjs"]
    assert stat.S_IMODE(demo_dir.stat().st_mode) == 0o700
    assert f"API key (kept in {demo_dir.parent / DEMO_KEY_FILE}): {key}\n" in text
    for snippet in snippets:
        path = demo_dir / snippet.file_name
        assert path.read_text(encoding="utf-8") == snippet.text + "\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600  # they hold the key
        assert f"  {snippet.run} {path}\n" in text  # how to run it, with its path
        # Printed as a block of its own lines, first line at the margin: pasting it into a file
        # gives exactly the file.
        assert f"\n\n{snippet.text}\n" in text
        assert not snippet.text[0].isspace()
    python = next(s for s in snippets if s.file_name == "demo.py")
    compile(python.text, "demo.py", "exec")  # no IndentationError, no SyntaxError


def test_instructions_without_a_directory_write_nothing(tmp_path: Path) -> None:
    demo_instructions(HOSTNAME, "gwk_x", "127.0.0.1", 8123)
    assert list(tmp_path.iterdir()) == []


async def test_demo_key_works_end_to_end(
    redis: Redis, settings: Settings, gateway: TestServer
) -> None:
    hostname, key = await ensure_demo_tenant(redis, settings, TEST_SECRET)

    def call() -> tuple[str | None, str]:
        with openai.OpenAI(
            base_url=str(gateway.make_url("/v1")),
            api_key=key,
            default_headers={"Host": hostname},
            max_retries=0,
            timeout=10.0,
        ) as sdk:
            reply = sdk.chat.completions.create(
                model="echo-1", messages=[{"role": "user", "content": "Hello, gateway!"}]
            )
            streamed = "".join(
                chunk.choices[0].delta.content or ""
                for chunk in sdk.chat.completions.create(
                    model="echo-1",
                    messages=[{"role": "user", "content": "Hello, stream!"}],
                    stream=True,
                )
                if chunk.choices
            )
            return reply.choices[0].message.content, streamed

    content, streamed = await asyncio.to_thread(call)
    assert content == "echo: Hello, gateway!"
    assert streamed == "echo: Hello, stream!"
