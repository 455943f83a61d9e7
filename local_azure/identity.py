"""Managed identity token endpoint, App Service protocol (``IDENTITY_ENDPOINT`` + ``IDENTITY_HEADER``).

azure-identity (through MSAL's ``_obtain_token_on_app_service``) sends
``GET <IDENTITY_ENDPOINT>?api-version=2019-08-01&resource=<aud>[&client_id=..]``
with header ``X-IDENTITY-HEADER``, and reads ``access_token`` and ``expires_on``
(epoch seconds, sent as a digit string like App Service does). Errors use App
Service's ``{"statusCode", "message"}`` shape, which MSAL reports.
Served over plain HTTP, as on App Service.
"""

from __future__ import annotations

import hmac

from .faults import FaultRegistry, answer
from .http import Request, Response
from .state import EmulatorState

TOKEN_PATH = "/msi/token"
API_VERSION = "2019-08-01"
# User-assigned identities are selected by one of these query parameters.
_IDENTITY_SELECTORS = ("client_id", "mi_res_id", "object_id", "principal_id")


def _error(status: int, message: str) -> Response:
    return Response(status, {"statusCode": status, "message": message})


def _fault_error(status: int, _code: str | None, message: str) -> Response:
    return _error(status, message)


class IdentityService:
    """Hands out opaque bearer tokens and remembers each token's audience."""

    name = "identity"

    def __init__(self, state: EmulatorState, faults: FaultRegistry) -> None:
        self._state = state
        self._faults = faults

    def internal_error(self) -> Response:
        return _error(500, "Internal error in the emulated identity endpoint.")

    def handle(self, request: Request) -> Response:
        known = request.path.rstrip("/").lower() == TOKEN_PATH
        if not known:
            response = _error(404, "Not found.")
        elif request.method != "GET":
            response = _error(405, "Only GET is supported.")
        else:
            response = self._token(request)
        self._state.metrics.record("identity", "reads", "token" if known else "unknown", response.status)
        return response

    def _token(self, request: Request) -> Response:
        denied = self._check_header(request)
        if denied is not None:
            return denied
        if request.param("api-version") != API_VERSION:
            return _error(400, f"The api-version parameter must be {API_VERSION}.")
        resource = request.param("resource")
        if not resource:
            return _error(400, "The resource parameter is required.")
        return answer(self._faults.take("identity", "token"), _fault_error, lambda: self._issue(request, resource))

    def _issue(self, request: Request, resource: str) -> Response:
        client_id = next((request.param(p) for p in _IDENTITY_SELECTORS if request.param(p)), None)
        token, info = self._state.issue_token(resource, client_id)
        return Response(200, {
            "access_token": token,
            "expires_on": str(info.expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": info.client_id,
        })

    def _check_header(self, request: Request) -> Response | None:
        sent = request.header("X-IDENTITY-HEADER")
        if sent is None:
            return _error(400, "The X-IDENTITY-HEADER header is required.")
        if not hmac.compare_digest(sent.encode(), self._state.identity_header.encode()):
            return _error(401, "The X-IDENTITY-HEADER header does not match IDENTITY_HEADER.")
        return None
