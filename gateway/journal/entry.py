"""`Entry`: a finalized record ready for Redis (its write token and JSON), and its spill line.

A spill line is `{"t": <token>, "r": <record>}`; reading one back takes the record's JSON bytes
as they were written (no re-encoding) and refuses a line that is not one, so a damaged spill
file is dead-lettered line by line instead of stopping the replay.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

_SPILL_PREFIX = b'{"t":"'
_SPILL_MIDDLE = b'","r":'


@dataclasses.dataclass(frozen=True, slots=True)
class Entry:
    """A finalized record ready for Redis: its write token and its JSON."""

    token: str
    record: dict[str, Any]
    payload: bytes

    def spill_line(self) -> bytes:
        return _SPILL_PREFIX + self.token.encode() + _SPILL_MIDDLE + self.payload + b"}\n"

    @classmethod
    def from_spill_line(cls, line: bytes) -> Entry | None:
        """The entry a spill line holds, or None when the line is not one (damaged file)."""
        try:
            data = orjson.loads(line)
            token, record = data["t"], data["r"]
            if not isinstance(token, str) or not isinstance(record, dict):
                return None
            flat_fields(record)
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return None
        head = _SPILL_PREFIX + token.encode() + _SPILL_MIDDLE
        if line.startswith(head) and line.endswith(b"}\n"):
            return cls(token, record, line[len(head) : -2])
        return cls(token, record, orjson.dumps(record))


def flat_fields(record: dict[str, Any]) -> tuple[str, ...]:
    """The flat fields of a record's stream entry, in `writer._ENTRY_FIELDS` order (all but
    `record`); raises KeyError or TypeError for a dict that is not a record."""
    usage = record["usage"] or {}
    return (
        str(record["v"]),
        record["request_id"],
        record["account"] or "",
        record["client"] or "",
        str(record["status"]),
        record["outcome"],
        str(record["latency_ms"]["total"]),
        str(usage.get("input_tokens", "")),
        str(usage.get("output_tokens", "")),
    )
