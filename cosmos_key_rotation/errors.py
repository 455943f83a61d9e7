"""The product's error codes, and the one place where SDK exceptions are translated into them."""

from __future__ import annotations

from .events import redact


class RotationError(Exception):
    """A rotation step failed. `code` is stable (dashboards group by it); `transient` means retry later."""

    def __init__(self, code: str, message: str, *, transient: bool = False) -> None:
        super().__init__(redact(message))
        self.code = code
        self.message = redact(message)
        self.transient = transient


class LeaseBusy(RotationError):
    """Another rotation of the same account holds the lease."""

    def __init__(self, account: str) -> None:
        super().__init__("RotationInProgress", f"another rotation of account {account} is running", transient=True)


# HTTP statuses worth another attempt: the service may answer differently later. Cosmos DB answers
# 412 PreconditionFailed to a regeneration while another operation on the account is running.
_TRANSIENT_STATUS = {408, 409, 412, 423, 429, 500, 502, 503, 504}
_CODES_BY_STATUS = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    408: "Timeout",
    409: "Conflict",
    429: "Throttled",
}


def from_sdk(exc: Exception, service: str, action: str) -> RotationError:
    """Translate an azure-core / azure-cosmos exception raised while `action` ran against `service`."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    if isinstance(exc, RotationError):
        return exc
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # No HTTP answer: the credential itself failed (managed identity endpoint down, not logged in).
        return RotationError(
            "CredentialUnavailable", f"no Azure token to {action}: {_first_line(exc)}", transient=True
        )
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return RotationError(
            "ServiceUnreachable", f"{service} could not be reached while trying to {action}: {_first_line(exc)}",
            transient=True,
        )
    if isinstance(exc, HttpResponseError):
        status = exc.status_code or 0
        service_code = _service_code(exc)
        code = service_code or _CODES_BY_STATUS.get(status) or ("ServiceError" if status >= 500 else "HttpError")
        detail = _service_message(exc)
        message = f"{service} answered {status} {code} while trying to {action}"
        if detail:
            message += f": {detail}"
        return RotationError(code, message, transient=status in _TRANSIENT_STATUS)
    return RotationError("UnexpectedError", f"{type(exc).__name__} while trying to {action}: {_first_line(exc)}")


def _service_code(exc: object) -> str | None:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code:
        return str(code)
    sub_status = getattr(exc, "sub_status", None)
    return f"Cosmos{getattr(exc, 'status_code', '')}.{sub_status}" if sub_status else None


def _service_message(exc: object) -> str:
    error = getattr(exc, "error", None)
    text = getattr(error, "message", None) or getattr(exc, "message", None) or ""
    return _first_line(text)[:300]


def _first_line(value: object) -> str:
    text = str(value).strip()
    return redact(text.splitlines()[0] if text else "")
