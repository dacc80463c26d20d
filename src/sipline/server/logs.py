"""Where a `serve` process's log records go and how they read (docs/behaviour.md#logs).

One handler on stderr for every record, sipline's and uvicorn's (uvicorn is given no logging
config of its own, so its loggers propagate to the root): text for a person at a terminal, or
JSON lines for a collector. Before either formatter sees a record, `Masking` rewrites what could
carry a credential that slipped into a message, an argument, a field or a traceback: a webhook
code in a `/rest/<user>/<code>/` path, a digest `response`, a password.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

import orjson

from sipline.rest.routes import masked

# the fields a record may carry (`extra=`, docs/behaviour.md#reg-log, docs/behaviour.md#office-log),
# in the order the text format appends them
CONTEXT = ("portal", "config_id", "code", "reason", "cause", "provider", "contact", "source")
HIDDEN = "…"


def _hide_value(match: re.Match[str]) -> str:
    """The name and `=`/`:` kept, the value hidden; a quoted value stays quoted."""
    value = match[2]
    quote = value[0] if value[:1] in ('"', "'") else ""
    return f"{match[1]}{quote}{HIDDEN}{quote}"


# (pattern, replacement): the last line of defence, not the first (code masks what it logs itself)
SECRETS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # a webhook code, as the access log masks it: /rest/<user>/<code>/... (rest/routes.masked)
    (re.compile(r"/rest/\S*", re.IGNORECASE), lambda match: masked(match[0])),
    # RFC 3261 §22.4 (digest) Authorization: response="…", and the cnonce it is made with
    (re.compile(r"""(\b(?:response|cnonce)\s*=\s*)("[^"]*"|[^\s,]+)""", re.IGNORECASE), _hide_value),
    # PASSWORD=…, "PASSWORD": "…", password='…' (a parameter dump, a repr)
    (re.compile(r"""(password["']?\s*[:=]\s*)("[^"]*"|'[^']*'|[^\s,;&}\]]+)""", re.IGNORECASE), _hide_value),
    # a URL's user:password@ (e.g. a database URL in an error)
    (re.compile(r"(://[^:/\s@]+:)([^@\s/]+)(?=@)"), _hide_value),
)


def mask(text: str) -> str:
    for pattern, replace in SECRETS:
        text = pattern.sub(replace, text)
    return text


class Masking(logging.Filter):
    """Rewrites a record before any formatter sees it: its message (formatted, args dropped), its
    traceback text and its text fields, with `mask`."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it (Handler.handleError), as ever
            return True
        record.msg, record.args = mask(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for name in CONTEXT:
            value = getattr(record, name, None)
            if isinstance(value, str):
                setattr(record, name, mask(value))
        return True


def context(record: logging.LogRecord) -> dict[str, object]:
    """The record's context fields that hold something."""
    found = {name: getattr(record, name, None) for name in CONTEXT}
    return {name: value for name, value in found.items() if value is not None and value != ""}


class TextLines(logging.Formatter):
    """`2026-12-06 20:47:10,123 WARNING sipline.registration: line 12 …`, then the context fields as
    key=value (quoted when they hold spaces or quotes), then any traceback on the lines below."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        pairs = [f"{name}={_plain(value)}" for name, value in context(record).items()]
        return " ".join([super().formatMessage(record), *pairs])


def _plain(value: object) -> str:
    text = str(value)
    if not text or any(char.isspace() or char in "\"'=" for char in text):
        return orjson.dumps(text).decode()
    return text


class JsonLines(logging.Formatter):
    """One JSON object a line: time (ISO 8601, milliseconds, the local offset), level, logger,
    message, the context fields the record carries, and `exc` with the traceback's text."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created).astimezone().isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context(record),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return orjson.dumps(entry, default=str).decode()


FORMATTERS: dict[str, Callable[[], logging.Formatter]] = {"text": TextLines, "json": JsonLines}


def chosen_format(log_format: str | None, stream: TextIO) -> str:
    """--log-format, else text on a terminal and JSON lines for anything else (a pipe, a file, journald)."""
    if log_format is not None:
        return log_format
    return "text" if stream.isatty() else "json"


def configure(level: str, log_format: str | None, stream: TextIO | None = None) -> logging.Handler:
    """The root logger's one handler, replacing any other; `level` as --log-level gives it."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.setFormatter(FORMATTERS[chosen_format(log_format, stream)]())
    handler.addFilter(Masking())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    return handler
