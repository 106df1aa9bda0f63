"""Every record can be written: `encode_record` turns any finalized record into JSON bytes.

`orjson.dumps` refuses three things a request can smuggle into a record, and each used to stop
the writer for every tenant (issue 10):

- strings that are not UTF-8: aiohttp decodes header bytes with `surrogateescape`, so one `\\xff`
  in a header is a lone surrogate. Those bytes are kept, escaped as text (`\\xff`).
- nesting deeper than orjson writes (255 levels; it reads 1024): a body is kept as its raw text
  with `unserializable: true`; any other value that deep becomes the string `_TOO_DEEP`.
- integers outside 64 bits (a plugin or a policy may put Python ints in a record): strings.

The fast path is one `orjson.dumps`; only a record that fails it is walked.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.journal.record import SCHEMA_VERSION, RecordDraft, iso_time

#: orjson writes at most 255 levels of containers; keep a margin for the record's own nesting.
MAX_DEPTH = 240

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1
_TOO_DEEP = "[nested too deep to record]"


def encode_record(
    record: dict[str, Any],
    raw_bodies: dict[str, bytes | None] | None = None,
    redact: Callable[[str], str] = str,
) -> tuple[dict[str, Any], bytes]:
    """The record (cleaned if it had to be) and its JSON. `raw_bodies` maps `request` and
    `response` to the raw body bytes, kept as (redacted) text when the parsed body cannot be
    written."""
    try:
        return record, orjson.dumps(record)
    except TypeError:
        pass
    cleaned = dict(record)
    for side in ("request", "response"):
        part = record.get(side)
        if not isinstance(part, dict):
            continue
        body = part.get("body")
        if not isinstance(body, dict) or body.get("format") != "json":
            continue
        try:
            orjson.dumps(body["content"])
        except TypeError:
            raw = (raw_bodies or {}).get(side) or b""
            kept = {
                "format": "text",
                "content": redact(text_of(raw)),
                "bytes": len(raw),
                "truncated": False,
                "unserializable": True,
            }
            cleaned[side] = {**part, "body": kept}
    cleaned = writable(cleaned, 0)
    return cleaned, orjson.dumps(cleaned)


def text_of(raw: bytes) -> str:
    """Bytes as text: UTF-8 where they are, `\\xNN` escapes where they are not."""
    return raw.decode("utf-8", "backslashreplace")


def clean_text(value: str) -> str:
    """A str that orjson can write: lone surrogates (undecodable bytes) become `\\xNN`."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return value


def writable(value: Any, depth: int) -> Any:
    """`value` with every string valid UTF-8, every int within 64 bits, and nothing nested
    past `MAX_DEPTH` (a deeper container becomes a marker string)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, bool) or value is None or isinstance(value, float):
        return value
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else str(value)
    if isinstance(value, dict | list | tuple) and depth >= MAX_DEPTH:
        return _TOO_DEEP
    if isinstance(value, dict):
        return {clean_text(str(k)): writable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [writable(item, depth + 1) for item in value]
    return clean_text(repr(value))


def minimal_record(draft: RecordDraft) -> dict[str, Any]:
    """A record from the draft's plain fields alone, for a draft whose finalization failed:
    the request is still journaled (`incomplete: true`), without bodies or usage."""
    none = {"format": "none", "content": None, "bytes": 0, "truncated": False}
    return {
        "v": SCHEMA_VERSION,
        "request_id": clean_text(str(draft.request_id))[:128] or "-",
        "client_request_id": None,
        "time": iso_time(draft.started_wall),
        "host": clean_text(str(draft.host))[:255],
        "addressing": draft.addressing if draft.addressing in ("host", "path") else "host",
        "api": draft.api if draft.api in ("openai", "anthropic") else "openai",
        "account": draft.account,
        "client": draft.client,
        "key_id": draft.key_id,
        "method": clean_text(str(draft.method)),
        "path": clean_text(str(draft.path))[:1024],
        "status": draft.status,
        "outcome": draft.outcome,
        "latency_ms": {
            "total": draft.total_ms,
            "upstream": draft.upstream_ms,
            "ttfb": draft.ttfb_ms,
        },
        "model": {"requested": None, "answered": None},
        "usage": None,
        "stream": None,
        "request": {"headers": {}, "body": dict(none)},
        "response": {"headers": {}, "body": dict(none)},
        "error": draft.error if isinstance(draft.error, dict) else None,
        "attempts": [],
        "hops": [],
        "incomplete": True,
    }
