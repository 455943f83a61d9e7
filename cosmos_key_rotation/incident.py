"""Incident rotation (request scope `all-keys`, `rotate --all-keys`): after a leak, every key of the account
is replaced, fast, without taking applications down.

1. replacing — the usual rotation of each pair: regenerate the key the secret does not hold, verify, publish.
2. grace     — INCIDENT_GRACE_SECONDS for applications to re-read the secrets.
3. retiring  — regenerate the keys that were live before: each published pair's other kind, and both
               read-only kinds when no read-only secret is configured (a leaked read-only key is a leak).

Every phase is recorded. A redelivery finds phase 1 done (the secrets carry the rotation's id), so it goes
on with the grace and phase 2 without repeating phase 1; a retired key is recognised by its
generationTime having moved past the value recorded before phase 2, so none is regenerated twice. These
functions decide from what was read; rotation.py does the steps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta

from .accounts import READ_ONLY_KINDS
from .plan import Plan
from .times import iso, parse_iso, utc


def kinds_to_retire(plans: list[Plan], readonly_secret: bool) -> list[str]:
    """The key kinds phase 3 regenerates: for each pair, the kind its secret does not publish now."""
    kinds = [next(k for k in plan.pair.kinds if k != plan.kind) for plan in plans]
    if not readonly_secret:
        kinds += list(READ_ONLY_KINDS)
    return kinds


def generated_before(record: Mapping[str, object] | None, kinds: list[str],
                     generated: Mapping[str, datetime | None]) -> dict[str, datetime | None]:
    """Each kind's generationTime before phase 3: as recorded by an earlier delivery, else as read now."""
    text = record.get("retireGeneratedBefore") if record else None
    recorded = json.loads(str(text)) if text else {}
    return {kind: parse_iso(recorded[kind]) if kind in recorded else generated.get(kind) for kind in kinds}


def to_record(before: Mapping[str, datetime | None]) -> str:
    return json.dumps({kind: iso(moment) if moment else None for kind, moment in before.items()})


def retired(kind: str, before: Mapping[str, datetime | None], generated: Mapping[str, datetime | None]) -> bool:
    """Whether `kind` was regenerated after phase 3 began: its generationTime moved past the one before."""
    now, then = generated.get(kind), before.get(kind)
    return now is not None and then is not None and utc(now) > utc(then)


def grace_until(record: Mapping[str, object] | None, now: datetime, grace_seconds: int) -> datetime:
    """When applications have had their time to re-read: as recorded, else from now."""
    recorded = parse_iso(str(record["graceUntil"])) if record and record.get("graceUntil") else None
    return recorded or now + timedelta(seconds=grace_seconds)
