"""Rotation requests on the queue `key-rotation-requests`: what the timer and HTTP route enqueue and
the worker takes. The message is JSON naming the rotation record it belongs to."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from .accounts import READ_WRITE_KINDS
from .continuation import BadContinuation, Continuation
from .error_table import from_sdk
from .names import QUEUE_NAME
from .plan import SCOPES, TRIGGERS, RotationRequest
from .times import now_text


class BadMessage(ValueError):
    """A queue message that is not a rotation request; retrying it cannot help."""


def to_message(request: RotationRequest) -> str:
    document: dict[str, Any] = {
        "id": request.id,
        "target": request.target,
        "trigger": request.trigger,
        "keyKind": request.key_kind,
        "force": request.force,
    }
    if request.all_keys:
        document["scope"] = request.scope
    if request.requested_by:
        document["requestedBy"] = request.requested_by
    if request.continuation is not None:
        document["continuation"] = request.continuation.to_json()
    return json.dumps(document)


def from_message(body: str, attempt: int) -> RotationRequest:
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise BadMessage(f"message is not JSON: {exc.msg}") from None
    if not isinstance(document, dict):
        raise BadMessage("message is not a JSON object")
    for name in ("id", "target", "trigger"):
        if not isinstance(document.get(name), str) or not document[name]:
            raise BadMessage(f"message has no {name!r}")
    if document["trigger"] not in TRIGGERS:
        raise BadMessage(f"message 'trigger' is {document['trigger'][:40]!r}; expected one of {', '.join(TRIGGERS)}")
    key_kind = document.get("keyKind")
    if key_kind is not None and key_kind not in READ_WRITE_KINDS:
        # Caught here, not as a 400 from Resource Manager after the lease was taken.
        raise BadMessage(f"message 'keyKind' is {str(key_kind)[:40]!r}; expected one of {', '.join(READ_WRITE_KINDS)}")
    scope = document.get("scope", "rotation")
    if scope not in SCOPES:
        raise BadMessage(f"message 'scope' is {str(scope)[:40]!r}; expected one of {', '.join(SCOPES)}")
    try:
        continuation = Continuation.from_json(document["continuation"]) if "continuation" in document else None
    except BadContinuation as exc:
        raise BadMessage(str(exc)) from None
    return RotationRequest(
        id=document["id"],
        target=document["target"],
        trigger=document["trigger"],
        key_kind=key_kind,
        force=document.get("force") is True,
        attempt=attempt,
        retryable=True,
        continuation=continuation,
        scope=scope,
        requested_by=str(document.get("requestedBy") or document["trigger"])[:300],
    )


class RotationQueue:
    def __init__(self, queue_client: Any) -> None:
        self._queue = queue_client
        self._ready = False

    def send(self, request: RotationRequest, delay_seconds: int = 0) -> None:
        """Put a request on the queue, invisible for `delay_seconds` (a continuation's next check)."""
        from azure.core.exceptions import ResourceExistsError

        try:
            if not self._ready:
                with contextlib.suppress(ResourceExistsError):
                    self._queue.create_queue()
                self._ready = True
            self._queue.send_message(to_message(request), visibility_timeout=delay_seconds or None)
        except Exception as exc:
            raise from_sdk(exc, "storage", f"enqueue a rotation of {request.target} on {QUEUE_NAME}") from None


def enqueue(records: Any, queue: RotationQueue, request: RotationRequest, event: str, target: Any) -> None:
    """Record a rotation as queued, then put it on the queue. The record comes first so that the
    status route can answer for the id as soon as the caller has it."""
    from .events import emit

    records.save(request.id, status="queued", target=request.target, trigger=request.trigger,
                 requestedKeyKind=request.key_kind, force=request.force, requestedAt=now_text(),
                 secretName=target.secret_name, scope=request.scope if request.all_keys else None,
                 requestedBy=request.requested_by or None)
    try:
        queue.send(request)
    except Exception as exc:
        error = from_sdk(exc, "storage", f"enqueue a rotation of {request.target}")
        records.save(request.id, status="failed", target=request.target, errorCode=error.code,
                     errorMessage=error.message, finishedAt=now_text())
        raise error from None
    emit(event, f"{event} {request.target}", rotationId=request.id, trigger=request.trigger,
         requestedBy=request.requested_by or None,
         target=request.target, subscriptionId=target.subscription_id, resourceGroup=target.resource_group,
         account=target.account, secretName=target.secret_name, keyKind=request.key_kind)
