"""A rotation waiting for Azure, carried by a queue message instead of a function invocation.

A regeneration can take hours on a large account, and a new key can take a while to propagate. Rather
than hold one invocation (or be retried to the poison queue meanwhile), the worker hands the rest of the
rotation to a continuation: a message on the rotation queue, invisible for a delay that grows, carrying
the rotation id, the secret and key kind it works on (never planned again), and where it stands. Each
delivery checks once and either goes on or schedules the next check, up to REGENERATION_TIMEOUT_MINUTES
(regenerating) or VERIFY_TIMEOUT_SECONDS (verifying).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from typing import Any

# regenerating, verifying: a rotation waiting for Azure; grace, retiring: an incident rotation (all keys)
# waiting for applications to re-read, then for the regeneration of the keys that were live.
PHASES = ("regenerating", "verifying", "grace", "retiring")
# Seconds until the next check, by how many checks were made; then the last one repeated.
DELAYS = (10, 20, 40, 80, 160, 300)


class BadContinuation(ValueError):
    """A continuation in a queue message that is not one this product wrote."""


@dataclass(frozen=True)
class Continuation:
    secret_name: str
    key_kind: str
    phase: str  # one of PHASES
    since: str  # when that phase began (ISO 8601 UTC): its timeout counts from there
    key_generated_before: str | None = None  # the kind's generationTime before the request (regenerating)
    operation_url: str | None = None  # Resource Manager's Azure-AsyncOperation URL (regenerating)
    checks: int = 0
    until: str | None = None  # grace: when applications have had their time to re-read (ISO 8601 UTC)

    def next(self, **changes: Any) -> Continuation:
        return replace(self, checks=self.checks + 1, **changes)

    @property
    def delay_seconds(self) -> int:
        if self.phase == "grace" and self.until:  # wake when the grace ends
            ends = datetime.fromisoformat(self.until.replace("Z", "+00:00"))
            return max(1, math.ceil((ends - datetime.now(timezone.utc)).total_seconds()))
        return DELAYS[min(self.checks, len(DELAYS) - 1)]

    def to_json(self) -> dict[str, Any]:
        return {_camel(name): value for name, value in asdict(self).items() if value is not None}

    @staticmethod
    def from_json(document: Any) -> Continuation:
        if not isinstance(document, dict):
            raise BadContinuation("'continuation' is not an object")
        fields = {name: document.get(_camel(name)) for name in Continuation.__dataclass_fields__}
        for name in ("secret_name", "key_kind", "phase", "since"):
            if not isinstance(fields[name], str) or not fields[name]:
                raise BadContinuation(f"'continuation.{_camel(name)}' is missing")
        if fields["phase"] not in PHASES:
            raise BadContinuation(f"'continuation.phase' is {str(fields['phase'])[:30]!r}")
        for name in ("key_generated_before", "operation_url", "until"):
            if fields[name] is not None and not isinstance(fields[name], str):
                raise BadContinuation(f"'continuation.{_camel(name)}' is not a string")
        checks = fields["checks"] if fields["checks"] is not None else 0
        if isinstance(checks, bool) or not isinstance(checks, int) or checks < 0:
            raise BadContinuation("'continuation.checks' is not a count")
        return Continuation(**{**fields, "checks": checks})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
