"""The demo tenant that `make run` serves: `demo.0000-0000-0000.<api_domain>` on the echo provider.

Running it again reuses the demo key kept in `var/demo.key` while it still works, and otherwise
revokes the old demo keys and issues one new key, so keys never pile up.
"""

from __future__ import annotations

import hmac
import os
import time
from pathlib import Path

from redis.asyncio import Redis

from gateway.auth import hash_key, key_id_of
from gateway.config import Settings
from gateway.keys_service import issue_key
from gateway.store.records import ClientRecord
from gateway.store.repositories import ApiKeyRepository, ClientRepository

DEMO_ACCOUNT = "0000-0000-0000"
DEMO_CLIENT = "demo"
DEMO_KEY_NAME = "demo"
DEMO_KEY_FILE = "demo.key"
DEMO_ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name


async def ensure_demo_tenant(redis: Redis, settings: Settings, secret: str) -> tuple[str, str]:
    """(hostname, key) of the demo tenant, created or refreshed."""
    clients = ClientRepository(redis)
    if await clients.get(DEMO_ACCOUNT, DEMO_CLIENT) is None:
        await clients.put(ClientRecord(account=DEMO_ACCOUNT, name=DEMO_CLIENT, provider="echo"))
    keys = ApiKeyRepository(redis)
    key_file = settings.var_path / DEMO_KEY_FILE
    saved = key_file.read_text(encoding="utf-8").strip() if key_file.is_file() else ""
    key = await _reusable_key(keys, saved, secret)
    if key is None:
        for record in await keys.list(DEMO_ACCOUNT):
            if record.name == DEMO_KEY_NAME and record.revoked_at is None:
                await keys.revoke(record.id)
        issued = await issue_key(keys, secret, account=DEMO_ACCOUNT, name=DEMO_KEY_NAME)
        key = issued.key
        _write_private(key_file, key)
    return f"{DEMO_CLIENT}.{DEMO_ACCOUNT}.{settings.api_domain}", key


async def _reusable_key(keys: ApiKeyRepository, key: str, secret: str) -> str | None:
    key_id = key_id_of(key)
    record = None if key_id is None else await keys.get(key_id)
    if record is None or not record.is_active(time.time()):
        return None
    return key if hmac.compare_digest(record.hash, hash_key(secret, key)) else None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def demo_instructions(
    hostname: str, key: str, host: str, port: int, dashboard: str | None = None
) -> str:
    """What `make run` prints: a curl command and an openai SDK snippet, both runnable as is."""
    body = '{"model": "echo-1", "messages": [{"role": "user", "content": "Hello, gateway!"}]}'
    return f"""
Demo tenant ready: http://{hostname}:{port}/v1  (provider: echo)
API key (kept in var/{DEMO_KEY_FILE}): {key}

curl (it resolves *.localhost to 127.0.0.1 by itself):

  curl -s http://{hostname}:{port}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" \\
    -H "Content-Type: application/json" \\
    -d '{body}'

Python, with the openai SDK (Python's resolver does not know *.localhost, so connect to
{host} and name the tenant in the Host header); run it with .venv/bin/python:

  from openai import OpenAI
  client = OpenAI(base_url="http://{host}:{port}/v1", api_key="{key}",
                  default_headers={{"Host": "{hostname}"}})
  reply = client.chat.completions.create(
      model="echo-1", messages=[{{"role": "user", "content": "Hello, gateway!"}}])
  print(reply.choices[0].message.content)
""" + (f"\nDashboard (admin port): {dashboard}\n" if dashboard else "")
