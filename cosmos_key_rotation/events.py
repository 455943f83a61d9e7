"""Rotation events (PRODUCT.md §5): one log record per step, with flat properties.

With azure-monitor-opentelemetry in the Functions worker, the flat `extra` keys of each record become
custom dimensions in Application Insights; locally, `JsonLinesFormatter` prints the same record as one
JSON object per line. Every message and property passes through `redaction.redact` first, so a key,
connection string or token that slipped into an SDK error never reaches a log.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import redaction
from .names import EVENT_NAMES
from .redaction import redact

logger = logging.getLogger("cosmos_key_rotation.events")

PROPERTIES = (
    "event", "rotationId", "trigger", "target", "subscriptionId", "resourceGroup", "account", "keyKind",
    "previousKeyKind", "secretName", "secretVersion", "outcome", "durationMs", "attempt", "errorCode",
    "errorMessage", "reason", "primaryMasterKeyGeneratedAt", "secondaryMasterKeyGeneratedAt",
    "primaryReadonlyMasterKeyGeneratedAt", "secondaryReadonlyMasterKeyGeneratedAt", "maxKeyAgeDays", "phase",
    "origin", "requestedBy", "clients", "windowHours", "guard", "forced", "disabledVersions",
)


@dataclass
class EventLog:
    """The properties every event of one rotation shares, so each step only adds its own."""

    context: dict[str, Any] = field(default_factory=dict)

    def bind(self, **properties: Any) -> EventLog:
        return EventLog({**self.context, **properties})

    def emit(self, event: str, message: str, level: int = logging.INFO, **properties: Any) -> None:
        emit(event, message, level, **{**self.context, **properties})


def emit(event: str, message: str, level: int = logging.INFO, **properties: Any) -> None:
    if event not in EVENT_NAMES:
        raise ValueError(f"unknown event {event!r}")
    extra = {"event": event}
    for key, value in properties.items():
        if key not in PROPERTIES:
            raise ValueError(f"unknown event property {key!r}")
        if value is None:
            continue
        extra[key] = redact(value) if isinstance(value, str) else value
    logger.log(level, redact(message), extra=extra)


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and the event properties."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in PROPERTIES:
            if key in record.__dict__:
                document[key] = record.__dict__[key]
        if record.exc_info and record.exc_info[1] is not None:
            document["exception"] = redact(f"{type(record.exc_info[1]).__name__}: {record.exc_info[1]}")
        return json.dumps(document, default=str)


def configure_local_logging(level: int = logging.INFO, stream: Any = None) -> logging.Handler:
    """JSON lines on stderr (or `stream`), for the CLI, the demo and local runs."""
    redaction.install()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonLinesFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    # The SDKs log every HTTP request at INFO; keep them for warnings and errors only.
    logging.getLogger("azure").setLevel(logging.WARNING)
    return handler
