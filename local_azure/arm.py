"""Azure Resource Manager, ``Microsoft.DocumentDB/databaseAccounts`` only.

Speaks what azure-mgmt-cosmosdb 10.x sends: get, list (per subscription and per
resource group, paged with ``nextLink``), listKeys, readonlykeys (GET and POST),
listConnectionStrings and regenerateKey, the last as a long-running operation
(``202`` + ``Azure-AsyncOperation`` + ``Location``) that azure-mgmt-core's
ARMPolling follows. Requests need a bearer token issued by the emulated identity
endpoint for a Resource Manager audience; authenticated requests are then
throttled per subscription by token buckets (``throttling.py``). Paths match
case-insensitively, as in ARM. ``/_emulator/*`` on the same port is the admin
API (see ``control.py``): never throttled, never counted.
"""

from __future__ import annotations

import datetime
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from .faults import FaultRegistry, FaultRule, answer
from .http import BadRequestBody, Request, Response, ServiceError, error_envelope
from .state import (
    KEY_FIELDS,
    KEY_KINDS,
    Account,
    EmulatorState,
    Regeneration,
    StateError,
    TokenInfo,
    account_ref,
    iso_utc,
)
from .throttling import Decision

# Audiences a Resource Manager token may be issued for, in every cloud (plus the emulator's own URL).
MANAGEMENT_AUDIENCES = frozenset({
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://management.chinacloudapi.cn",
    "https://management.core.chinacloudapi.cn",
    "https://management.usgovcloudapi.net",
    "https://management.core.usgovcloudapi.net",
})
REGION_NAMES = {
    "chinaeast": "China East", "chinaeast2": "China East 2", "chinaeast3": "China East 3",
    "chinanorth": "China North", "chinanorth2": "China North 2", "chinanorth3": "China North 3",
    "eastus": "East US", "eastus2": "East US 2", "westus": "West US", "westus2": "West US 2",
    "westus3": "West US 3", "centralus": "Central US", "northeurope": "North Europe",
    "westeurope": "West Europe", "usgovvirginia": "USGov Virginia", "usgovarizona": "USGov Arizona",
    "usgovtexas": "USGov Texas",
}
CONNECTION_STRING_KINDS = (
    ("primary", "Primary", "Primary SQL Connection String"),
    ("secondary", "Secondary", "Secondary SQL Connection String"),
    ("primaryReadonly", "PrimaryReadonly", "Primary Read-Only SQL Connection String"),
    ("secondaryReadonly", "SecondaryReadonly", "Secondary Read-Only SQL Connection String"),
)
_ERROR_CODES = {
    400: "BadRequest", 401: "AuthenticationFailed", 403: "AuthorizationFailed", 404: "ResourceNotFound",
    405: "MethodNotAllowed", 409: "Conflict", 412: "PreconditionFailed", 429: "TooManyRequests",
    500: "InternalServerError", 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout",
}
_ACCOUNTS = r"/providers/microsoft\.documentdb/databaseaccounts"
_ACCOUNT = r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)" + _ACCOUNTS + r"/(?P<name>[^/]+)"
LIST_OPERATIONS = frozenset({"listAccounts", "listAccountsByResourceGroup"})
_ROUTES: list[tuple[re.Pattern[str], str, frozenset[str]]] = [
    # Database Accounts - List and - List By Resource Group (REST reference; the paths azure-mgmt-cosmosdb's
    # build_database_accounts_list_request and ..._list_by_resource_group_request build).
    (re.compile(r"^/subscriptions/(?P<sub>[^/]+)" + _ACCOUNTS + r"/?$", re.I), "listAccounts", frozenset({"GET"})),
    (re.compile(r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)" + _ACCOUNTS + r"/?$", re.I),
     "listAccountsByResourceGroup", frozenset({"GET"})),
    (re.compile(_ACCOUNT + r"/?$", re.I), "getAccount", frozenset({"GET"})),
    (re.compile(_ACCOUNT + r"/listkeys/?$", re.I), "listKeys", frozenset({"POST"})),
    (re.compile(_ACCOUNT + r"/readonlykeys/?$", re.I), "readonlyKeys", frozenset({"GET", "POST"})),
    (re.compile(_ACCOUNT + r"/listconnectionstrings/?$", re.I), "listConnectionStrings", frozenset({"POST"})),
    (re.compile(_ACCOUNT + r"/regeneratekey/?$", re.I), "regenerateKey", frozenset({"POST"})),
    (re.compile(_ACCOUNT + r"/regeneratekey/operationresults/(?P<op>[^/]+)/?$", re.I),
     "operationResult", frozenset({"GET"})),
    (re.compile(r"^/subscriptions/(?P<sub>[^/]+)/providers/microsoft\.documentdb/locations/(?P<region>[^/]+)"
                r"/operationsstatus/(?P<op>[^/]+)/?$", re.I), "operationStatus", frozenset({"GET"})),
]


THROTTLED_CODE = "SubscriptionRequestsThrottled"


class ArmError(ServiceError):
    """Raised by handlers; rendered as ARM's ``{"error": {"code", "message"}}``."""


def arm_error(status: int, code: str | None, message: str) -> Response:
    return error_envelope(status, code, message, _ERROR_CODES)


def region_short(name: str) -> str:
    """``China East 2`` -> ``chinaeast2``, the form used in resource paths."""
    return name.replace(" ", "").lower()


def region_display(name: str) -> str:
    return REGION_NAMES.get(region_short(name), name)


def _location_json(account: Account, name: str, priority: int) -> dict[str, Any]:
    return {
        "id": f"{account.name}-{region_short(name)}",
        "locationName": region_display(name),
        "documentEndpoint": account.document_endpoint,
        "provisioningState": "Succeeded",
        "failoverPriority": priority,
        "isZoneRedundant": False,
    }


def keys_metadata_json(generated: dict[str, datetime.datetime]) -> dict[str, Any]:
    return {KEY_FIELDS[k]: {"generationTime": iso_utc(generated[k])} for k in KEY_KINDS}


def account_json(account: Account, stale: bool = False) -> dict[str, Any]:
    """The account as ``DatabaseAccountGetResults`` (the shape of a real ``GET``); ``stale``: as it was before
    its last completed regeneration (a read that lags behind a finished operation)."""
    locations = [_location_json(account, name, i) for i, name in enumerate(account.locations)]
    return {
        "id": account.resource_id,
        "name": account.name,
        "location": region_display(account.locations[0]),
        "type": "Microsoft.DocumentDB/databaseAccounts",
        "kind": "GlobalDocumentDB",
        "tags": dict(account.tags),
        "identity": {"type": "None"},
        "properties": {
            "provisioningState": "Succeeded",
            "documentEndpoint": account.document_endpoint,
            "databaseAccountOfferType": "Standard",
            "ipRules": [],
            "isVirtualNetworkFilterEnabled": False,
            "enableAutomaticFailover": False,
            "consistencyPolicy": {
                "defaultConsistencyLevel": "BoundedStaleness",
                "maxIntervalInSeconds": 10,
                "maxStalenessPrefix": 200,
            },
            "capabilities": [],
            "writeLocations": locations[:1],
            "readLocations": locations,
            "locations": locations,
            "failoverPolicies": [
                {"id": loc["id"], "locationName": loc["locationName"], "failoverPriority": loc["failoverPriority"]}
                for loc in locations
            ],
            "virtualNetworkRules": [],
            "privateEndpointConnections": [],
            "enableMultipleWriteLocations": False,
            "disableKeyBasedMetadataWriteAccess": False,
            "publicNetworkAccess": "Enabled",
            "disableLocalAuth": False,
            "minimalTlsVersion": "Tls12",
            "keysMetadata": keys_metadata_json(account.generated_before_last() if stale else account.generated),
        },
    }


def connection_string(account: Account, key_kind: str) -> str:
    return f"AccountEndpoint={account.document_endpoint};AccountKey={account.keys[key_kind]};"


def _parse_key_kind(request: Request) -> str:
    try:
        body = request.json_object()
    except BadRequestBody as exc:
        raise ArmError(400, "BadRequest", str(exc)) from None
    expected = ", ".join(KEY_KINDS)
    if "keyKind" not in body:
        received = ", ".join(sorted(map(str, body))) or "none"
        raise ArmError(400, "BadRequest",
                       f"The request body must contain 'keyKind' (one of {expected}); received properties: {received}.")
    kind = body["keyKind"]
    match = next((k for k in KEY_KINDS if isinstance(kind, str) and k.lower() == kind.lower()), None)
    if match is None:
        raise ArmError(400, "BadRequest", f"Invalid 'keyKind' value {kind!r}; expected one of {expected}.")
    return match


def request_kind(method: str) -> str:
    """Resource Manager's operation types: a GET reads, anything else (POST actions included) writes."""
    return "reads" if method in ("GET", "HEAD") else "writes"


@dataclass
class _Throttle:
    """What the subscription's bucket said about this request, for the remaining-requests header."""

    decision: Decision | None = None


@dataclass
class _Call:
    """One routed request: its account, its operation (status and result polls) and its fault rule."""

    request: Request
    account: Account
    operation: Regeneration | None
    rule: FaultRule | None


class ArmService:
    """Routes Resource Manager requests for Cosmos DB accounts."""

    name = "arm"

    def __init__(self, state: EmulatorState, faults: FaultRegistry,
                 control: Callable[[Request], Response] | None = None) -> None:
        self._state = state
        self._faults = faults
        self._control = control
        self.base_url = ""  # set once the listener knows its port
        self._handlers: dict[str, Callable[[_Call], Response]] = {
            "getAccount": self._get_account,
            "listKeys": self._list_keys,
            "readonlyKeys": self._readonly_keys,
            "listConnectionStrings": self._list_connection_strings,
            "regenerateKey": self._regenerate_key,
            "operationStatus": self._operation_status,
            "operationResult": self._operation_result,
        }

    def internal_error(self) -> Response:
        return arm_error(500, "InternalServerError", "Internal error in the emulated Resource Manager.")

    def handle(self, request: Request) -> Response:
        if request.path.lower().startswith("/_emulator/") and self._control is not None:
            return self._control(request)
        route = self._match(request.path)
        kind = request_kind(request.method)
        throttle = _Throttle()
        try:
            response = self._dispatch(request, route, kind, throttle)
        except ArmError as exc:
            response = arm_error(exc.status, exc.code, exc.message)
            response.headers.update(exc.headers)
        request_id = str(uuid.uuid4())
        response.headers.setdefault("x-ms-request-id", request_id)
        response.headers.setdefault("x-ms-correlation-request-id", request_id)
        if throttle.decision is not None:
            # On every answer of a throttled kind, refused or not: reads report the read bucket and writes the
            # write bucket ("Remaining requests" in the throttling page; Compute's "Troubleshooting API throttling
            # errors": reads header for GET requests, writes header for non-GET requests).
            response.headers[f"x-ms-ratelimit-remaining-subscription-{kind}"] = str(throttle.decision.remaining)
        self._state.metrics.record("arm", kind, route[0] if route else "unknown", response.status)
        return response

    def _dispatch(self, request: Request, route: tuple[str, dict[str, str], frozenset[str]] | None, kind: str,
                  throttle: _Throttle) -> Response:
        token = self._authenticate(request)
        if route is None:
            raise ArmError(404, "NotFound",
                           f"No HTTP resource was found that matches the request URI '{request.path}'.")
        operation, groups, methods = route
        if request.method not in methods:
            raise ArmError(405, "MethodNotAllowed",
                           f"The requested resource does not support http method '{request.method}'.")
        if not request.param("api-version"):
            raise ArmError(400, "MissingApiVersionParameter",
                           "The api-version query parameter (?api-version=) is required for all requests.")
        # Resource Manager throttles before the request reaches the resource provider: a refused request never
        # meets a fault rule, and an unknown account still costs a token (its 404 comes from the provider).
        self._throttle(groups["sub"], kind, token, throttle)
        if operation in LIST_OPERATIONS:
            rule = self._faults.take("arm", operation, None)
            return answer(rule, arm_error, lambda: self._list_accounts(request, groups))
        if operation in ("operationStatus", "operationResult"):
            account, op = self._operation(groups)
        else:
            account, op = self._account(groups), None
        # The rule is taken once the target is known to exist (a 404 never uses one). Every effect, "acted"
        # included, is applied around the handler; the handler itself reads "lroStatus" and "stale".
        rule = self._faults.take("arm", operation, account.name)
        call = _Call(request, account, op, rule)
        return answer(rule, arm_error, lambda: self._handlers[operation](call))

    @staticmethod
    def _match(path: str) -> tuple[str, dict[str, str], frozenset[str]] | None:
        for pattern, operation, methods in _ROUTES:
            match = pattern.match(path)
            if match:
                return operation, match.groupdict(), methods
        return None

    def _throttle(self, subscription_id: str, kind: str, token: TokenInfo, throttle: _Throttle) -> None:
        """Take a token from the subscription's bucket for ``kind`` (noted in ``throttle``), or raise ARM's 429."""
        config = self._state.config
        spec = config.arm_read_bucket if kind == "reads" else config.arm_write_bucket
        decision = throttle.decision = self._state.throttle.take("arm", subscription_id, kind, spec)
        if decision is None or decision.allowed:
            return
        # The answer Resource Manager gives when a subscription's token bucket is empty: code and message as
        # in real answers quoted in velero-io/velero issue 9171 (2025, a 'read' bucket); Retry-After as the
        # throttling page's "Error code" section says, in seconds.
        single = kind[:-1]  # "read" / "write"
        raise ArmError(429, THROTTLED_CODE,
                       f"Number of '{single}' requests for subscription '{subscription_id}' actor "
                       f"'{token.client_id}' exceeded. Please try again after '{decision.retry_after}' seconds "
                       "after additional tokens are available. Refer to https://aka.ms/arm-throttling for "
                       "additional information.",
                       {"Retry-After": str(decision.retry_after)})

    # ----- authentication ---------------------------------------------------

    def _audiences(self) -> set[str]:
        port = self.base_url.rsplit(":", 1)[-1]
        own = {self.base_url.lower()} | {f"https://{h}:{port}" for h in ("127.0.0.1", "localhost", "[::1]")}
        return set(MANAGEMENT_AUDIENCES) | own

    def _authenticate(self, request: Request) -> TokenInfo:
        header = request.header("Authorization") or ""
        challenge = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.microsoftonline.com/'
                                         f'{self._state.tenant_id}", error="invalid_token"'}
        if not header.lower().startswith("bearer "):
            raise ArmError(401, "AuthenticationFailed",
                           "Authentication failed. The 'Authorization' header is missing.", challenge)
        info = self._state.token_info(header[7:].strip())
        if info is None:
            raise ArmError(401, "AuthenticationFailed",
                           "Authentication failed. The access token is invalid or expired.", challenge)
        if info.audience.strip().rstrip("/").lower() not in self._audiences():
            raise ArmError(401, "AuthenticationFailed",
                           f"The access token has been obtained for wrong audience or resource '{info.audience}'. "
                           "It should match a Resource Manager audience.", challenge)
        return info

    # ----- lookups ----------------------------------------------------------

    def _account(self, groups: dict[str, str]) -> Account:
        account = self._state.account(account_ref(groups["sub"], groups["rg"], groups["name"]))
        if account is None:
            raise ArmError(404, "ResourceNotFound",
                           f"The Resource 'Microsoft.DocumentDB/databaseAccounts/{groups['name']}' under resource "
                           f"group '{groups['rg']}' was not found. For more details please go to "
                           "https://aka.ms/ARMResourceNotFoundFix")
        return account

    # ----- operations -------------------------------------------------------

    def _list_accounts(self, request: Request, groups: dict[str, str]) -> Response:
        """One page of DatabaseAccountsListResult: ``value`` and, while more remain, an absolute ``nextLink``
        (azure-mgmt-cosmosdb's ``list`` follows it, sending its own api-version with the link's other query
        parameters). The page size is the emulator's ``armListPageSize``."""
        raw = request.param("$skipToken") or "0"
        if not raw.isdigit():
            raise ArmError(400, "InvalidSkipToken", f"The skip token '{raw}' is not valid.")
        skip, size = int(raw), self._state.config.arm_list_page_size
        accounts = self._state.list_accounts(groups["sub"], groups.get("rg"))
        with self._state.lock:
            body: dict[str, Any] = {"value": [account_json(a) for a in accounts[skip:skip + size]]}
        if skip + size < len(accounts):
            api_version = quote(request.param("api-version") or "")
            body["nextLink"] = (f"{self.base_url}{request.path.rstrip('/')}?api-version={api_version}"
                                f"&$skipToken={skip + size}")
        return Response(200, body)

    def _get_account(self, call: _Call) -> Response:
        stale = call.rule is not None and call.rule.stale
        with self._state.lock:
            return Response(200, account_json(call.account, stale=stale))

    def _list_keys(self, call: _Call) -> Response:
        account = call.account
        with self._state.lock:
            return Response(200, {KEY_FIELDS[k]: account.keys[k] for k in KEY_KINDS})

    def _readonly_keys(self, call: _Call) -> Response:
        account = call.account
        with self._state.lock:
            return Response(200, {KEY_FIELDS[k]: account.keys[k] for k in ("primaryReadonly", "secondaryReadonly")})

    def _list_connection_strings(self, call: _Call) -> Response:
        account = call.account
        with self._state.lock:
            strings = [
                {"connectionString": connection_string(account, kind), "description": description,
                 "keyKind": key_kind, "type": "Sql"}
                for kind, key_kind, description in CONNECTION_STRING_KINDS
            ]
        return Response(200, {"connectionStrings": strings})

    def _regenerate_key(self, call: _Call) -> Response:
        request, account, rule = call.request, call.account, call.rule
        key_kind = _parse_key_kind(request)
        # A rule with "acted" gets here too: the regeneration really starts, and then its answer is replaced.
        lro_status = rule.lro_status if rule is not None else None
        error = {"code": rule.error_code or "InternalServerError", "message": rule.message} if lro_status else None
        try:
            op = self._state.start_regeneration(account, key_kind, lro_status, error)
        except StateError as exc:
            raise ArmError(412, "PreconditionFailed", exc.message) from None
        api_version = request.param("api-version") or ""
        headers = {
            "Azure-AsyncOperation": self._status_url(account, op, api_version),
            "Location": self._result_url(account, op, api_version),
            "Retry-After": str(self._state.config.poll_retry_after_ms // 1000),
        }
        return Response(202, {"status": "Enqueued"}, headers)

    def _status_url(self, account: Account, op: Regeneration, api_version: str) -> str:
        region = region_short(account.locations[0])
        return (f"{self.base_url}/subscriptions/{account.subscription_id}/providers/Microsoft.DocumentDB"
                f"/locations/{region}/operationsStatus/{op.operation_id}?api-version={quote(api_version)}")

    def _result_url(self, account: Account, op: Regeneration, api_version: str) -> str:
        return (f"{self.base_url}{account.resource_id}/regenerateKey/operationResults/{op.operation_id}"
                f"?api-version={quote(api_version)}")

    def _operation(self, groups: dict[str, str]) -> tuple[Account, Regeneration]:
        found = self._state.operation(groups["op"])
        if found is None or found[0].subscription_id.lower() != groups["sub"].lower():
            raise ArmError(404, "NotFound", f"The operation '{groups['op']}' was not found.")
        return found

    def _poll_headers(self) -> dict[str, str]:
        """Polling hint; azure-core's poller waits this long instead of its polling_interval."""
        millis = self._state.config.poll_retry_after_ms
        if millis <= 0:
            return {}
        if millis % 1000 == 0:
            return {"Retry-After": str(millis // 1000)}
        return {"retry-after-ms": str(millis)}

    def _operation_status(self, call: _Call) -> Response:
        account, op = call.account, call.operation
        assert op is not None
        with self._state.lock:
            body: dict[str, Any] = {
                "id": f"{account.resource_id}/operationsStatus/{op.operation_id}",
                "name": op.operation_id,
                "status": op.status,
                "startTime": iso_utc(op.requested_at),
            }
            if op.completed_at is not None:
                body["endTime"] = iso_utc(op.completed_at)
            if op.status in ("Failed", "Canceled") and op.error:
                body["error"] = dict(op.error)
        return Response(200, body, self._poll_headers() if op.status == "InProgress" else {})

    def _operation_result(self, call: _Call) -> Response:
        op = call.operation
        assert op is not None
        if op.status == "InProgress":
            headers = {"Location": f"{self.base_url}{call.request.target}", **self._poll_headers()}
            return Response(202, None, headers)
        if op.status != "Succeeded":
            error = op.error or {"code": "OperationCanceled", "message": "The operation was canceled."}
            return Response(500, {"error": dict(error)})
        return Response(200, {})

