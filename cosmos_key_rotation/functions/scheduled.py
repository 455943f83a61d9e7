"""Timer: on ROTATION_SCHEDULE, enqueue one rotation request per target.

A failure to enqueue (storage unavailable at the scheduled minute) must not skip a period: the function
raises, and its retry policy (Functions retry policies support timer triggers: exponential back-off from
RETRY_MIN to RETRY_MAX, RETRY_COUNT times) runs it again. A retry enqueues every target again; one already
enqueued is then skipped by the lease or the cooldown."""

from __future__ import annotations

import logging

import azure.functions as func

from ..errors import RotationError
from ..events import emit
from ..rotation import RotationRequest
from ..rotation_queue import enqueue
from ..runtime import get_runtime

logger = logging.getLogger(__name__)
bp = func.Blueprint()

RETRY_COUNT = 6
RETRY_MIN, RETRY_MAX = "00:00:30", "00:15:00"  # about 30 minutes of retries in all


@bp.timer_trigger(schedule="%ROTATION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.retry(strategy="exponential_backoff", max_retry_count=str(RETRY_COUNT), minimum_interval=RETRY_MIN,
          maximum_interval=RETRY_MAX)
def scheduled_rotation(timer: func.TimerRequest) -> None:
    if timer.past_due:
        # A run missed while the app was down or scaled to zero; the cooldown absorbs a duplicate.
        logger.warning("the rotation timer is past due; enqueueing the missed run now")
    runtime = get_runtime()
    failed: dict[str, RotationError] = {}
    for target in runtime.settings.targets:
        request = RotationRequest.new(target.name, "timer")
        if runtime.settings.paused(target.name):  # seen on the dashboard every run, until it is unpaused
            emit("RotationSkipped", f"RotationSkipped {target.name}: paused (PAUSED_TARGETS)", rotationId=request.id,
                 trigger="timer", target=target.name, account=target.account, outcome="skipped",
                 reason="paused: listed in PAUSED_TARGETS")
            continue
        try:
            enqueue(runtime.records, runtime.queue, request, "RotationScheduled", target)
        except RotationError as error:  # enqueue the other targets anyway, then fail the invocation
            failed[target.name] = error
    if failed:
        first = next(iter(failed.values()))
        message = (f"could not enqueue the rotation of {', '.join(failed)}: {first.code}: {first.message}; "
                   f"the host retries this run (up to {RETRY_COUNT} times, {RETRY_MIN} to {RETRY_MAX} apart)")
        emit("ScheduleFailed", f"ScheduleFailed {message}", logging.ERROR, trigger="timer", outcome="failed",
             errorCode=first.code, errorMessage=message)
        raise RuntimeError(f"ScheduleFailed: {first.code}")
