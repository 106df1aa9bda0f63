"""The journal's in-memory queue is bounded by records and by the bytes of bodies it holds:
past either bound the oldest records move to the spill file, so memory stays bounded and
nothing is lost. The writer is started against the suite's real Redis but kept from draining,
so the bound is what is exercised."""

from __future__ import annotations

from pathlib import Path

import orjson
from redis.asyncio import Redis

from gateway.journal.record import RecordDraft
from gateway.journal.writer import JournalOptions, JournalWriter
from gateway.store import keys


def draft(index: int, body: bytes) -> RecordDraft:
    return RecordDraft(
        request_id=f"req-{index}",
        client_request_id=None,
        started_wall=1_700_000_000.0 + index,
        host="h.0000-0000-0000.api.localhost",
        addressing="host",
        api="openai",
        account="0000-0000-0000",
        client="h",
        key_id="0123456789ab",
        method="POST",
        path="/v1/chat/completions",
        status=200,
        outcome="ok",
        total_ms=1.0,
        upstream_ms=None,
        ttfb_ms=None,
        model="m",
        error=None,
        request_headers=(),
        request_body=body,
        response_headers=(),
        response_body=None,
        capture=None,
        usage_hidden=False,
        usage=None,
        size=len(body),
        attempts=[],
        hops=[],
    )


def spilled_ids(directory: Path) -> list[str]:
    lines = b"".join(path.read_bytes() for path in sorted(directory.glob("spill-*.jsonl")))
    records = [orjson.loads(line) for line in lines.splitlines()]
    return [r["r"]["request_id"] for r in records if "owner" not in r]  # skip the owner lines


async def test_queue_past_its_bytes_spills_the_oldest_records(redis: Redis, tmp_path: Path) -> None:
    body = b'{"model": "m", "messages": []}' + b" " * 970  # 1000 bytes
    options = JournalOptions(queue_bytes=2500, flush_interval=3600, batch_size=1000)
    writer = JournalWriter(redis, tmp_path, options)
    writer.start()
    try:
        for index in range(5):
            writer.submit(draft(index, body))
        # 5000 bytes submitted, 2500 allowed: the three oldest went to disk, in order.
        assert writer.queued == 2
        assert writer.spilled == 3
        assert spilled_ids(tmp_path) == ["req-0", "req-1", "req-2"]
    finally:
        await writer.close()
    # Closing wrote the queue and replayed the spill: every record reached Redis, once.
    assert await redis.xlen(keys.JOURNAL_STREAM) == 5


async def test_queue_past_its_count_spills_the_oldest_records(redis: Redis, tmp_path: Path) -> None:
    options = JournalOptions(queue_size=3, flush_interval=3600, batch_size=1000)
    writer = JournalWriter(redis, tmp_path, options)
    writer.start()
    try:
        for index in range(4):
            writer.submit(draft(index, b"{}"))
        assert writer.queued == 3
        assert spilled_ids(tmp_path) == ["req-0"]
    finally:
        await writer.close()
    assert await redis.xlen(keys.JOURNAL_STREAM) == 4
