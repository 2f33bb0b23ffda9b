"""Keep request data out of the server log.

BentoML logs every rejected request with the pydantic error, whose text carries the offending
input values (a posted history's birth year, an event's code and time). A filter on BentoML's
HTTP logger replaces such records with one warning naming only the fields; the client still gets
the full error in its response.
"""

from __future__ import annotations

import logging

BENTOML_HTTP_LOGGER = "bentoml._internal.server.http_app"


class RedactValidationErrors(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        from pydantic import ValidationError

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ValidationError):
            fields = sorted({".".join(str(part) for part in e["loc"]) or "<body>" for e in error.errors()})
            path = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg = "rejected request on %s: %d validation error(s) in %s"
            record.args = (path, error.error_count(), ", ".join(fields[:10]))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def install_log_redaction() -> None:
    """Idempotent: called from the service's __init__ (in the worker, not at import)."""
    logger = logging.getLogger(BENTOML_HTTP_LOGGER)
    if not any(isinstance(f, RedactValidationErrors) for f in logger.filters):
        logger.addFilter(RedactValidationErrors())
