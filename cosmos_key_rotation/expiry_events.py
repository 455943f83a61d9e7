"""Safety net: Key Vault's Event Grid events about a secret's expiry start a rotation of its target.

Key Vault publishes `Microsoft.KeyVault.SecretNearExpiry` (30 days before a version's `exp`) and
`Microsoft.KeyVault.SecretExpired` to its Event Grid system topic, data `{Id, VaultName, ObjectType,
ObjectName, Version, NBF, EXP}` (docs: "Azure Key Vault as Event Grid source"). An event for the live
version of a target's secret (or read-only secret) enqueues a rotation with trigger `event`; every other
event is ignored, and a duplicate is absorbed by the cooldown. An expired live version still holds a valid
key: rotating is the fix, so it is rotated, not refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from .errors import RotationError
from .settings import Target

EXPIRY_EVENTS = ("Microsoft.KeyVault.SecretNearExpiry", "Microsoft.KeyVault.SecretExpired")
log = logging.getLogger(__name__)


def _same_vault(target: Target, data: Mapping[str, Any]) -> bool:
    """The event's `Id` is the version's URL on the vault's own host: the target's vault when the hosts
    match (in every cloud, and for the emulator's loopback vaults); else compare `VaultName` with the host's
    first label."""
    mine = urlsplit(target.key_vault_uri).netloc.lower()
    theirs = urlsplit(str(data.get("Id", ""))).netloc.lower()
    if theirs:
        return theirs == mine
    return mine.split(".", 1)[0] == str(data.get("VaultName", "")).lower()


def target_of(event_type: str, data: Mapping[str, Any], targets: Iterable[Target]) -> tuple[Target | None, str]:
    """The target whose secret the event is about, or None and why the event is ignored."""
    if event_type not in EXPIRY_EVENTS:
        return None, f"event type {event_type} is not a secret expiry"
    if str(data.get("ObjectType", "")).lower() != "secret":
        return None, f"object type {data.get('ObjectType')} is not a secret"
    secret = str(data.get("ObjectName", ""))
    for target in targets:
        if _same_vault(target, data) and secret in (target.secret_name, target.readonly_secret_name):
            return target, ""
    return None, f"secret {secret} of vault {data.get('VaultName')} is no target's"


def handle(event_id: str, event_type: str, data: Mapping[str, Any]) -> str:
    """Enqueue a rotation for an expiry event of a live secret version; say what was done."""
    from .rotation import RotationRequest
    from .rotation_queue import enqueue
    from .runtime import get_runtime

    runtime = get_runtime()
    target, why = target_of(event_type, data, runtime.targets())
    if target is None:
        log.info("Event Grid event %s ignored: %s", event_id, why)
        return f"ignored: {why}"
    secret = str(data.get("ObjectName"))
    try:
        live = runtime.vault(target.key_vault_uri).live(secret)
    except RotationError as error:
        live = None
        log.warning("could not read secret %s for event %s (%s); rotating anyway", secret, event_id, error.code)
    if live is not None and data.get("Version") and live.version != data.get("Version"):
        log.info("Event Grid event %s ignored: version %s of %s is not the live one", event_id, data.get("Version"),
                 secret)
        return "ignored: not the live version"
    request = RotationRequest.new(target.name, "event", requested_by=f"event {event_id}"[:200])
    enqueue(runtime.records, runtime.queue, request, "RotationRequested", target)  # logs RotationRequested
    log.info("Event Grid event %s (%s for %s) enqueued rotation %s", event_id, event_type, secret, request.id)
    return f"enqueued rotation {request.id}"
