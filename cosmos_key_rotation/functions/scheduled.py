"""Timer: on ROTATION_SCHEDULE, enqueue one rotation request per target (scheduling.py).

A failure to enqueue (storage unavailable at the scheduled minute) must not skip a period: the function
raises, and its retry policy (Functions retry policies support timer triggers: exponential back-off from
RETRY_MIN to RETRY_MAX, RETRY_COUNT times) runs it again. A retry enqueues every target again; one already
enqueued is then skipped by the lease or the cooldown."""

from __future__ import annotations

import logging

import azure.functions as func

logger = logging.getLogger(__name__)
bp = func.Blueprint()

RETRY_COUNT = 6
RETRY_MIN, RETRY_MAX = "00:00:30", "00:15:00"  # about 30 minutes of retries in all


@bp.timer_trigger(schedule="%ROTATION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
@bp.retry(strategy="exponential_backoff", max_retry_count=str(RETRY_COUNT), minimum_interval=RETRY_MIN,
          maximum_interval=RETRY_MAX)
def scheduled_rotation(timer: func.TimerRequest) -> None:
    from ..scheduling import run_schedule  # on the first run, not at every cold start

    if timer.past_due:
        # A run missed while the app was down or scaled to zero; the cooldown absorbs a duplicate.
        logger.warning("the rotation timer is past due; enqueueing the missed run now")
    run_schedule(f"the host retries this run (up to {RETRY_COUNT} times, {RETRY_MIN} to {RETRY_MAX} apart)")
