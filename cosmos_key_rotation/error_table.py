"""The one place where an Azure SDK exception becomes a product error: every answer of Resource Manager,
Key Vault, Storage and the Cosmos DB data plane maps to a code of error_codes.py, and so to transient or
permanent. A service's own code is quoted in the message, never passed through as the product's code.

The wire shapes this reads, with their sources:
- Resource Manager: `{"error": {"code", "message"}}` (ARM RPC contract, "Error response content").
  `AuthorizationFailed` (403) names the action: "does not have authorization to perform action '<action>'
  over scope '<scope>'"; `ScopeLocked` (409) names the locks: "following scope(s) are locked: '<scope>'"
  (docs: "Lock your resources to protect your infrastructure"). Cosmos DB answers `412 PreconditionFailed`
  to a key operation while another operation holds the account.
- Key Vault: `{"error": {"code", "message", "innererror": {"code"}}}` (Key Vault REST "KeyVaultError");
  `409 Conflict` / `ObjectIsDeletedButRecoverable` for a soft-deleted name, `403 Forbidden` /
  `SecretDisabled` for a disabled version (Azure/azure-sdk-for-js issue 24756), `403` /
  `ForbiddenByRbac` naming the action on an "Action: '<action>'" line.
- Storage: XML `<Error><Code>` and the `x-ms-error-code` header, which azure-storage exposes as
  `exc.error_code`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from .errors import RotationError
from .redaction import redact

SERVICES = {
    "arm": "Resource Manager",
    "vault": "Key Vault",
    "storage": "Storage",
    "dataplane": "the Cosmos DB data plane",
    "identity": "the managed identity endpoint",
    "logs": "Log Analytics",
}
ANY = "*"


@dataclass(frozen=True)
class Answer:
    """What a service answered, as far as the product cares: no value here can hold a key."""

    status: int | None  # None: no HTTP answer at all
    code: str = ""  # the service's error code
    inner: str = ""  # Key Vault's innererror code
    message: str = ""  # the service's message, redacted

    @property
    def first_line(self) -> str:
        return _first_line(self.message)[:300]

    @property
    def codes(self) -> set[str]:
        return {self.code, self.inner} - {""}


@dataclass(frozen=True)
class Row:
    service: str  # a key of SERVICES, or ANY
    statuses: tuple[int, ...]  # empty: any status
    service_codes: frozenset[str]  # empty: any code; else the service's code or Key Vault's inner code
    product_code: str
    detail: Callable[[Answer], str | None] | None = None  # what to add to the message

    def matches(self, service: str, answer: Answer) -> bool:
        return (self.service in (ANY, service)
                and (not self.statuses or answer.status in self.statuses)
                and (not self.service_codes or bool(self.service_codes & answer.codes)))


def _missing_action(answer: Answer) -> str | None:
    found = re.search(r"perform action '([^']+)'(?: over scope '([^']+)')?", answer.message) or re.search(
        r"Action: '([^']+)'", answer.message)
    if found is None:
        return None
    scope = f" on scope {found.group(2)}" if found.lastindex and found.lastindex >= 2 and found.group(2) else ""
    return f"the identity lacks permission {found.group(1)}{scope}"


def _locked_scope(answer: Answer) -> str | None:
    found = re.search(r"following scope\(s\) are locked: ([^.]+)", answer.message)
    return f"locked scope(s): {found.group(1).strip()}; remove the lock to rotate" if found else None


_5XX = (500, 502, 503, 504)

# First match wins: specific rows before general ones.
ROWS: tuple[Row, ...] = (
    Row("vault", (403,), frozenset({"SecretDisabled"}), "SecretDisabled"),
    Row("vault", (409,), frozenset({"ObjectIsDeletedButRecoverable"}), "SecretDeleted"),
    Row("vault", (409,), frozenset({"ObjectIsBeingRecovered"}), "SecretRecovering"),
    Row("arm", (409,), frozenset({"ScopeLocked"}), "ScopeLocked", _locked_scope),
    Row("arm", (412,), frozenset(), "AccountBusy"),
    Row("arm", (409,), frozenset({"AnotherOperationInProgress", "OperationInProgress"}), "AccountBusy"),
    Row("arm", (404,), frozenset(), "AccountNotFound"),
    Row(ANY, (403,), frozenset(), "AuthorizationFailed", _missing_action),
    Row(ANY, (401,), frozenset(), "AuthenticationFailed"),
    Row(ANY, (429,), frozenset(), "Throttled"),
    Row(ANY, (408, *_5XX), frozenset(), "ServiceUnavailable"),
    Row(ANY, (400,), frozenset(), "BadRequest"),
)


def lookup(service: str, answer: Answer) -> Row:
    """The row for this answer; an answer no row knows is an UnexpectedServiceAnswer (transient if 5xx)."""
    for row in ROWS:
        if row.matches(service, answer):
            return row
    if answer.status is not None and answer.status >= 500:
        return Row(ANY, (), frozenset(), "ServiceUnavailable")
    return Row(ANY, (), frozenset(), "UnexpectedServiceAnswer")


def from_sdk(exc: BaseException, service: str, action: str) -> RotationError:
    """Translate an exception raised while `action` ran against `service` (a key of SERVICES)."""
    if isinstance(exc, RotationError):
        return exc
    from azure.core.exceptions import (
        AzureError,
        ClientAuthenticationError,
        HttpResponseError,
        ServiceRequestError,
        ServiceResponseError,
    )

    name = SERVICES[service]
    if isinstance(exc, ClientAuthenticationError) and exc.status_code is None:
        # No HTTP answer from the service: the credential itself failed.
        return RotationError("CredentialUnavailable", f"no Azure token to {action}: {_first_line(exc)}")
    if isinstance(exc, (ServiceRequestError, ServiceResponseError)):
        return RotationError("ServiceUnreachable",
                             f"{name} could not be reached while trying to {action}: {type(exc).__name__}: "
                             f"{_first_line(exc)}")
    if isinstance(exc, HttpResponseError):
        answer = answer_of(exc)
        row = lookup(service, answer)
        said = " ".join(part for part in (str(answer.status), answer.code, answer.inner) if part)
        message = f"{name} answered {said} while trying to {action}"
        detail = row.detail(answer) if row.detail else None
        message += f": {detail}" if detail else (f": {answer.first_line}" if answer.first_line else "")
        return RotationError(row.product_code, message)
    if isinstance(exc, AzureError):
        return RotationError("UnexpectedServiceAnswer",
                             f"{type(exc).__name__} from {name} while trying to {action}: {_first_line(exc)}")
    return RotationError("UnexpectedError", f"{type(exc).__name__} while trying to {action}: {_first_line(exc)}")


def answer_of(exc: BaseException) -> Answer:
    """Status, codes and message of an HttpResponseError, from the answer's own body where the SDK's
    parsed error model is missing (Key Vault's client keeps the innererror only in the body)."""
    status = getattr(exc, "status_code", None)
    code, inner, message = "", "", ""
    error = getattr(exc, "error", None)
    if error is not None:
        code, message = str(getattr(error, "code", "") or ""), str(getattr(error, "message", "") or "")
        inner = str((getattr(error, "innererror", None) or {}).get("code") or "")
    body = _body(exc)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        document = body["error"]
        code = code or str(document.get("code") or "")
        message = message or str(document.get("message") or "")
        inner_error = document.get("innererror") or document.get("innerError") or {}
        inner = inner or (str(inner_error.get("code") or "") if isinstance(inner_error, dict) else "")
    code = code or str(getattr(exc, "error_code", "") or "")  # azure-storage's x-ms-error-code
    sub_status = getattr(exc, "sub_status", None)  # azure-cosmos
    if not code and sub_status:
        code = f"substatus {sub_status}"
    return Answer(status, code, inner, redact(str(message or getattr(exc, "message", "") or ""))[:2000])


def _body(exc: BaseException) -> object:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        return json.loads(response.text())
    except Exception:
        return None


def _first_line(value: object) -> str:
    text = str(value).strip()
    return redact(text.splitlines()[0] if text else "")
