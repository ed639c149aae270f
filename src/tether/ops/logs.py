"""Logging, configured once per process by `tether serve` (through uvicorn's `log_config`, so
uvicorn's own loggers go the same way): one JSON object a line for machines, or text for a
person at a terminal. `request_line` writes the one line per request; it carries ids and the
route template, never a header, a body, a query string or a raw path."""

from __future__ import annotations

import json
import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, TextIO

from tether.config import Settings

REQUEST_LOGGER = "tether.request"

# The request being served, for every other line logged while it runs.
_request_id: ContextVar[str | None] = ContextVar("tether_request_id", default=None)


def bind_request_id(request_id: str) -> None:
    _request_id.set(request_id)


def resolve_format(setting: str, stream: TextIO | None = None) -> str:
    """`auto` is text for a person at a terminal and JSON for everything else."""
    if setting != "auto":
        return setting
    stream = stream or sys.stderr
    try:
        return "text" if stream.isatty() else "json"
    except (AttributeError, ValueError):
        return "json"


def logging_config(settings: Settings) -> dict[str, Any]:
    """A `logging.config.dictConfig` dictionary; uvicorn applies it in every worker."""
    level = settings.log_level.upper()
    # `debug` is Tether's and uvicorn's: libraries' debug lines can quote SQL parameters
    # (aiosqlite) or form fields (python-multipart).
    libraries = "INFO" if level == "DEBUG" else level
    quiet = {"level": "WARNING", "handlers": [], "propagate": True}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "tether": {
                "()": "tether.ops.logs.make_formatter",
                "kind": resolve_format(settings.log_format),
            }
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "tether",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": libraries, "handlers": ["stderr"]},
        "loggers": {
            "tether": {"level": level, "handlers": [], "propagate": True},
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            # Off: `tether serve` passes access_log=False, and tether.request replaces it.
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            # httpx logs every URL it requests at INFO; a provider's URL is not ours to log.
            "httpx": quiet,
            "httpcore": quiet,
            # SQLAlchemy's statement log carries parameters (digests, ciphertexts): never on.
            "sqlalchemy": quiet,
            "alembic.runtime.plugins": quiet,  # a line per plugin per worker at startup
        },
    }


def make_formatter(kind: str) -> logging.Formatter:
    # What a LogRecord would otherwise look up on every call: the caller's frame, the thread
    # and the multiprocessing process name (the logging HOWTO's "Optimization" section).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    if hasattr(logging, "logAsyncioTasks"):  # Python 3.12+
        logging.logAsyncioTasks = False
    return TextFormatter() if kind == "text" else JsonFormatter()


# The formatted second, which most lines share with the one before: strftime is a tenth of a
# request line's cost.
_second: tuple[int, str] = (-1, "")


def _timestamp(created: float) -> str:
    global _second
    seconds = int(created)
    cached, prefix = _second
    if cached != seconds:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        _second = (seconds, prefix)
    return f"{prefix}.{int((created - seconds) * 1000):03d}Z"


class RequestLog:
    """The tether.request logger's records, made from a template: LogRecord's constructor
    works out the caller's file, module and thread for every record, and a request line's
    are always the same."""

    def __init__(self) -> None:
        self.logger = logging.getLogger(REQUEST_LOGGER)
        self._template: dict[str, Any] | None = None

    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        now = time.time()
        template = self._template
        if template is None:
            made = self.logger.makeRecord(
                REQUEST_LOGGER, logging.INFO, __file__, 0, "request", (), None
            )
            template = self._template = dict(made.__dict__)
            if "taskName" in template:  # Python 3.12+: the task of the first request only
                template["taskName"] = None
        record = logging.LogRecord.__new__(logging.LogRecord)
        record.__dict__.update(template)
        record.created = now
        record.msecs = (now - int(now)) * 1000
        record.relativeCreated = template["relativeCreated"] + (now - template["created"]) * 1000
        record.fields = fields
        self.logger.handle(record)


# One encoder for every line: json.dumps builds a new one on each call given any option.
_encode = json.JSONEncoder(separators=(",", ":"), default=str).encode


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process,
        }
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if "request_id" not in entry:
            request_id = _request_id.get()
            if request_id is not None:
                entry["request_id"] = request_id
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return _encode(entry)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        head = f"{stamp} {record.levelname:<7} {record.name}:"
        fields: dict[str, Any] = dict(getattr(record, "fields", None) or {})
        if record.name == REQUEST_LOGGER and fields:
            message = (
                f"{fields.pop('method', '')} {fields.pop('route', '')} "
                f"{fields.pop('status', '')} {fields.pop('duration_ms', '')} ms"
            )
        else:
            message = record.getMessage()
            request_id = _request_id.get()
            if request_id is not None:
                fields.setdefault("request_id", request_id)
        extra = " ".join(f"{key}={value}" for key, value in fields.items() if value is not None)
        line = f"{head} {message}" + (f"  {extra}" if extra else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line
