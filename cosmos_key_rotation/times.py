"""Timestamps as the records, events and secret tags write them: ISO 8601, UTC, with a `Z`.

Full precision is kept on purpose: `keyGeneratedAt` is compared with the account's keysMetadata, and a
truncated copy would look older than the key it describes.
"""

from __future__ import annotations

from datetime import datetime, timezone


def utc(value: datetime) -> datetime:
    """The same instant, timezone-aware in UTC (the SDKs may hand back naive UTC times)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def iso(value: datetime) -> str:
    return utc(value).isoformat().replace("+00:00", "Z")


def now_text() -> str:
    return iso(datetime.now(timezone.utc))


def parse_iso(text: str | None) -> datetime | None:
    """The instant an ISO 8601 text names, or None when there is none or it does not parse."""
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        return None
