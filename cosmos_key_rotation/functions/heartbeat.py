"""Timer: on HEARTBEAT_SCHEDULE (daily), log the age of all four keys of every target (heartbeat.py)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.timer_trigger(schedule="%HEARTBEAT_SCHEDULE%", arg_name="timer", run_on_startup=False, use_monitor=True)
def heartbeat(timer: func.TimerRequest) -> None:
    from ..heartbeat import run  # on the first run, not at every cold start

    run()
