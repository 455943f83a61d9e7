"""Queue worker: run one rotation per message. A transient failure raises, so the host delivers the
message again (up to maxDequeueCount in host.json), then moves it to the poison queue."""

from __future__ import annotations

import logging

import azure.functions as func

from ..names import QUEUE_NAME, STORAGE_CONNECTION

logger = logging.getLogger(__name__)
bp = func.Blueprint()


class TransientRotationFailure(Exception):
    """Raised to hand the message back to the host for another attempt."""


@bp.queue_trigger(arg_name="msg", queue_name=QUEUE_NAME, connection=STORAGE_CONNECTION)
def rotation_worker(msg: func.QueueMessage) -> None:
    from ..rotation_queue import BadMessage, from_message  # on the first message, not at every cold start
    from ..runtime import get_runtime

    try:
        request = from_message(msg.get_body().decode("utf-8", "replace"), msg.dequeue_count or 1)
    except BadMessage as exc:
        # Retrying cannot fix a malformed message: say so and drop it.
        logger.error("dropped queue message %s: %s", msg.id, exc)
        return
    # A long wait for Azure goes on in a continuation message (outcome "running"): this delivery is done.
    result = get_runtime().rotator(worker=True).rotate(request)
    if result.outcome == "failed" and result.transient:
        raise TransientRotationFailure(f"{result.error_code}: {result.error_message}")
