"""Keep request data out of the server log, and keep what a request sends from forging log lines.

BentoML logs every rejected request with the pydantic error, whose text carries the offending
input values (a posted history's birth year, an event's code and time). A filter on BentoML's
HTTP logger replaces such records with one warning naming only the fields; the client still gets
the full error in its response.

Field names, and the paths BentoML's HTTP and access loggers write, come from the request: a JSON
key or a percent-encoded path may hold a newline, and a newline there starts what reads as a
log line of its own ("\\n2026-01-01 [INFO] forged"). Every text argument of those loggers' records is
escaped (control, format and line-separator characters become \\xNN or \\uNNNN, a backslash
doubles), so one request is one line.
"""

from __future__ import annotations

import logging
import unicodedata

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"
BENTOML_ACCESS_LOGGER = "bentoml.access"
# Cc: C0 and C1 controls (newline, carriage return, escape, ...); Cf: format characters (bidi
# overrides that reorder what a reader sees); Zl, Zp: Unicode's line and paragraph separators.
ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp"})


def _escaped(char: str) -> str:
    if char == "\\":
        return "\\\\"
    if unicodedata.category(char) not in ESCAPED_CATEGORIES:
        return char
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def escape_text(text: str) -> str:
    """Request text made safe for a one-line log record: printable characters as they are."""
    return "".join(_escaped(char) for char in text)


def _redacted(record: logging.LogRecord) -> None:
    """A rejected request's record: the fields only, no input values, no traceback. A body cut
    short (the client left, or the guard refused it past the size limit and told the route the
    client left: serving/middleware.py) is one line, not a traceback per refused request."""
    from pydantic import ValidationError
    from starlette.requests import ClientDisconnect

    error = record.exc_info[1] if record.exc_info else None
    if isinstance(error, ClientDisconnect):
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg, record.args = "request on %s ended before its body was read (client gone or body over the limit)", (path,)
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.INFO, "INFO"
    if isinstance(error, ValidationError):
        fields = sorted({".".join(str(part) for part in e["loc"]) or "<body>" for e in error.errors()})
        path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
        record.msg = "rejected request on %s: %d validation error(s) in %s"
        record.args = (path, error.error_count(), ", ".join(fields[:10]))
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"


class RedactValidationErrors(logging.Filter):
    """Redacts rejected requests (above) and escapes every text argument of the record: on these
    loggers the arguments are what the request sent (paths, field names); the format is ours."""

    def filter(self, record: logging.LogRecord) -> bool:
        _redacted(record)
        if isinstance(record.args, tuple):
            record.args = tuple(escape_text(arg) if isinstance(arg, str) else arg for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: escape_text(v) if isinstance(v, str) else v for k, v in record.args.items()}
        return True


def install_log_redaction() -> None:
    """Idempotent: called from the service's __init__ (in the worker, not at import)."""
    for name in (BENTOML_HTTP_LOGGER, BENTOML_ACCESS_LOGGER):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactValidationErrors) for f in logger.filters):
            logger.addFilter(RedactValidationErrors())
