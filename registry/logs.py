"""Structured JSON logs (structlog) with request ids, and never a name, birth date or document."""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

# keys that could carry personal data if a caller ever passed them; their values are dropped
REDACTED_KEYS = frozenset(
    {
        "name",
        "family",
        "given",
        "birth_date",
        "birthDate",
        "document",
        "passport",
        "number",
        "bundle",
        "body",
        "photo",
        "identity",
        "holder",
    }
)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if key in REDACTED_KEYS:
            event[key] = "[redacted]"
    return event


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever ``sys.stderr`` is now (gunicorn and test runners swap it)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def configure(level: int = logging.INFO) -> None:
    """Route the standard library's and structlog's records to one JSON line each on stderr."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger("registry")
    root.handlers[:] = [handler]
    root.setLevel(level)
    root.propagate = False


def bind_request(request_id: str) -> None:
    """Attach the request id to every log line of this request."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id)


def get_logger(name: str = "registry") -> Any:
    """A structlog logger under the ``registry`` hierarchy."""
    return structlog.get_logger(name)
