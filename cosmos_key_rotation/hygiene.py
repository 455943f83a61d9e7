"""Hygiene after a regeneration: the secret's earlier versions whose key has been regenerated since are
disabled, so nothing can read a dead key from an old version (an application reading a version by its id,
an old Key Vault reference). Decided from the versions' tags alone, never their values: a version tagged
`keyKind` K with `keyGeneratedAt` before K's current generation time (the account's `keysMetadata`) holds a
dead key. The live version, and any version without those tags, is never touched. Every kind is checked
each time, so a version a failed attempt left enabled is caught by the next rotation."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime

from .times import parse_iso, utc
from .vault import LiveSecret


def dead_versions(versions: Iterable[LiveSecret], generated: Mapping[str, datetime | None],
                  live_version: str) -> list[str]:
    """The ids of the enabled versions whose key kind has been regenerated after their key was read."""
    dead = []
    for version in versions:
        tagged = parse_iso(version.tags.get("keyGeneratedAt"))
        current = generated.get(version.key_kind or "")
        if (version.version != live_version and version.enabled and tagged is not None and current is not None
                and utc(tagged) < utc(current)):
            dead.append(version.version)
    return dead
