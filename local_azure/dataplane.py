"""Cosmos DB data plane (gateway) of one account, enough for ``azure.cosmos.CosmosClient``.

Checks master-key signatures for real, as ``azure/cosmos/auth.py`` builds them:
``authorization`` = url-encoded ``type=master&ver=1.0&sig=<base64 HMAC-SHA256>``
over ``"{verb}\\n{resource type}\\n{resource link}\\n{x-ms-date}\\n{date}\\n"``
(all lower-case except the link) with the base64-decoded key. Read-write keys
serve every verb, read-only keys only reads. A freshly regenerated key is refused
for its first ``propagationFailures`` requests, to mimic Azure's propagation delay.

Serves the database account (``GET /``) and an empty database feed (``/dbs``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from typing import Any
from urllib.parse import quote, unquote

from .arm import region_display
from .faults import FaultRegistry, answer
from .http import Request, Response
from .logs import AUTH_TOKEN_TYPES
from .state import KEY_KINDS, READ_WRITE_KINDS, Account, EmulatorState

_UNAUTHORIZED = ("The input authorization token can't serve the request. The wrong key is being used or the "
                 "expected payload is not built as per the protocol. For more info: "
                 "https://aka.ms/cosmosdb-tsg-mac-signature")
_ERROR_CODES = {
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    408: "RequestTimeout",
    409: "Conflict", 410: "Gone", 412: "PreconditionFailed", 429: "TooManyRequests",
    500: "InternalServerError", 503: "ServiceUnavailable",
}
_QUERY_ENGINE = ('{"maxSqlQueryInputLength":262144,"maxJoinsPerSqlQuery":5,"maxLogicalAndPerSqlQuery":500,'
                 '"maxLogicalOrPerSqlQuery":500,"maxUdfRefPerSqlQuery":10,"maxInExpressionItemsCount":16000,'
                 '"queryMaxInMemorySortDocumentCount":500,"maxQueryRequestTimeoutFraction":0.9,'
                 '"sqlAllowNonFiniteNumbers":false,"sqlAllowAggregateFunctions":true,"sqlAllowSubQuery":true,'
                 '"sqlAllowScalarSubQuery":true,"allowNewKeywords":true,"sqlAllowLike":true,'
                 '"sqlAllowGroupByClause":true,"maxSpatialQueryCells":12,"spatialMaxGeometryPointCount":256,'
                 '"sqlDisableOptimizationFlags":0,"sqlAllowTop":true,"enableSpatialIndexing":true}')


class Unauthorized(Exception):
    """The request's signature does not verify with any usable key (`kind`: the key it matched, if one did)."""

    def __init__(self, kind: str | None = None) -> None:
        super().__init__(kind)
        self.kind = kind


def data_plane_error(status: int, code: str | None, message: str) -> Response:
    response = Response(status, {"code": code or _ERROR_CODES.get(status, "Error"), "message": message})
    if status == 429:
        response.headers["x-ms-retry-after-ms"] = "100"  # default hint; a fault's retryAfter overrides it
    return response


def resource_of(path: str) -> tuple[str, str]:
    """(resource type, resource link) signed for a gateway path, e.g. ``/dbs/a/colls`` -> (colls, dbs/a)."""
    parts = [p for p in path.split("/") if p]
    if not parts:
        return "", ""
    if len(parts) % 2:
        return parts[-1], "/".join(parts[:-1])
    return parts[-2], "/".join(parts)


def _digest(key: str, verb: str, resource_type: str, resource_link: str, x_date: str, http_date: str) -> bytes:
    text = f"{verb.lower()}\n{resource_type.lower()}\n{resource_link}\n{x_date.lower()}\n{http_date.lower()}\n"
    return hmac.new(base64.b64decode(key), text.encode("utf-8"), hashlib.sha256).digest()


def sign(key: str, verb: str, resource_type: str, resource_link: str, x_date: str, http_date: str = "") -> str:
    """The master-key signature the Cosmos SDKs compute (base64, before url-encoding)."""
    return base64.b64encode(_digest(key, verb, resource_type, resource_link, x_date, http_date)).decode("ascii")


def authorization_header(key: str, verb: str, path: str, x_date: str) -> str:
    """A complete ``authorization`` header value for ``path``, as the SDK would send it."""
    resource_type, link = resource_of(path)
    return quote(f"type=master&ver=1.0&sig={sign(key, verb, resource_type, link, x_date)}", "-_.!~*'()")


def _parse_authorization(header: str) -> bytes:
    """The raw signature from ``type=master&ver=1.0&sig=...``, url-encoded as the SDK sends it."""
    fields = {}
    for item in unquote(header).split("&"):
        name, _, value = item.partition("=")
        fields[name.strip().lower()] = value.strip()
    if fields.get("type") != "master" or fields.get("ver") != "1.0" or not fields.get("sig"):
        raise Unauthorized
    try:
        return base64.b64decode(fields["sig"], validate=True)
    except (binascii.Error, ValueError):
        raise Unauthorized from None


def _is_read(request: Request) -> bool:
    if request.method in ("GET", "HEAD"):
        return True
    # A query is POSTed but reads: read-only keys may run it.
    return request.method == "POST" and (request.header("x-ms-documentdb-isquery") or "").lower() == "true"


def _operation(request: Request) -> str:
    path = request.path.rstrip("/")
    if path == "" and request.method == "GET":
        return "readAccount"
    if path.lower() == "/dbs":
        return "listDatabases"
    return "other"


class DataPlaneService:
    """The gateway endpoint of one Cosmos DB account."""

    name = "dataplane"

    def __init__(self, state: EmulatorState, faults: FaultRegistry, ref: tuple[str, str, str]) -> None:
        self._state = state
        self._faults = faults
        self._ref = ref

    def internal_error(self) -> Response:
        return data_plane_error(500, "InternalServerError", "Internal error in the emulated data plane.")

    def handle(self, request: Request) -> Response:
        account = self._state.account(self._ref)
        if account is None:
            response = data_plane_error(404, "NotFound", "The database account no longer exists.")
        else:
            response = self._handle(request, account)
        response.headers.setdefault("x-ms-activity-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-request-charge", "1")
        self._state.metrics.record("dataplane", "reads" if _is_read(request) else "writes", _operation(request),
                                   response.status)
        return response

    def _handle(self, request: Request, account: Account) -> Response:
        try:
            self._authorize(request, account)
        except Unauthorized as refused:
            # Azure logs refused requests too (StatusCode 401), with the key type it matched, if any.
            self._state.log_data_plane_request(account, AUTH_TOKEN_TYPES.get(refused.kind or "", ""),
                                               request.client_ip, request.header("user-agent") or "", 401)
            return data_plane_error(401, "Unauthorized", _UNAUTHORIZED)
        operation = _operation(request)
        rule = self._faults.take("dataplane", operation, account.name)
        response = answer(rule, data_plane_error, lambda: self._serve(request, account, operation))
        if rule is not None and rule.status is not None and "Retry-After" in response.headers:
            # The Cosmos SDK's throttling retry reads milliseconds from its own header.
            seconds = float(response.headers["Retry-After"])
            response.headers["x-ms-retry-after-ms"] = str(int(seconds * 1000))
        return response

    def _serve(self, request: Request, account: Account, operation: str) -> Response:
        if operation == "readAccount":
            return Response(200, self._account_document(account))
        if operation == "listDatabases" and _is_read(request):
            return Response(200, {"_rid": "", "Databases": [], "_count": 0}, {"x-ms-item-count": "0"})
        if not _is_read(request):
            message = "The emulated data plane is read-only: it serves the account and the database feed."
            return data_plane_error(405, "MethodNotAllowed", message)
        return data_plane_error(404, "NotFound", "Resource Not Found. Learn more: https://aka.ms/cosmosdb-tsg-not-found")

    def _authorize(self, request: Request, account: Account) -> None:
        header = request.header("authorization")
        x_date = request.header("x-ms-date") or ""
        if not header or not (x_date or request.header("date")):
            raise Unauthorized
        signature = _parse_authorization(header)
        resource_type, link = resource_of(request.path)
        # Ids of resources (not names) are signed lower-cased: accept either form.
        links = {link, link.lower()}
        with self._state.lock:
            account.data_plane_requests += 1
            kind = self._matching_kind(account, request, resource_type, links, x_date, signature)
            if kind is None or (kind not in READ_WRITE_KINDS and not _is_read(request)):
                raise Unauthorized(kind)
            if account.propagation.get(kind, 0) > 0:
                account.propagation[kind] -= 1  # a fresh key that has not "propagated" yet
                raise Unauthorized(kind)
        # Gateway mode: Azure fills AuthTokenType (KeyType is for direct mode), logs.py.
        self._state.log_data_plane_request(account, AUTH_TOKEN_TYPES[kind], request.client_ip,
                                           request.header("user-agent") or "")

    @staticmethod
    def _matching_kind(account: Account, request: Request, resource_type: str, links: set[str], x_date: str,
                       signature: bytes) -> str | None:
        http_date = request.header("date") or ""
        for kind in KEY_KINDS:
            for link in links:
                expected = _digest(account.keys[kind], request.method, resource_type, link, x_date, http_date)
                if hmac.compare_digest(expected, signature):
                    return kind
        return None

    def _account_document(self, account: Account) -> dict[str, Any]:
        endpoint = account.document_endpoint
        # Every region points back at this endpoint, so the SDK never goes elsewhere.
        regions = [{"name": region_display(name), "databaseAccountEndpoint": endpoint} for name in account.locations]
        return {
            "_self": "",
            "id": account.name,
            "_rid": f"{account.name}.documents.emulator",
            "media": "//media/",
            "addresses": "//addresses/",
            "_dbs": "//dbs/",
            "writableLocations": regions[:1],
            "readableLocations": regions,
            "enableMultipleWriteLocations": False,
            "userReplicationPolicy": {"asyncReplication": False, "minReplicaSetSize": 3, "maxReplicasetSize": 4},
            "userConsistencyPolicy": {
                "defaultConsistencyLevel": "BoundedStaleness",
                "maxStalenessPrefix": 200,
                "maxStalenessIntervalInSeconds": 10,
            },
            "systemReplicationPolicy": {"minReplicaSetSize": 3, "maxReplicasetSize": 4},
            "readPolicy": {"primaryReadCoefficient": 1, "secondaryReadCoefficient": 1},
            "queryEngineConfiguration": _QUERY_ENGINE,
        }
