"""The demo tenant that `make run` serves: `demo.0000-0000-0000.<api_domain>` on the echo provider.

Running it again reuses the demo key kept in `var/demo.key` while it still works, and otherwise
revokes the old demo keys and issues one new key, so keys never pile up.
"""

from __future__ import annotations

import dataclasses
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
DEMO_DIR = "demo"  # var/demo/: the printed snippets as files
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


@dataclasses.dataclass(frozen=True, slots=True)
class DemoSnippet:
    """One runnable snippet: printed flush left, and kept in `var/demo/<file_name>`."""

    title: str
    file_name: str
    run: str  # how to run the file, from the checkout
    text: str


def demo_snippets(hostname: str, key: str, host: str, port: int) -> tuple[DemoSnippet, ...]:
    """curl by hostname, Python by Host header, Node by path: the three ways in, as files."""
    path_url = f"http://{host}:{port}/tenants/{DEMO_CLIENT}.{DEMO_ACCOUNT}/v1"
    body = '{"model": "echo-1", "messages": [{"role": "user", "content": "Hello, gateway!"}]}'
    curl = f"""curl -s http://{hostname}:{port}/v1/chat/completions \\
  -H "Authorization: Bearer {key}" \\
  -H "Content-Type: application/json" \\
  -d '{body}'"""
    python = f"""from openai import OpenAI

client = OpenAI(
    base_url="http://{host}:{port}/v1",
    api_key="{key}",
    default_headers={{"Host": "{hostname}"}},
)
reply = client.chat.completions.create(
    model="echo-1", messages=[{{"role": "user", "content": "Hello, gateway!"}}]
)
print(reply.choices[0].message.content)"""
    node = f"""import OpenAI from "openai";

const client = new OpenAI({{
  baseURL: "{path_url}",
  apiKey: "{key}",
}});
const reply = await client.chat.completions.create({{
  model: "echo-1",
  messages: [{{ role: "user", content: "Hello, gateway!" }}],
}});
console.log(reply.choices[0].message.content);"""
    return (
        DemoSnippet("curl (it resolves *.localhost to 127.0.0.1 by itself)", "curl.sh", "sh", curl),
        DemoSnippet(
            f"Python, openai SDK (no *.localhost in Python: connect to {host}, name the tenant "
            "in the Host header)",
            "demo.py",
            ".venv/bin/python",
            python,
        ),
        DemoSnippet(
            "Node, openai SDK (Node's fetch drops a Host header: the tenant is in the path)",
            "demo.mjs",
            "node",
            node,
        ),
    )


def write_demo_snippets(directory: Path, snippets: tuple[DemoSnippet, ...]) -> dict[str, Path]:
    """Each snippet in its own private file (they hold the demo key); file name -> path."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    written = {}
    for snippet in snippets:
        _write_private(directory / snippet.file_name, snippet.text)
        written[snippet.file_name] = directory / snippet.file_name
    return written


def demo_instructions(
    hostname: str,
    key: str,
    host: str,
    port: int,
    dashboard: str | None = None,
    *,
    demo_dir: Path | None = None,
) -> str:
    """What `make run` prints: the tenant, the key, and snippets that run when pasted into a
    file (flush left), also written to `demo_dir` when one is given, with their paths."""
    snippets = demo_snippets(hostname, key, host, port)
    key_file = demo_dir.parent / DEMO_KEY_FILE if demo_dir else Path("var") / DEMO_KEY_FILE
    lines = [
        "",
        f"Demo tenant ready: http://{hostname}:{port}/v1  (provider: echo)",
        f"Same tenant by path: http://{host}:{port}/tenants/{DEMO_CLIENT}.{DEMO_ACCOUNT}/v1",
        "echo answers every endpoint offline (chat, completions, embeddings, responses, models;",
        "JSON and stream, with usage), so any OpenAI client can try them all.",
        f"API key (kept in {key_file}): {key}",
        "",
    ]
    if demo_dir is not None:
        paths = write_demo_snippets(demo_dir, snippets)
        lines.append(f"The snippets below are also in {demo_dir}/ (private: they hold the key):")
        for snippet in snippets:
            lines.append(f"  {snippet.run} {paths[snippet.file_name]}")
        lines += [f"  (for Node, once: npm install --prefix {demo_dir} openai@6)", ""]
    for snippet in snippets:
        lines += [f"{snippet.title}:", "", snippet.text, ""]
    if dashboard:
        lines += [f"Dashboard (admin port): {dashboard}", ""]
    return "\n".join(lines)
