"""Keys, connection strings and tokens never reach a log: `redact` masks anything shaped like one, and
`install` applies it to every log record of the process (the SDKs' too), whatever handler writes it: the
CLI's JSON lines, the Functions worker's own handler, Application Insights' exporter."""

from __future__ import annotations

import logging
import re
from typing import Any

_SECRET_PATTERNS = (
    # AccountKey=..., SharedAccessSignature, sig=... in connection strings and SAS URLs.
    re.compile(r"(?i)(AccountKey|SharedAccessKey|sig|access_token|client_secret)=([^;&\s\"']+)"),
    re.compile(r"(?i)(Bearer|type=master&ver=1\.0&sig=)\s*[A-Za-z0-9._~+/=%-]{8,}"),
    # Padded base64 the size of a key or longer (a Cosmos key is 88 characters ending '=='), and JWTs.
    re.compile(r"[A-Za-z0-9+/]{40,}={1,2}"),
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"),
)


def redact(text: str) -> str:
    """Replace anything shaped like a key, connection-string key, signature or token."""
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(_mask, text)
    return text


def _mask(match: re.Match[str]) -> str:
    if match.re.groups >= 2:
        return f"{match.group(1)}=[redacted]"
    if match.re.groups == 1:
        return f"{match.group(1)} [redacted]"
    return "[redacted]"


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """Mask the record's message (and a formatted traceback) in place."""
    try:
        message = record.getMessage()
    except Exception:  # a record whose arguments do not format: leave it to the handler to report
        return record
    cleaned = redact(message)
    if cleaned != message:
        record.msg, record.args = cleaned, None
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    return record


_installed = False


def install() -> None:
    """Redact every log record as it is created, in this process. Idempotent.

    A record factory rather than a filter: a filter on the root logger does not see records propagated
    from other loggers, and the Functions worker owns the handlers."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
