"""Redaction of secrets in journal records: header names, and JSON paths in bodies.

Credential headers are always redacted, and so is a gateway key in any other header's value; more
names and paths come from the settings (`journal_redact_headers`, `journal_redact_paths`). A path
is dotted keys with `*` for any key or array index (`messages.*.secret`); a leading `$.` is
allowed. A body cut at the capture limit is no longer JSON, so there the last key of each path is
scrubbed textually (`"key": "..."`).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from typing import Any

REDACTED = "[REDACTED]"

ALWAYS_REDACTED_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "api-key", "x-api-key", "cookie", "set-cookie"}
)

#: A gateway key wherever it appears in a header value (a caller may send it in any header).
_GATEWAY_KEY = re.compile(r"gwk_[0-9a-f]{12}_[A-Za-z0-9_-]+")


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in value.split(",") if item.strip())


def _parse_path(path: str) -> tuple[str, ...]:
    if path.startswith("$."):
        path = path[2:]
    return tuple(part for part in path.split(".") if part)


@dataclasses.dataclass(frozen=True, slots=True)
class RedactionPolicy:
    headers: frozenset[str] = ALWAYS_REDACTED_HEADERS
    paths: tuple[tuple[str, ...], ...] = ()
    text_pattern: re.Pattern[str] | None = None

    @classmethod
    def from_settings(cls, headers: str, paths: str) -> RedactionPolicy:
        names = ALWAYS_REDACTED_HEADERS | {h.lower() for h in _split_list(headers)}
        parsed = tuple(p for p in (_parse_path(item) for item in _split_list(paths)) if p)
        leaves = sorted({p[-1] for p in parsed if p[-1] != "*"})
        pattern = None
        if leaves:
            alternatives = "|".join(re.escape(leaf) for leaf in leaves)
            pattern = re.compile(
                r'("(?:' + alternatives + r')"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}\]\s]+)'
            )
        return cls(frozenset(names), parsed, pattern)

    def headers_of(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """Headers as a dict (repeated names joined with ", "), secrets replaced."""
        out: dict[str, str] = {}
        for name, value in headers:
            key = name.lower()
            if key in self.headers:
                shown = REDACTED
            elif "gwk_" in value:
                shown = _GATEWAY_KEY.sub(REDACTED, value)
            else:
                shown = value
            out[key] = f"{out[key]}, {shown}" if key in out else shown
        return out

    def json_body(self, value: Any) -> Any:
        for path in self.paths:
            value = _redact_path(value, path)
        return value

    def text_body(self, text: str) -> str:
        if self.text_pattern is None:
            return text
        return self.text_pattern.sub(lambda m: m.group(1) + '"' + REDACTED + '"', text)


def _redact_path(value: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return REDACTED
    head, rest = path[0], path[1:]
    if isinstance(value, Mapping):
        return {
            key: (_redact_path(item, rest) if head in ("*", key) else item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        if head == "*":
            return [_redact_path(item, rest) for item in value]
        if head.isdigit():
            index = int(head)
            return [
                _redact_path(item, rest) if i == index else item for i, item in enumerate(value)
            ]
    return value


#: Bytes of header names and values a record keeps for a request that never authenticated
#: (anyone can send those, so they must not cost Redis 20 KB each).
UNAUTHENTICATED_HEADER_BYTES = 4096


def cap_headers(headers: dict[str, str], limit: int) -> tuple[dict[str, str], bool]:
    """The headers, in order, within `limit` bytes of names and values (the header that
    crosses it is cut); and whether anything was cut."""
    kept: dict[str, str] = {}
    room = limit
    for name, value in headers.items():
        size = len(name) + len(value)
        if size > room:
            if room > len(name):
                kept[name] = value[: room - len(name)]
            return kept, True
        kept[name] = value
        room -= size
    return kept, False
