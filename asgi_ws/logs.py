"""Structured logs: one line per event, ``key=value`` or JSON (contract §2 operability).

Every record the app writes is an **event** with fields::

    log_event(logger, logging.INFO, "rejected", endpoint="chat", status=400, reason="bad_room", client=...)

which prints, in the default ``text`` format::

    2026-11-23T10:00:00.123Z level=info logger=asgi_ws.websocket event=rejected endpoint=chat status=400
    reason=bad_room client=127.0.0.1:50312

(on one line)

and with ``ASGI_WS_LOG_FORMAT=json``, one object per line::

    {"ts": "2026-11-23T10:00:00.123Z", "level": "info", "logger": "asgi_ws.websocket", "event": "rejected", ...}

What is logged, and at which level: connects and disconnects at ``debug``,
refused handshakes at ``info``, the broker's state changes at ``info`` and
``warning``, and errors at ``error`` with the traceback.  Message payloads are
never logged: a field holds a size, a code or a path, never what a client said.

:func:`configure` gives the ``asgi_ws`` logger a handler of its own on stderr,
so the app's lines look the same under every server, whatever the server does
with its own loggers.  It does nothing if the logger already has a handler, so
an embedding application that configured logging keeps its own.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

__all__ = ["JSONFormatter", "KeyValueFormatter", "configure", "log_event"]


def log_event(logger: logging.Logger, level: int, event: str, /, **fields: Any) -> None:
    """Log ``event`` with ``fields``.

    The fields go on the record, for the formatters here, and into the message
    as ``key=value`` too, so that a line formatted by someone else's handler
    (an embedding application's, daphne's) still carries them.
    """
    if logger.isEnabledFor(level):
        message = " ".join([event, *(f"{key}={_value(value)}" for key, value in fields.items())])
        logger.log(level, message, extra={"event": event, "event_fields": fields}, stacklevel=2)


def _event(record: logging.LogRecord) -> str:
    """The event name of a :func:`log_event` record, or the whole message of any other record."""
    event: str = getattr(record, "event", None) or record.getMessage()
    return event


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "event_fields", None) or {}
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class KeyValueFormatter(logging.Formatter):
    """``ts level=... logger=... event=... key=value ...``; values with spaces or quotes are quoted."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [
            _timestamp(record),
            f"level={record.levelname.lower()}",
            f"logger={record.name}",
            f"event={_value(_event(record))}",
        ]
        parts += [f"{key}={_value(value)}" for key, value in _fields(record).items()]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JSONFormatter(logging.Formatter):
    """One JSON object per line; a traceback goes in ``"traceback"``."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": _event(record),
            **_fields(record),
        }
        if record.exc_info:
            document["traceback"] = self.formatException(record.exc_info)
        return json.dumps(document, default=str)


def _value(value: Any) -> str:
    text = str(value)
    if not text or any(character in text for character in ' "=\n\t'):
        return json.dumps(text)
    return text


def configure(level: int, log_format: str, stream: Any = None) -> None:
    """Send the ``asgi_ws`` logger's records to ``stream`` (stderr) in ``log_format``, at ``level``.

    Only where nobody has configured logging: if the ``asgi_ws`` logger or the
    root logger already has a handler (an embedding application, daphne's
    ``basicConfig``, pytest), records go there, and adding ours would print
    every line twice.  uvicorn, hypercorn and granian configure only their own
    loggers, so under them the app's lines come from this handler.
    """
    logger = logging.getLogger("asgi_ws")
    logger.setLevel(level)
    if logger.handlers or logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(JSONFormatter() if log_format == "json" else KeyValueFormatter())
    logger.addHandler(handler)
