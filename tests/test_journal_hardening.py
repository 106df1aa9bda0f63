"""No input stops the journal (issue 10, item 1; issue 14, spill ownership and back-off): every
record can be written, a record Redis refuses is split off and dead-lettered, the writer is
supervised, a spill file is replayed only into its own Redis, and a Redis that stays down is
reported once per interval."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer
from redis.asyncio import Redis
from structlog.testing import capture_logs

from gateway import appkeys
from gateway.journal.encode import encode_record
from gateway.journal.entry import Entry
from gateway.journal.spill import owner_line
from gateway.journal.writer import JournalOptions, JournalWriter
from gateway.store import keys
from gateway.store.redis import create_redis
from tests.conftest import Tenant, free_port
from tests.support.helpers import raw_request, wait_for
from tests.support.journal_helpers import journal_records, wait_for_record, wait_for_records
from tests.test_journal_queue import draft

OPTIONS = JournalOptions(flush_interval=0.01, retry_delay=0.05)


def file_lines(directory: Path, pattern: str) -> list[bytes]:
    return b"".join(p.read_bytes() for p in sorted(directory.glob(pattern))).splitlines()


async def send_raw(gateway: TestServer, data: bytes) -> list[str]:
    """Raw bytes on one connection; the `x-request-id` of every response until it closes."""
    reader, writer = await asyncio.open_connection(gateway.host, gateway.port)
    try:
        writer.write(data)
        await writer.drain()
        raw = await asyncio.wait_for(reader.read(), 5.0)
    finally:
        writer.close()
    return [
        line.split(b":", 1)[1].strip().decode()
        for line in raw.split(b"\r\n")
        if line.lower().startswith(b"x-request-id:")
    ]


async def test_non_utf8_header_bytes_are_journaled_escaped_and_the_writer_lives_on(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant
) -> None:
    one = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Junk: \xff\xfe ok\r\n\r\n"
    ids = await send_raw(gateway, one + one[:-2] + b"Connection: close\r\n\r\n")
    assert len(ids) == 2
    for request_id in ids:
        record = await wait_for_record(redis, request_id)
        assert record["request"]["headers"]["x-junk"] == "\\xff\\xfe ok"
    writer = gateway.app[appkeys.JOURNAL]
    assert writer.alive
    assert writer.counters()["restarts"] == 0
    _, headers, _ = await raw_request(
        gateway, "GET", "/v1/models", host=echo_tenant.hostname, key=echo_tenant.key
    )
    await wait_for_record(redis, headers["x-request-id"], within=1.0)


@pytest.mark.parametrize("depth", [256, 600, 1000, 1100])
async def test_bodies_nested_past_what_orjson_writes_are_kept_as_text(
    gateway: TestServer, redis: Redis, echo_tenant: Tenant, depth: int
) -> None:
    body = b'{"model": "echo-1", "messages": ' + b"[" * depth + b"]" * depth + b"}"
    status, headers, _ = await raw_request(
        gateway, "POST", "/v1/chat/completions", host=echo_tenant.hostname,
        key=echo_tenant.key, body=body,
    )  # fmt: skip
    assert status == 400
    record = await wait_for_record(redis, headers["x-request-id"])
    kept = record["request"]["body"]
    assert (kept["format"], kept["content"]) == ("text", body.decode())
    # Up to 1023 levels orjson reads the body (so it was JSON, flagged); past that it never was.
    assert kept.get("unserializable") is (True if depth < 1024 else None)
    assert gateway.app[appkeys.JOURNAL].alive


async def test_a_record_redis_refuses_is_dead_lettered_and_its_batch_written(
    redis: Redis, tmp_path: Path
) -> None:
    # The account stream of one record is not a stream: Redis refuses that record (WRONGTYPE).
    await redis.set(keys.journal_account_stream("6666-6666-6666"), "not a stream")
    writer = JournalWriter(redis, tmp_path, dataclasses.replace(OPTIONS, flush_interval=3600))
    writer.start()
    try:
        for index in range(9):
            record = draft(index, b"{}")
            if index == 4:
                record = dataclasses.replace(record, account="6666-6666-6666")
            writer.submit(record)
    finally:
        await writer.close()
    ids = [r["request_id"] for r in await journal_records(redis)]
    assert [i for i in ids if i != "req-4"] == [f"req-{i}" for i in range(9) if i != 4]
    counters = writer.counters()
    assert (counters["written"], counters["dead_lettered"], counters["dropped"]) == (8, 1, 0)
    [dead] = [orjson.loads(line) for line in file_lines(tmp_path, "dead-*.jsonl")]
    assert dead["r"]["request_id"] == "req-4"
    assert "WRONGTYPE" in dead["error"]


class CrashingOnce(JournalWriter):
    """A writer whose first write hits a bug (what the supervisor is for)."""

    crashed = False

    async def _write(self, entries: list[Entry]) -> None:
        if not self.crashed:
            self.crashed = True
            raise RuntimeError("a bug in the writer")
        await super()._write(entries)


async def test_a_crashed_writer_is_restarted_and_loses_nothing(
    redis: Redis, tmp_path: Path
) -> None:
    writer = CrashingOnce(redis, tmp_path, OPTIONS)
    writer.start()
    try:
        for index in range(5):
            writer.submit(draft(index, b"{}"))
        records = await wait_for_records(redis, 5)
        assert writer.alive
        assert writer.counters()["restarts"] == 1
        writer.submit(draft(5, b"{}"))
        await wait_for_records(redis, 6)
    finally:
        await writer.close()
    assert [r["request_id"] for r in records] == [f"req-{i}" for i in range(5)]
    assert await redis.xlen(keys.JOURNAL_STREAM) == 6


async def test_shutdown_spills_everything_when_redis_is_gone(tmp_path: Path) -> None:
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    writer = JournalWriter(dead, tmp_path, dataclasses.replace(OPTIONS, flush_interval=3600))
    writer.start()
    for index in range(20):
        writer.submit(draft(index, b"{}"))
    await writer.close()
    await dead.aclose()
    spilled = [orjson.loads(line) for line in file_lines(tmp_path, "spill-*.jsonl")]
    assert [s["r"]["request_id"] for s in spilled if "r" in s] == [f"req-{i}" for i in range(20)]
    assert writer.counters()["dropped"] == 0


async def test_a_spill_file_is_replayed_only_into_its_own_redis(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    entry = Entry("0123456789abcdef", {}, b"")
    for name, owner, request_id in (
        ("spill-1-1.jsonl", "redis://other-host:6379/0", "req-foreign"),
        ("spill-2-2.jsonl", redis_url, "req-ours"),
    ):
        record = {**_record_of(request_id)}
        payload = orjson.dumps(record)
        line = dataclasses.replace(entry, record=record, payload=payload).spill_line()
        (tmp_path / name).write_bytes(owner_line(owner) + line + b"not a record\n")
    writer = JournalWriter(redis, tmp_path, OPTIONS, store=redis_url)
    with capture_logs() as logs:
        writer.start()
        await wait_for_records(redis, 1)
        await writer.close()
    assert [r["request_id"] for r in await journal_records(redis)] == ["req-ours"]
    assert (tmp_path / "spill-1-1.jsonl").exists()  # left in place, for its own Redis
    assert not (tmp_path / "spill-2-2.jsonl").exists()
    [warning] = [log for log in logs if log["event"] == "journal_spill_for_other_redis"]
    assert warning["spilled_for"] == "redis://other-host:6379/0"
    assert writer.counters()["dead_lettered"] == 1  # the damaged line, kept aside


def _record_of(request_id: str) -> dict[str, object]:
    from gateway.journal.record import finalize
    from gateway.journal.redact import RedactionPolicy

    return finalize(dataclasses.replace(draft(0, b"{}"), request_id=request_id),
                    RedactionPolicy(), 1024)  # fmt: skip


async def test_redis_unavailable_is_logged_once_per_interval_with_a_count(tmp_path: Path) -> None:
    dead = create_redis(f"redis://127.0.0.1:{free_port()}/0")
    options = dataclasses.replace(OPTIONS, retry_delay=0.02, warn_interval=60.0)
    writer = JournalWriter(dead, tmp_path, options)
    with capture_logs() as logs:
        writer.start()
        for index in range(10):
            writer.submit(draft(index, b"{}"))
            await asyncio.sleep(0.05)

        async def spilled() -> bool:
            return writer.spilled == 10

        await wait_for(spilled, what="every record to be spilled")
        await writer.close()
    await dead.aclose()
    lines = [log for log in logs if log["event"] == "journal_redis_unavailable"]
    assert len(lines) == 1
    assert lines[0]["repeated"] == 1


class BrokenHeaders:
    """Headers whose iteration fails: stands for a bug in finalizing a record."""

    def __iter__(self) -> Any:
        raise RuntimeError("a bug while reading the headers")


async def test_a_record_whose_finalization_fails_is_still_written_incomplete(
    redis: Redis, tmp_path: Path
) -> None:
    writer = JournalWriter(redis, tmp_path, OPTIONS)
    writer.start()
    try:
        writer.submit(dataclasses.replace(draft(0, b"{}"), request_headers=BrokenHeaders()))
        writer.submit(draft(1, b"{}"))
        records = await wait_for_records(redis, 2)  # each checked against the schema
    finally:
        await writer.close()
    assert [r["request_id"] for r in records] == ["req-0", "req-1"]
    assert records[0]["incomplete"] is True
    assert (records[0]["status"], records[0]["path"]) == (200, "/v1/chat/completions")
    assert "incomplete" not in records[1]
    assert writer.counters()["restarts"] == 0


def test_values_json_cannot_carry_are_made_writable() -> None:
    record: dict[str, Any] = {
        "big": [2**70, -(2**64)],
        "text\udcff": "caf\udce9",
        "deep": [[[]]],
        "request": {"body": {"format": "json", "content": {"n": 2**65}}},
    }
    cleaned, payload = encode_record(record, {"request": b'{"n": 36893488147419103232}'})
    assert orjson.loads(payload) == cleaned
    assert cleaned["big"] == [str(2**70), str(-(2**64))]
    assert cleaned["text\\xff"] == "caf\\xe9"
    assert cleaned["request"]["body"] == {
        "format": "text",
        "content": '{"n": 36893488147419103232}',
        "bytes": 27,
        "truncated": False,
        "unserializable": True,
    }
