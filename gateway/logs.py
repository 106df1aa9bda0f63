"""structlog set-up: JSON lines on stdout, rendered by orjson, loggers cached after first use.

Log events are snake_case verbs with context as keyword arguments. Nothing secret is ever passed
to a logger: keys are named by their public id, headers and bodies are never logged. The access
line is written once per request, so the chain is kept short: fixed fields (a worker's index)
are added by a plain processor rather than through context variables, and the ISO timestamp
reuses its formatted second.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

import orjson
import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class IsoTimestamp:
    """Adds `timestamp` as RFC 3339 UTC with microseconds, formatting each second once."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(
        self, _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        event_dict["timestamp"] = f"{self._prefix}.{int((now - second) * 1e6):06d}Z"
        return event_dict


def _static_fields(fields: Mapping[str, Any]) -> structlog.types.Processor:
    def add(
        _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
        return event_dict

    return add


def configure_logging(level: str = "info", fields: Mapping[str, Any] | None = None) -> None:
    """Configure structlog once per process; `fields` go on every line (e.g. a worker index)."""
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    processors: list[structlog.types.Processor] = [
        structlog.processors.add_log_level,
        IsoTimestamp(),
    ]
    if fields:
        processors.append(_static_fields(dict(fields)))
    processors += [
        structlog.processors.format_exc_info,
        structlog.processors.JSONRenderer(serializer=orjson.dumps),
    ]
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        processors=processors,
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
    )
    # Libraries that use the standard logging module: warnings and above, to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)


class ThrottledLog:
    """A warning that a failing loop would repeat every half second: written at most once per
    `interval` seconds, with how many times it happened since the last line (`repeated`)."""

    def __init__(self, logger: Any, event: str, interval: float = 30.0) -> None:
        self.logger = logger
        self.event = event
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0
        self.failing = False

    def warn(self, **context: Any) -> bool:
        """Log (or count) one occurrence; True when a line was written."""
        self.failing = True
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return False
        self.logger.warning(self.event, repeated=self._suppressed + 1, **context)
        self._last = now
        self._suppressed = 0
        return True

    def recovered(self, event: str, **context: Any) -> None:
        """The condition is over: say so once, with the occurrences not yet reported."""
        if self.failing:
            self.logger.info(event, unreported=self._suppressed, **context)
        self.failing = False
        self._suppressed = 0
        self._last = -float("inf")
