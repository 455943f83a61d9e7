"""What the timer does: enqueue one rotation request per target, configured or discovered, in parallel."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .errors import RotationError
from .events import emit
from .rotation import RotationRequest
from .rotation_queue import enqueue
from .runtime import get_runtime
from .settings import Target

ENQUEUE_THREADS = 16


def run_schedule(retry_note: str) -> None:
    """Enqueue every target; raise (for the timer's retry policy) when one could not be enqueued."""
    runtime = get_runtime()
    failed: dict[str, RotationError] = {}
    targets = runtime.targets(refresh=True)  # discovery lists the tagged accounts again, once per run
    not_adopted: list[str] = []

    def schedule(target: Target) -> None:
        request = RotationRequest.new(target.name, "timer")
        if target.origin == "discovered" and not _adopted(runtime, target):
            not_adopted.append(target.name)  # reported once below, not as a failure per account
            return
        if runtime.settings.paused(target.name):  # seen on the dashboard every run, until it is unpaused
            emit("RotationSkipped", f"RotationSkipped {target.name}: paused (PAUSED_TARGETS)", rotationId=request.id,
                 trigger="timer", target=target.name, account=target.account, outcome="skipped",
                 reason="paused: listed in PAUSED_TARGETS")
            return
        try:
            enqueue(runtime.records, runtime.queue, request, "RotationScheduled", target)
        except RotationError as error:  # enqueue the other targets anyway, then fail the invocation
            failed[target.name] = error

    # A thousand targets are a record and a message each: in parallel, they are enqueued in seconds.
    with ThreadPoolExecutor(max_workers=ENQUEUE_THREADS) as pool:
        list(pool.map(schedule, targets))
    _report_discovery(runtime, targets, sorted(not_adopted))
    if failed:
        first = next(iter(failed.values()))
        message = (f"could not enqueue the rotation of {', '.join(failed)}: {first.code}: {first.message}; "
                   f"{retry_note}")
        emit("ScheduleFailed", f"ScheduleFailed {message}", logging.ERROR, trigger="timer", outcome="failed",
             errorCode=first.code, errorMessage=message)
        raise RuntimeError(f"ScheduleFailed: {first.code}")


def _adopted(runtime: Any, target: Target) -> bool:
    """A discovered account is rotated once it has a live secret, or declares the key applications use (tag
    cosmos-key-rotation-live-key: its first run adopts it). Unknown (Key Vault failed): let the worker say."""
    if target.live_key_kind is not None:
        return True
    try:
        return runtime.vault(target.key_vault_uri).live(target.secret_name) is not None
    except RotationError:
        return True


def _report_discovery(runtime: Any, targets: list[Target], not_adopted: list[str]) -> None:
    """One event per run for what discovery found; a subscription it could not list is a ScheduleFailed."""
    if runtime.settings.discovery is None:
        return
    found = runtime.discovered()
    for error in found.errors:
        emit("ScheduleFailed", f"ScheduleFailed {error.message}", logging.ERROR, trigger="timer", outcome="failed",
             errorCode=error.code, errorMessage=error.message)
    discovered = sum(1 for target in targets if target.origin == "discovered")
    summary = f"{discovered} discovered, {len(targets) - discovered} configured"
    if not_adopted:
        summary += (f"; not adopted (no secret and no cosmos-key-rotation-live-key tag), not rotated: "
                    f"{', '.join(not_adopted[:50])}{' ...' if len(not_adopted) > 50 else ''}")
    if found.problems:
        summary += f"; tagged but unusable: {'; '.join(found.problems[:20])}"
    level = logging.WARNING if not_adopted or found.problems else logging.INFO
    emit("TargetsDiscovered", f"TargetsDiscovered {summary}", level, trigger="timer", outcome="skipped"
         if not_adopted else "succeeded", reason=summary)
