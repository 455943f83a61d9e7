"""HTTP routes (PRODUCT.md §3): request a rotation, read its status, list the targets. The function app's
HTTP triggers (functions/http_api.py) call these.

The request route only validates, records and enqueues: the answer never waits for a regeneration,
which can take minutes (Azure's front end cuts HTTP responses at 230 s). Errors are JSON
`{"error": {"code", "message"}}`; bad input is a 4xx, never a 500, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import replace
from typing import Any
from urllib.parse import urlsplit

import azure.functions as func

from .accounts import READ_WRITE_KINDS
from .caller import READ_ROLE, REQUEST_ROLE, Denied, authorize
from .errors import RotationError
from .plan import SCOPES
from .rotation import RotationRequest, pairs_of
from .rotation_queue import enqueue
from .runtime import Runtime, get_runtime
from .settings import SettingsError
from .status import all_targets

logger = logging.getLogger(__name__)
_REQUEST_FIELDS = {"target", "keyKind", "force", "scope"}
# What the target's own state refuses (the caller or an operator must act first), answered 409 at once.
_STATE_CONFLICTS = ("KeyKindIsLive", "NoLiveSecret", "KeyChangedOutside", "SecretDeleted", "SecretDisabled")
_ROTATION_ID = re.compile(r"[0-9a-fA-F-]{36}")


class HttpError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _json(document: Any, status: int = 200, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(document), status_code=status, mimetype="application/json",
                             headers=headers)


def _error(error: HttpError) -> func.HttpResponse:
    return _json({"error": {"code": error.code, "message": error.message}}, error.status, error.headers)


# The app roles each route accepts under HTTP_AUTH=entra (caller.py).
_REQUESTERS = frozenset({REQUEST_ROLE})
_READERS = frozenset({READ_ROLE, REQUEST_ROLE})


def _handle(req: func.HttpRequest, method: str, answer: Any, roles: frozenset[str] = _READERS) -> func.HttpResponse:
    """Run one route: method check, runtime, who is asking, and every failure turned into a JSON error.
    `answer(runtime, requested_by)` builds the answer."""
    try:
        if req.method.upper() != method:
            raise HttpError(405, "MethodNotAllowed", f"{req.method.upper()} is not allowed here; use {method}",
                            {"Allow": method})
        runtime = get_runtime()
        requested_by = authorize(runtime.settings.http_auth, runtime.settings.auth_enabled, dict(req.headers), roles)
        return answer(runtime, requested_by)
    except Denied as denied:
        if denied.status == 500:
            logger.error("%s", denied.message)
        headers = {"WWW-Authenticate": "Bearer"} if denied.status == 401 else None
        return _error(HttpError(denied.status, denied.code, denied.message, headers))
    except HttpError as error:
        return _error(error)
    except SettingsError as error:
        logger.error("the app settings are invalid: %s", error)
        return _error(HttpError(500, "ConfigurationError", f"the app settings are invalid: {error}"))
    except RotationError as error:
        status = 503 if error.transient else 502
        return _error(HttpError(status, error.code, error.message))
    except Exception as exc:
        logger.error("unexpected %s in %s %s", type(exc).__name__, req.method, urlsplit(req.url).path)
        return _error(HttpError(500, "InternalError", "unexpected error; see the function app's logs"))


def request_rotation(req: func.HttpRequest) -> func.HttpResponse:
    return _handle(req, "POST", lambda runtime, who: _request_rotation(req, runtime, who), _REQUESTERS)


def rotation_status(req: func.HttpRequest) -> func.HttpResponse:
    return _handle(req, "GET", lambda runtime, who: _rotation_status(req, runtime))


def targets(req: func.HttpRequest) -> func.HttpResponse:
    return _handle(req, "GET", lambda runtime, who: _json({"timerDisabled": runtime.settings.timer_disabled,
                                                           "targets": all_targets(runtime)}))


def _request_rotation(req: func.HttpRequest, runtime: Runtime, requested_by: str) -> func.HttpResponse:
    body = _parse_body(req)
    target_name, key_kind, force, scope = _validate(body, runtime)
    target = runtime.target(target_name)
    busy = runtime.leases.in_progress(target)
    if busy is not None:
        raise HttpError(409, "RotationInProgress", f"a rotation of account {target.account} is running now"
                        if busy == "running" else busy)
    request = RotationRequest.new(target.name, "http", key_kind=key_kind, force=force, scope=scope,
                                  requested_by=requested_by)
    _refuse_early(runtime, target, request)
    enqueue(runtime.records, runtime.queue, request, "RotationRequested", target)
    status_url = _status_url(req, request.id)
    return _json({"id": request.id, "status": "queued", "statusUrl": status_url}, 202, {"Location": status_url})


def _parse_body(req: func.HttpRequest) -> dict[str, Any]:
    raw = req.get_body() or b""
    try:
        body = json.loads(raw.decode("utf-8")) if raw.strip() else None
    except (ValueError, RecursionError):  # not UTF-8 or not JSON; nested too deep; an integer too long to read
        raise HttpError(400, "InvalidJson", "the request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise HttpError(400, "InvalidBody", 'the request body must be a JSON object such as {"target": "NAME"}')
    return body


def _validate(body: dict[str, Any], runtime: Runtime) -> tuple[str, str | None, bool, str]:
    unknown = sorted(set(body) - _REQUEST_FIELDS)
    if unknown:
        raise HttpError(400, "UnknownField", f"unknown field(s) {', '.join(unknown)}; allowed: "
                        f"{', '.join(sorted(_REQUEST_FIELDS))}")
    name = body.get("target")
    if not isinstance(name, str) or not name:
        raise HttpError(400, "MissingTarget", '"target" is required: the name of a configured target')
    try:
        runtime.target(name)
    except KeyError:
        raise HttpError(404, "TargetNotFound", f"no target named {name!r}") from None
    key_kind = body.get("keyKind")
    if key_kind is not None and key_kind not in READ_WRITE_KINDS:
        raise HttpError(400, "UnknownKeyKind", f'"keyKind" must be one of {", ".join(READ_WRITE_KINDS)}')
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise HttpError(400, "InvalidForce", '"force" must be true or false')
    scope = body.get("scope", "rotation")
    if scope not in SCOPES:
        raise HttpError(400, "InvalidScope", f'"scope" must be one of {", ".join(SCOPES)}')
    if scope == "all-keys" and key_kind is not None:
        raise HttpError(400, "InvalidScope", '"keyKind" cannot be combined with "scope": "all-keys", which '
                        "replaces every key of the account")
    return name, key_kind, force, scope


def _refuse_early(runtime: Runtime, target: Any, request: RotationRequest) -> None:
    """Answer now rather than queue a rotation that cannot run: 409 for a paused target, a missing, deleted,
    disabled or outdated secret, or the live key requested (whatever `force` says); 429 for the cooldown
    (unless `force`). A failure to look that may pass is not the caller's fault: the worker decides then."""
    if runtime.settings.paused(target.name):
        raise HttpError(409, "TargetPaused", f"{target.name} is paused (PAUSED_TARGETS); remove it from that "
                        "setting to rotate it")
    try:
        account = runtime.accounts.get(target)
        # A planning read only: no record is read for a request that does not exist yet.
        plan = runtime.rotator().plan(target, pairs_of(target)[0], account, replace(request, dry_run=True))
    except RotationError as error:
        if error.code in _STATE_CONFLICTS:
            raise HttpError(409, error.code, error.message) from None
        logger.warning("could not check the cooldown of %s before queueing: %s", target.name, error.code)
        return
    if plan.action == "cooldown" and plan.cooldown_left is not None:
        seconds = math.ceil(plan.cooldown_left.total_seconds())
        raise HttpError(429, "Cooldown",
                        f"{target.name} was rotated less than {runtime.settings.min_rotation_interval_minutes} "
                        f"min ago; retry in {seconds} s or send \"force\": true", {"Retry-After": str(seconds)})


def _rotation_status(req: func.HttpRequest, runtime: Runtime) -> func.HttpResponse:
    rotation_id = req.route_params.get("id", "")
    record = runtime.records.shown(rotation_id) if _ROTATION_ID.fullmatch(rotation_id) else None
    if record is None:
        raise HttpError(404, "RotationNotFound", f"no rotation with id {rotation_id!r}")
    return _json(record)


def _status_url(req: func.HttpRequest, rotation_id: str) -> str:
    # Never copy the query string: it may carry the function key (?code=...).
    parts = urlsplit(req.url)
    return f"{parts.scheme}://{parts.netloc}/api/rotations/{rotation_id}"
