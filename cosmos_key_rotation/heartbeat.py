"""Safety net: a daily heartbeat with the age of all four keys of every target.

The rotation-overdue alert reads it (infra/queries/stale-rotation.kql): it fires when a key of a target is
older than MAX_KEY_AGE_DAYS, read-only keys included, and when no heartbeat arrived for two days, which
means the app itself is down (or its timers are): a broken timer can no longer hide behind silence.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from .errors import RotationError
from .events import emit
from .runtime import Runtime, get_runtime
from .settings import Target

THREADS = 16


def run() -> int:
    """Log one RotationHeartbeat per target; return how many targets it covered."""
    runtime = get_runtime()
    targets = runtime.targets(refresh=True)
    with ThreadPoolExecutor(max_workers=max(1, min(THREADS, len(targets)))) as pool:
        list(pool.map(lambda target: beat(runtime, target), targets))
    return len(targets)


def beat(runtime: Runtime, target: Target) -> None:
    limit = runtime.settings.max_key_age_days
    where = {"target": target.name, "subscriptionId": target.subscription_id, "resourceGroup": target.resource_group,
             "account": target.account, "origin": target.origin, "maxKeyAgeDays": limit, "trigger": "timer"}
    try:
        account = runtime.accounts.get(target)
    except RotationError as error:
        emit("RotationHeartbeat", f"RotationHeartbeat {target.name}: the key ages could not be read: {error.code}",
             logging.WARNING, errorCode=error.code, errorMessage=error.message, **where)
        return
    generated = {f"{name}GeneratedAt": value for name, value in account.generated_by_name().items()}
    emit("RotationHeartbeat", f"RotationHeartbeat {target.name}", **where, **generated)
