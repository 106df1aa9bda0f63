"""structlog set-up: JSON lines on stdout, rendered by orjson, loggers cached after first use.

Log events are snake_case verbs with context as keyword arguments. Nothing secret is ever passed
to a logger: keys are named by their public id, headers and bodies are never logged.
"""

from __future__ import annotations

import logging
import sys

import orjson
import structlog

_LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


def configure_logging(level: str = "info") -> None:
    numeric = _LEVELS.get(level.lower(), logging.INFO)
    structlog.configure(
        cache_logger_on_first_use=True,
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(sys.stdout.buffer),
    )
    # Libraries that use the standard logging module: warnings and above, to stderr.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, force=True)
