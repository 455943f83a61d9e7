"""Cosmos DB accounts through Resource Manager: read the account, regenerate a key, read a key.

The connection string is built from `listKeys` and the account's `documentEndpoint`, the same string
`listConnectionStrings` returns, so the function app needs only the read, listKeys and regenerateKey
actions (names.ARM_ACTIONS; the Bicep's custom role holds exactly those).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .error_table import from_sdk
from .errors import RotationError
from .settings import Target

READ_WRITE_KINDS = ("primary", "secondary")
READ_ONLY_KINDS = ("primaryReadonly", "secondaryReadonly")
KEY_KINDS = READ_WRITE_KINDS + READ_ONLY_KINDS

# keyKind → the field of listKeys and of keysMetadata that holds that key.
_KEY_FIELDS = {
    "primary": "primary_master_key",
    "secondary": "secondary_master_key",
    "primaryReadonly": "primary_readonly_master_key",
    "secondaryReadonly": "secondary_readonly_master_key",
}
# keyKind → the name Azure uses for it in keysMetadata (and in our event properties).
METADATA_NAMES = {
    "primary": "primaryMasterKey",
    "secondary": "secondaryMasterKey",
    "primaryReadonly": "primaryReadonlyMasterKey",
    "secondaryReadonly": "secondaryReadonlyMasterKey",
}

# Resource Manager reports a regeneration's progress through Azure-AsyncOperation; azure-core polls it,
# waiting Retry-After when the service sends one, else this many seconds (the SDK default is 30).
POLLING_INTERVAL_SECONDS = 5.0
# How long keysMetadata is watched for a regeneration to show, after regenerateKey got no clear answer or
# after its operation succeeded, and how many requests one rotation sends at most.
CONFIRM_WAIT_SECONDS = 120.0
SEND_ATTEMPTS = 3
# Resource Manager throttles before the request reaches the resource provider, answering 429 with
# Retry-After (docs: "Understand how Azure Resource Manager throttles requests"): such a regenerateKey did not
# act, and is sent again after the wait it names, up to this long.
MAX_RETRY_AFTER_SECONDS = 60.0
# Answers to the POST that prove it did not act: Resource Manager or Cosmos DB refused it, or no token.
# (A dropped connection, a 5xx or a 429 may come after the service acted: those are unclear.)
_REFUSED = ("BadRequest", "AuthenticationFailed", "AuthorizationFailed", "AccountNotFound", "ScopeLocked",
            "CredentialUnavailable", "UnexpectedServiceAnswer")


@dataclass(frozen=True)
class AccountState:
    document_endpoint: str
    key_generated_at: dict[str, datetime | None]


class Accounts:
    """The Resource Manager calls of a rotation, each translated into RotationError on failure."""

    def __init__(self, management_client_for: Any, polling_interval: float = POLLING_INTERVAL_SECONDS,
                 confirm_wait_seconds: float = CONFIRM_WAIT_SECONDS, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._client_for = management_client_for
        self._polling_interval = polling_interval
        self.confirm_wait_seconds = confirm_wait_seconds
        self._sleep, self._clock = sleep, clock

    def get(self, target: Target) -> AccountState:
        try:
            account = self._client_for(target.subscription_id).database_accounts.get(
                target.resource_group, target.account
            )
        except Exception as exc:
            raise from_sdk(exc, "arm", f"read account {target.account}") from None
        properties = account.properties
        endpoint = getattr(properties, "document_endpoint", None)
        if not endpoint:
            raise RotationError("AccountNotReady", f"account {target.account} has no documentEndpoint yet")
        metadata = getattr(properties, "keys_metadata", None)
        generated = {kind: _generation_time(metadata, kind) for kind in KEY_KINDS}
        return AccountState(document_endpoint=endpoint, key_generated_at=generated)

    def regenerate(self, target: Target, kind: str, before: datetime | None,
                   before_send: Callable[[], None] = lambda: None) -> AccountState:
        """Regenerate one key and return the account once keysMetadata shows the new key.

        regenerateKey is sent without automatic retries: azure-core's RetryPolicy re-sends a POST answered
        500, 503, 504 or carrying Retry-After (azure/core/pipeline/policies/_retry.py), and a service that
        acted before answering so would regenerate twice. After an unclear answer nothing is sent at once:
        keysMetadata moves only when a regeneration completes, so the account is read until the key's
        generationTime passes `before` (the lost request acted) or the wait ends; only then is one new
        request sent. `before_send` runs before each request (the caller fences its lease there)."""
        last: RotationError | None = None
        for attempt in range(1, SEND_ATTEMPTS + 1):
            before_send()
            answer = self._send_regeneration(target, kind, resent=attempt > 1)
            if answer is None:
                account = self._watch(target, kind, before)
                if account is None:
                    raise RotationError("KeyNotUpdated", f"the regeneration of the {kind} key of {target.account} "
                                        f"succeeded, but the account still showed the old key after "
                                        f"{self.confirm_wait_seconds:g} s")
                return account
            last = answer
            if isinstance(answer, _Throttled):  # refused before it reached Cosmos DB: send again when told
                self._sleep(answer.retry_after)
                continue
            account = self._watch(target, kind, before)
            if account is not None:  # the unclear request did act
                return account
        assert last is not None
        if last.code in ("AccountBusy", "Throttled"):  # still refused after our last request: nothing acted
            raise RotationError(last.code, last.message)
        raise RotationError("RegenerationUnconfirmed", f"{last.message}; keysMetadata showed no new {kind} key "
                            f"within {self.confirm_wait_seconds:g} s of any of {SEND_ATTEMPTS} requests (the next "
                            "attempt reads it again before sending anything)")

    def _send_regeneration(self, target: Target, kind: str, resent: bool) -> RotationError | None:
        """Send regenerateKey once and follow its operation. None when it succeeded; an unclear answer is
        returned (the caller reads keysMetadata), and so is a throttled one (_Throttled: the caller waits as
        told and sends again); a clear refusal or a failed operation is raised."""
        from azure.core.exceptions import ServiceRequestError
        from azure.mgmt.core.polling.arm_polling import ARMPolling
        from azure.mgmt.cosmosdb.models import DatabaseAccountRegenerateKeyParameters

        action = f"regenerate the {kind} key of {target.account}"
        client = self._client_for(target.subscription_id)
        # The operation returns nothing, so its status document is the final state: no GET of the
        # Location URL afterwards, one request and one permission fewer. Polls are reads: they keep
        # azure-core's retries.
        polling = ARMPolling(self._polling_interval, lro_options={"final-state-via": "azure-async-operation"})
        try:
            poller = client.database_accounts.begin_regenerate_key(
                target.resource_group, target.account, DatabaseAccountRegenerateKeyParameters(key_kind=kind),
                polling=polling, retry_total=0)
        except ServiceRequestError as exc:  # never reached the service
            raise from_sdk(exc, "arm", action) from None
        except Exception as exc:
            error = from_sdk(exc, "arm", action)
            if error.code == "Throttled":
                return _Throttled(error.code, error.message, _retry_after(exc))
            # A first 412 is someone else's operation; after a resend it may be ours, still running.
            if error.code in _REFUSED or (error.code == "AccountBusy" and not resent):
                raise error from None
            return error
        try:
            poller.result()
        except Exception as exc:
            if _operation_failed(exc):
                # Accepted, then ended Failed or Canceled: the key did not change; a later attempt is safe.
                raise RotationError("RegenerationFailed",
                                    f"Resource Manager could not {action}: {_operation_error(exc)}") from None
            return from_sdk(exc, "arm", f"follow the operation that will {action}")
        return None

    def _watch(self, target: Target, kind: str, before: datetime | None) -> AccountState | None:
        """Read the account until `kind`'s generationTime is newer than `before`; None if the wait passes.
        A read that still shows the old time is read again, never used: its key would be the old one."""
        deadline = self._clock() + self.confirm_wait_seconds
        delay = 0.5
        while True:
            try:
                account = self.get(target)
            except RotationError as error:
                if not error.transient:
                    raise
            else:
                generated = account.key_generated_at.get(kind)
                if generated is not None and (before is None or generated > before):
                    return account
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 10.0)

    def keys(self, target: Target) -> dict[str, str]:
        """All four keys by kind. The values are secrets: never log them."""
        try:
            keys = self._client_for(target.subscription_id).database_accounts.list_keys(
                target.resource_group, target.account
            )
        except Exception as exc:
            raise from_sdk(exc, "arm", f"list the keys of {target.account}") from None
        return {kind: getattr(keys, field) for kind, field in _KEY_FIELDS.items() if getattr(keys, field, None)}

    def connection_string(self, target: Target, kind: str, endpoint: str, not_key: str | None = None) -> str:
        """The connection string for one key kind, as listConnectionStrings gives it. A secret.
        With `not_key` (the key being replaced), a read that still returns that key is stale: read again
        until the wait passes, then fail rather than publish a dead key."""
        deadline = self._clock() + self.confirm_wait_seconds
        delay = 0.5
        while True:
            key = self.keys(target).get(kind)
            if not key:
                raise RotationError("KeyMissing", f"listKeys of {target.account} returned no {kind} key")
            if not_key is None or key != not_key:
                return connection_string(endpoint, key)
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise RotationError("KeyNotUpdated", f"listKeys of {target.account} still returned the old {kind} "
                                    f"key {self.confirm_wait_seconds:g} s after its regeneration")
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 10.0)


class _Throttled(RotationError):
    def __init__(self, code: str, message: str, retry_after: float) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


def _retry_after(exc: BaseException) -> float:
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    try:
        seconds = float(headers.get("Retry-After") or headers.get("retry-after") or 5)
    except ValueError:
        seconds = 5.0
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def connection_string(endpoint: str, key: str) -> str:
    return f"AccountEndpoint={endpoint};AccountKey={key};"


def key_of(secret_value: str) -> str | None:
    """The key a secret holds: the AccountKey part of a connection string, or the whole value when someone
    stored the bare key (no `Name=value;` parts)."""
    for part in secret_value.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountkey":
            return value.strip()
    bare = secret_value.strip()
    return bare if bare and ";" not in bare and "accountendpoint" not in bare.lower() else None


def kind_holding(key: str | None, keys: dict[str, str]) -> str | None:
    """Which key kind currently has this key value, compared in memory."""
    return next((kind for kind, value in keys.items() if key and value == key), None)


def _generation_time(metadata: Any, kind: str) -> datetime | None:
    entry = getattr(metadata, _KEY_FIELDS[kind], None) if metadata is not None else None
    return getattr(entry, "generation_time", None)


def _operation_failed(exc: BaseException) -> bool:
    from azure.core.polling.base_polling import OperationFailed

    return isinstance(exc.__cause__, OperationFailed)


def _operation_error(exc: Any) -> str:
    """The code and message of the failed operation's status document, if it has one."""
    try:
        error = exc.response.json().get("error") or {}
    except Exception:
        error = {}
    service_code = error.get("code") or "OperationFailed"
    message = error.get("message") or "the operation ended Failed or Canceled"
    return f"{service_code}: {message}"
