"""Azure Key Vault secrets, data plane, as azure-keyvault-secrets 4.12 speaks it.

Each vault is served on its own port (the SDK caches its auth challenge per host).
The first request without a token is answered ``401`` with a ``WWW-Authenticate``
Bearer challenge naming the tenant and the resource ``https://vault.azure.net``;
the SDK then asks the credential for a token for that resource. The SDK checks that
the vault host ends with the challenge's resource domain unless the client is built
with ``verify_challenge_resource=False``: loopback vault URLs need that flag.

Secrets: set (new 32-hex-character version), get (latest or by version), list
versions and list secrets (paged with ``maxresults`` and ``nextLink``), update
attributes and tags, delete. Soft-delete is always on, as it is for every vault
(Microsoft Learn, "Azure Key Vault soft-delete overview": it can no longer be turned
off): delete moves the secret and all its versions to the deleted store, from where
it can be read (``/deletedsecrets``), recovered or purged; until then its name cannot
be reused (``409``, inner error ``ObjectIsDeletedButRecoverable``). Deletion and
recovery complete at once, so the SDK's pollers finish on their first poll.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from .faults import FaultRegistry, answer
from .http import BadRequestBody, Request, Response, ServiceError, error_envelope
from .state import DeletedSecret, EmulatorState, Secret, SecretVersion, StateError, Vault

VAULT_AUDIENCES = frozenset({
    "https://vault.azure.net",
    "https://vault.azure.cn",
    "https://vault.usgovcloudapi.net",
    "https://vault.microsoftazure.de",
})
CHALLENGE_RESOURCE = "https://vault.azure.net"
_NAME = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_VAULT_NAME = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{1,22}[a-zA-Z0-9]$")
_MAX_PAGE = 25
_MAX_TAGS = 15
_MAX_VALUE_CHARS = 25 * 1024
# Soft-delete with purge protection and 90 days' retention, as infra/modules/keyvault.bicep deploys the vault.
_RECOVERABLE_DAYS = 90
_RECOVERY = {"recoveryLevel": "Recoverable", "recoverableDays": _RECOVERABLE_DAYS}
_ERROR_CODES = {
    400: "BadParameter", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
    409: "Conflict", 429: "Throttled", 500: "InternalServerError", 502: "BadGateway",
    503: "ServiceUnavailable", 504: "GatewayTimeout",
}


# "CREATE secret" in "Azure Key Vault service limits": the one secret operation with its own, lower limit; every
# other secret operation counts among "All other transactions".
WRITE_OPERATIONS = frozenset({"setSecret"})


def vault_kind(operation: str) -> str:
    """Which bucket an operation draws from: ``writes`` (CREATE secret) or ``reads`` (all other transactions)."""
    return "writes" if operation in WRITE_OPERATIONS else "reads"


class VaultError(ServiceError):
    """Raised by handlers; rendered as Key Vault's ``{"error": {"code", "message"}}``."""


def vault_error(status: int, code: str | None, message: str, inner_code: str | None = None) -> Response:
    return error_envelope(status, code, message, _ERROR_CODES, inner_code)


def valid_vault_name(name: str) -> bool:
    """Key Vault names: 3-24 characters, letters, digits and hyphens, starting with a letter."""
    return bool(_VAULT_NAME.match(name)) and "--" not in name


def _not_found(name: str, version: str | None = None) -> VaultError:
    ident = f"{name}/{version}" if version else name
    return VaultError(404, "SecretNotFound",
                      f"A secret with (name/id) {ident} was not found in this key vault. If you recently deleted "
                      "this secret you may be able to recover it using the correct recovery command. For help "
                      "resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182")


def _deleted_not_found(name: str) -> VaultError:
    # As Key Vault answers GET /deletedsecrets/{name} while the secret is not (or not yet) in the deleted store
    # (service answers recorded in Azure/azure-sdk-for-js, sdk/keyvault/keyvault-secrets/recordings/node/).
    return VaultError(404, "SecretNotFound", f"Deleted Secret not found: {name}")


def _check_name(name: str) -> None:
    if not _NAME.match(name):
        raise VaultError(400, "BadParameter",
                         "The request URI contains an invalid name: secret names must match ^[0-9a-zA-Z-]{1,127}$.")


def _epoch(value: Any, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise VaultError(400, "BadParameter", f"Invalid value for attributes.{field}: expected epoch seconds.")
    return int(value)


def _tags(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise VaultError(400, "BadParameter", "Tags must be an object of string values.")
    if len(value) > _MAX_TAGS:
        raise VaultError(400, "BadParameter", f"A secret can have at most {_MAX_TAGS} tags.")
    return dict(value)


def _attributes(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise VaultError(400, "BadParameter", "attributes must be an object.")
    enabled = value.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise VaultError(400, "BadParameter", "attributes.enabled must be a boolean.")
    parsed: dict[str, Any] = {"enabled": enabled}
    for field, wire in (("not_before", "nbf"), ("expires", "exp")):
        if wire in value:
            parsed[field] = _epoch(value[wire], wire)
    return parsed


def _body(request: Request) -> dict[str, Any]:
    try:
        return request.json_object()
    except BadRequestBody as exc:
        raise VaultError(400, "BadParameter", str(exc)) from None


class VaultService:
    """One vault's secrets endpoint."""

    name = "vault"

    def __init__(self, state: EmulatorState, faults: FaultRegistry, vault_name: str) -> None:
        self._state = state
        self._faults = faults
        self.vault_name = vault_name

    @property
    def _vault(self) -> Vault:
        vault = self._state.vault(self.vault_name)
        if vault is None:  # removed by a reset while a request was in flight
            raise VaultError(404, "VaultNotFound", "This vault no longer exists.")
        return vault

    @property
    def _base(self) -> str:
        return self._vault.uri.rstrip("/")

    def internal_error(self) -> Response:
        return vault_error(500, "InternalServerError", "Internal error in the emulated Key Vault.")

    def handle(self, request: Request) -> Response:
        operation = "unknown"
        try:
            try:
                operation, handler = self._route(request)
                route_error = None
            except VaultError as exc:  # answered after authentication, as before
                route_error = exc
            self._authenticate(request)
            if route_error is not None:
                raise route_error
            if not request.param("api-version"):
                raise VaultError(400, "BadParameter", "The api-version query parameter is required.")
            self._throttle(operation)
            response = answer(self._faults.take("vault", operation, self.vault_name), vault_error, handler)
        except VaultError as exc:
            response = vault_error(exc.status, exc.code, exc.message, exc.inner_code)
            response.headers.update(exc.headers)
        response.headers.setdefault("x-ms-request-id", str(uuid.uuid4()))
        response.headers.setdefault("x-ms-keyvault-service-version", "1.9.0.0")
        if response.status == 401:
            response.headers.setdefault("WWW-Authenticate", self._challenge())
        self._state.metrics.record("vault", vault_kind(operation), operation, response.status)
        return response

    def _throttle(self, operation: str) -> None:
        """One token from this vault's bucket for the operation's kind, or Key Vault's 429. Only authenticated
        requests get here: the challenge round is never throttled."""
        kind = vault_kind(operation)
        config = self._state.config
        spec = config.vault_write_bucket if kind == "writes" else config.vault_read_bucket
        decision = self._state.throttle.take("vault", self.vault_name, kind, spec)
        if decision is None or decision.allowed:
            return
        # Key Vault's throttling answer, code and message as the service sends them (quoted in full, with the
        # response headers, in vcsjones/AzureSignTool issue 219 and dotnet/sign issue 403). Retry-After: see
        # local_azure/README.md ("Throttling"): those answers carried none; the emulator sends one.
        raise VaultError(429, "Throttled", "Request was not processed because too many requests were received. "
                                           "Reason: VaultRequestTypeLimitReached",
                         {"Retry-After": str(decision.retry_after)})

    # ----- authentication ---------------------------------------------------

    def _challenge(self) -> str:
        return (f'Bearer authorization="https://login.microsoftonline.com/{self._state.tenant_id}", '
                f'resource="{CHALLENGE_RESOURCE}"')

    def _authenticate(self, request: Request) -> None:
        header = request.header("Authorization") or ""
        if not header.lower().startswith("bearer "):
            raise VaultError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.")
        info = self._state.token_info(header[7:].strip())
        if info is None:
            raise VaultError(401, "Unauthorized", "AKV10032: Invalid or expired token.",
                             {"WWW-Authenticate": self._challenge() + ', error="invalid_token"'})
        if info.audience.strip().rstrip("/").lower() not in VAULT_AUDIENCES:
            raise VaultError(401, "Unauthorized", f"AKV10022: Invalid audience. Expected {CHALLENGE_RESOURCE}, "
                                                  f"found: {info.audience}.")

    # ----- routing ----------------------------------------------------------

    def _route(self, request: Request) -> tuple[str, Callable[[], Response]]:
        parts = [p for p in request.path.split("/") if p]
        method = request.method
        if parts and parts[0].lower() == "deletedsecrets":
            return self._deleted_route(request, parts)
        if not parts or parts[0].lower() != "secrets" or len(parts) > 3:
            raise VaultError(404, "NotFound", "The requested resource was not found.")
        if len(parts) == 1:
            self._allow(method, "GET")
            return "listSecrets", lambda: self._list_secrets(request)
        name = parts[1]
        _check_name(name)
        if len(parts) == 3 and parts[2] == "versions":
            self._allow(method, "GET")
            return "listSecretVersions", lambda: self._list_versions(request, name)
        version = parts[2] if len(parts) == 3 else ""
        return self._secret_route(request, name, version)

    def _secret_route(self, request: Request, name: str, version: str) -> tuple[str, Callable[[], Response]]:
        method = request.method
        if method == "PUT" and not version:
            return "setSecret", lambda: self._set_secret(request, name)
        if method == "DELETE" and not version:
            return "deleteSecret", lambda: self._delete_secret(name)
        if method == "GET":
            return "getSecret", lambda: self._get_secret(name, version)
        if method == "PATCH":
            return "updateSecret", lambda: self._update_secret(request, name, version)
        raise VaultError(405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported for this resource.")

    def _deleted_route(self, request: Request, parts: list[str]) -> tuple[str, Callable[[], Response]]:
        method = request.method
        if len(parts) == 1:
            self._allow(method, "GET")
            return "listDeletedSecrets", lambda: self._list_deleted(request)
        name = parts[1]
        _check_name(name)
        if len(parts) == 2 and method == "GET":
            return "getDeletedSecret", lambda: self._get_deleted(name)
        if len(parts) == 2 and method == "DELETE":
            return "purgeDeletedSecret", lambda: self._purge_deleted(name)
        if len(parts) == 3 and parts[2].lower() == "recover":
            self._allow(method, "POST")
            return "recoverDeletedSecret", lambda: self._recover_deleted(name)
        if len(parts) == 2:
            raise VaultError(405, "MethodNotAllowed",
                             f"The HTTP method '{method}' is not supported for this resource.")
        raise VaultError(404, "NotFound", "The requested resource was not found.")

    @staticmethod
    def _allow(method: str, allowed: str) -> None:
        if method != allowed:
            raise VaultError(405, "MethodNotAllowed", f"The HTTP method '{method}' is not supported for this resource.")

    # ----- rendering --------------------------------------------------------

    def _item(self, secret: Secret, version: SecretVersion, with_version: bool = True) -> dict[str, Any]:
        """SecretItem / SecretBundle without the value."""
        ident = f"{self._base}/secrets/{secret.name}"
        attributes: dict[str, Any] = {"enabled": version.enabled, "created": version.created,
                                      "updated": version.updated, **_RECOVERY}
        if version.not_before is not None:
            attributes["nbf"] = version.not_before
        if version.expires is not None:
            attributes["exp"] = version.expires
        item: dict[str, Any] = {"id": f"{ident}/{version.version}" if with_version else ident,
                                "attributes": attributes}
        if version.content_type is not None:
            item["contentType"] = version.content_type
        if version.tags:
            item["tags"] = dict(version.tags)
        return item

    def _bundle(self, secret: Secret, version: SecretVersion) -> dict[str, Any]:
        return {"value": version.value, **self._item(secret, version)}

    def _deleted(self, deleted: DeletedSecret, with_version: bool = True) -> dict[str, Any]:
        """DeletedSecretBundle (``with_version``) or DeletedSecretItem, never with a value: the REST reference's
        Delete Secret, Get Deleted Secret and Get Deleted Secrets examples carry none."""
        secret = deleted.secret
        return {
            "recoveryId": f"{self._base}/deletedsecrets/{secret.name}",
            "deletedDate": deleted.deleted_date,
            "scheduledPurgeDate": deleted.scheduled_purge_date,
            **self._item(secret, secret.latest, with_version),
        }

    # ----- operations -------------------------------------------------------

    def _set_secret(self, request: Request, name: str) -> Response:
        body = _body(request)
        value = body.get("value")
        if not isinstance(value, str):
            raise VaultError(400, "BadParameter", "The secret value ('value') is required and must be a string.")
        if len(value) > _MAX_VALUE_CHARS:
            raise VaultError(400, "BadParameter", "The secret value is too large (at most 25 KB).")
        content_type = body.get("contentType")
        if content_type is not None and not isinstance(content_type, str):
            raise VaultError(400, "BadParameter", "contentType must be a string.")
        tags = _tags(body.get("tags"))
        attrs = _attributes(body.get("attributes"))
        now = int(time.time())
        enabled = attrs["enabled"] if attrs.get("enabled") is not None else True
        version = SecretVersion(uuid.uuid4().hex, value, now, now, content_type, tags, enabled,
                                attrs.get("not_before"), attrs.get("expires"))
        self._state.record_secret_value(value)
        with self._state.lock:
            if name.lower() in self._vault.deleted:
                # Key Vault's answer while the name is soft-deleted: code Conflict with inner error code
                # ObjectIsDeletedButRecoverable (Azure/azure-sdk-for-net, Azure.Security.KeyVault.Secrets
                # sample 4 "Getting error details"); the message as the service words it.
                raise VaultError(409, "Conflict",
                                 f"Secret {name} is currently in a deleted but recoverable state, and its name cannot "
                                 "be reused; in this state, the secret can only be recovered or purged.",
                                 inner_code="ObjectIsDeletedButRecoverable")
            secrets = self._vault.secrets
            secret = secrets.setdefault(name.lower(), Secret(name))
            secret.versions.append(version)
            return Response(200, self._bundle(secret, version))

    def _find(self, name: str, version: str) -> tuple[Secret, SecretVersion]:
        """Caller holds the state lock."""
        secret = self._vault.secrets.get(name.lower())
        if secret is None or not secret.versions:
            raise _not_found(name, version or None)
        found = secret.find(version) if version else secret.latest
        if found is None:
            raise _not_found(name, version)
        return secret, found

    def _get_secret(self, name: str, version: str) -> Response:
        with self._state.lock:
            secret, found = self._find(name, version)
            if not found.enabled:
                # Key Vault's exact answer (seen in Azure/azure-sdk-for-js issue 24756 and
                # ansible-collections/azure issue 1989, and recorded in Azure/azure-sdk-for-js,
                # sdk/keyvault/keyvault-secrets/recordings/node/.../recording_cant_get_a_disabled_secret.js).
                raise VaultError(403, "Forbidden", "Operation get is not allowed on a disabled secret.",
                                 inner_code="SecretDisabled")
            return Response(200, self._bundle(secret, found))

    def _update_secret(self, request: Request, name: str, version: str) -> Response:
        body = _body(request)
        tags = _tags(body.get("tags"))
        attrs = _attributes(body.get("attributes"))
        content_type = body.get("contentType")
        with self._state.lock:
            secret, found = self._find(name, version)
            if "tags" in body:
                found.tags = tags
            if content_type is not None:
                found.content_type = str(content_type)
            if attrs.get("enabled") is not None:
                found.enabled = attrs["enabled"]
            found.not_before = attrs.get("not_before", found.not_before)
            found.expires = attrs.get("expires", found.expires)
            found.updated = int(time.time())
            return Response(200, self._item(secret, found))

    def _delete_secret(self, name: str) -> Response:
        with self._state.lock:
            secret, _ = self._find(name, "")
            now = int(time.time())
            deleted = DeletedSecret(secret, now, now + _RECOVERABLE_DAYS * 86400)
            vault = self._vault
            del vault.secrets[name.lower()]
            vault.deleted[name.lower()] = deleted
            # With a recoveryId the SDK's delete poller polls GET /deletedsecrets/{name} until it answers 200
            # (azure/keyvault/secrets/_shared/_polling.py): here it does at once.
            return Response(200, self._deleted(deleted))

    def _find_deleted(self, name: str) -> DeletedSecret:
        """Caller holds the state lock."""
        deleted = self._vault.deleted.get(name.lower())
        if deleted is None:
            raise _deleted_not_found(name)
        return deleted

    def _get_deleted(self, name: str) -> Response:
        with self._state.lock:
            return Response(200, self._deleted(self._find_deleted(name)))

    def _list_deleted(self, request: Request) -> Response:
        with self._state.lock:
            items = [self._deleted(d, with_version=False) for d in self._vault.deleted.values()]
        return self._page(request, items, "/deletedsecrets")

    def _recover_deleted(self, name: str) -> Response:
        with self._state.lock:
            deleted = self._find_deleted(name)
            vault = self._vault
            del vault.deleted[name.lower()]
            vault.secrets[name.lower()] = deleted.secret
            # A SecretBundle without the value, as the service answers a recovery; the SDK's poller then
            # reads GET /secrets/{name} until it answers (at once here).
            return Response(200, self._item(deleted.secret, deleted.secret.latest))

    def _purge_deleted(self, name: str) -> Response:
        # The project's vault has purge protection (recoveryLevel "Recoverable"), under which Azure refuses a
        # purge until the retention period ends; the emulator allows it, so that tests can reuse a name.
        with self._state.lock:
            self._find_deleted(name)
            del self._vault.deleted[name.lower()]
        return Response(204)

    def _page(self, request: Request, items: list[dict[str, Any]], path: str) -> Response:
        size = self._page_size(request)
        skip = self._skip(request)
        page = items[skip:skip + size]
        next_link = None
        if skip + size < len(items):
            api_version = quote(request.param("api-version") or "")
            next_link = f"{self._base}{path}?api-version={api_version}&$skiptoken={skip + size}&maxresults={size}"
        return Response(200, {"value": page, "nextLink": next_link})

    @staticmethod
    def _page_size(request: Request) -> int:
        raw = request.param("maxresults")
        if raw is None:
            return _MAX_PAGE
        if not raw.isdigit() or not 1 <= int(raw) <= _MAX_PAGE:
            raise VaultError(400, "BadParameter", f"maxresults must be an integer from 1 to {_MAX_PAGE}.")
        return int(raw)

    @staticmethod
    def _skip(request: Request) -> int:
        raw = request.param("$skiptoken") or "0"
        if not raw.isdigit():
            raise VaultError(400, "BadParameter", "Invalid $skiptoken.")
        return int(raw)

    def _list_versions(self, request: Request, name: str) -> Response:
        with self._state.lock:
            secret = self._vault.secrets.get(name.lower())
            items = [self._item(secret, v) for v in secret.versions] if secret else []
        return self._page(request, items, f"/secrets/{name}/versions")

    def _list_secrets(self, request: Request) -> Response:
        with self._state.lock:
            items = [self._item(s, s.latest, with_version=False) for s in self._vault.secrets.values() if s.versions]
        return self._page(request, items, "/secrets")


def new_vault(name: str, uri: str) -> Vault:
    if not valid_vault_name(name):
        raise StateError("bad_request", "Vault names are 3-24 letters, digits and hyphens, starting with a letter.")
    return Vault(name, uri)
