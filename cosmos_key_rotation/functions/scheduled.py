"""Timer: on ROTATION_SCHEDULE, enqueue one rotation request per target."""

from __future__ import annotations

import logging

import azure.functions as func

from ..rotation import RotationRequest
from ..rotation_queue import enqueue
from ..runtime import get_runtime

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.timer_trigger(schedule="%ROTATION_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def scheduled_rotation(timer: func.TimerRequest) -> None:
    if timer.past_due:
        # A run missed while the app was down or scaled to zero; the cooldown absorbs a duplicate.
        logger.warning("the rotation timer is past due; enqueueing the missed run now")
    runtime = get_runtime()
    failed = []
    for target in runtime.settings.targets:
        request = RotationRequest.new(target.name, "timer")
        try:
            enqueue(runtime.records, runtime.queue, request, "RotationScheduled", target)
        except Exception as exc:  # enqueue the other targets anyway, then fail the invocation
            logger.error("could not enqueue the rotation of %s: %s", target.name, exc)
            failed.append(target.name)
    if failed:
        raise RuntimeError(f"could not enqueue the rotation of {', '.join(failed)}")
