"""Poison queue: a rotation that failed every attempt. Log RotationAbandoned (the alert reads it) and
mark its record failed, keeping the last error so the operator sees why."""

from __future__ import annotations

import logging

import azure.functions as func

from ..names import POISON_QUEUE_NAME, STORAGE_CONNECTION

logger = logging.getLogger(__name__)
bp = func.Blueprint()


@bp.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE_NAME, connection=STORAGE_CONNECTION)
def abandoned_rotation(msg: func.QueueMessage) -> None:
    from ..events import emit  # on the first message, not at every cold start
    from ..rotation_queue import BadMessage, from_message
    from ..runtime import get_runtime
    from ..times import now_text

    try:
        request = from_message(msg.get_body().decode("utf-8", "replace"), msg.dequeue_count or 1)
    except BadMessage as exc:
        emit("RotationAbandoned", f"RotationAbandoned: unreadable message {msg.id}: {exc}", logging.ERROR,
             outcome="failed", errorCode="BadMessage", errorMessage=str(exc))
        return
    runtime = get_runtime()
    record = runtime.records.get(request.id) or {}
    code = record.get("errorCode") or "RetriesExhausted"
    message = (f"gave up after {record.get('attempt', '?')} attempts; last error: "
               f"{record.get('errorMessage') or 'unknown'}")
    runtime.records.save(request.id, status="failed", target=request.target, errorCode=code,
                         errorMessage=message, finishedAt=now_text())
    try:
        target = runtime.target(request.target)
    except KeyError:
        target = None
    emit("RotationAbandoned", f"RotationAbandoned {request.target} {code}: {message}", logging.ERROR,
         rotationId=request.id, trigger=request.trigger, target=request.target, outcome="failed",
         errorCode=code, errorMessage=message, attempt=record.get("attempt"),
         account=target.account if target else None,
         subscriptionId=target.subscription_id if target else None,
         resourceGroup=target.resource_group if target else None)
