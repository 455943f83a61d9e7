"""The Azure Monitor Logs query API for one workspace, answering the product's key-usage query.

The data planes record every request (account, the key type that signed it, client IP, user agent, status,
time) as Cosmos DB's diagnostic setting would in table CDBDataPlaneRequests (resource-specific mode): a
refused one too, with StatusCode 401, as Azure logs it. This service
answers ``POST /v1/workspaces/{id}/query`` in the shape azure-monitor-query's LogsQueryClient sends and
parses (REST reference "Query - Execute": body ``{"query", "timespan"}``, answer
``{"tables": [{"name", "columns": [{"name", "type"}], "rows"}]}``).

It evaluates no KQL: it recognises the product's query (cosmos_key_rotation/key_usage.kql) by the ``let``
statements the product puts before it and computes what that query computes. The query text itself is
checked by Microsoft's Kusto language service in tests/infra.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from .faults import FaultRegistry, answer
from .http import BadRequestBody, Request, Response, ServiceError, error_envelope
from .state import EmulatorState

# Tokens for the Logs API: its audience in each cloud (azure-monitor-query asks for `<audience>/.default`).
LOGS_AUDIENCES = frozenset({
    "https://api.loganalytics.io",
    "https://api.loganalytics.azure.cn",
    "https://api.loganalytics.us",
})
_CODES = {400: "BadArgumentError", 401: "AuthorizationRequiredError", 403: "InsufficientAccessError",
          404: "PathNotFoundError", 429: "ThrottledError", 500: "InternalServerError",
          503: "ServiceUnavailableError"}
_LET = re.compile(r'^let\s+(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([0-9.]+)s)\s*;', re.MULTILINE)
_TOP = 10
# What Cosmos DB writes in AuthTokenType (gateway mode) for a request signed with each key: the spellings the
# product's table (cosmos_key_rotation/key_usage.py, with its sources) reads back.
AUTH_TOKEN_TYPES = {
    "primary": "PrimaryMasterKey",
    "secondary": "SecondaryMasterKey",
    "primaryReadonly": "PrimaryReadonlyMasterKey",
    "secondaryReadonly": "SecondaryReadonlyMasterKey",
}


def logs_error(status: int, code: str | None, message: str) -> Response:
    return error_envelope(status, code, message, _CODES)


class LogsService:
    name = "logs"

    def __init__(self, state: EmulatorState, faults: FaultRegistry) -> None:
        self._state = state
        self._faults = faults

    def internal_error(self) -> Response:
        return logs_error(500, None, "Internal error in the emulated Logs API.")

    def handle(self, request: Request) -> Response:
        try:
            response = self._handle(request)
        except ServiceError as error:
            response = logs_error(error.status, error.code, error.message)
        self._state.metrics.record("logs", "reads", "query", response.status)
        return response

    def _handle(self, request: Request) -> Response:
        parts = [p for p in request.path.split("/") if p]
        if parts and parts[0] == "v1":
            parts = parts[1:]
        if len(parts) != 3 or parts[0] != "workspaces" or parts[2] != "query":
            raise ServiceError(404, "PathNotFoundError", f"The requested path does not exist: {request.path}")
        if request.method != "POST":
            raise ServiceError(405, "MethodNotAllowed", "Only POST is supported.")
        self._authenticate(request)
        workspace = parts[1].lower()
        if workspace not in self._state.workspaces:
            raise ServiceError(404, "WorkspaceNotFoundError", f"The workspace {parts[1]} could not be found.")
        try:
            body = request.json_object()
        except BadRequestBody as exc:
            raise ServiceError(400, "BadArgumentError", str(exc)) from None
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            raise ServiceError(400, "BadArgumentError", "The request had some invalid properties: query.")
        return answer(self._faults.take("logs", "query"), logs_error, lambda: self._key_usage(workspace, query))

    def _authenticate(self, request: Request) -> None:
        header = request.header("Authorization") or ""
        info = self._state.token_info(header[7:].strip()) if header.lower().startswith("bearer ") else None
        if info is None:
            raise ServiceError(401, "AuthorizationRequiredError", "Valid authentication was not provided.")
        if info.audience.strip().rstrip("/").lower() not in LOGS_AUDIENCES:
            raise ServiceError(401, "InvalidTokenError", f"The provided authentication is not valid for this "
                               f"resource: audience {info.audience}.")

    def _key_usage(self, workspace: str, query: str) -> Response:
        lets = {m.group(1): m.group(2) if m.group(2) is not None else float(m.group(3)) for m in _LET.finditer(query)}
        account_id, window, verifier = lets.get("accountId"), lets.get("window"), lets.get("verifierAgent")
        if not isinstance(account_id, str) or not isinstance(window, float) or not isinstance(verifier, str):
            raise ServiceError(400, "SemanticError", "The emulated Logs API answers the product's key-usage query "
                               "only (let accountId, window and verifierAgent).")
        since = datetime.now(timezone.utc) - timedelta(seconds=window)
        records = [r for r in self._state.data_plane_log(workspace)
                   if r["accountId"].lower() == account_id.lower() and r["time"] > since]
        return Response(200, {"tables": [_table(records, verifier)]})


def _table(records: list[dict[str, Any]], verifier: str) -> dict[str, Any]:
    """What key_usage.kql returns: per key, its top clients by requests (requests the key authorized: not the
    product's own, not the ones refused 401); then one row over every request."""
    groups: dict[tuple[str, str, str], list[datetime]] = {}
    for record in records:
        if verifier in record["userAgent"] or record["status"] == 401:
            continue
        groups.setdefault((record["key"], record["clientIp"], record["userAgent"]), []).append(record["time"])
    rows: list[list[Any]] = []
    for key in sorted({k for k, _, _ in groups}):
        clients = sorted(((len(t), max(t), ip, agent) for (k, ip, agent), t in groups.items() if k == key),
                         key=lambda c: -c[0])
        rows += [[key, ip, agent, count, _iso(last)] for count, last, ip, agent in clients[:_TOP]]
    last = max((r["time"] for r in records), default=None)
    rows.append(["*", "", "", len(records), _iso(last) if last else None])
    columns = [{"name": "Key", "type": "string"}, {"name": "ClientIpAddress", "type": "string"},
               {"name": "UserAgent", "type": "string"}, {"name": "Requests", "type": "long"},
               {"name": "LastSeen", "type": "datetime"}]
    return {"name": "PrimaryResult", "columns": columns, "rows": rows}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
