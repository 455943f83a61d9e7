"""Cosmos DB accounts through Resource Manager: read the account, regenerate a key, read a key.

The connection string is built from `listKeys` and the account's `documentEndpoint`, the same string
`listConnectionStrings` returns, so the function app needs only the read, listKeys and regenerateKey
actions (names.ARM_ACTIONS; the Bicep's custom role holds exactly those).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import RotationError, from_sdk
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


@dataclass(frozen=True)
class AccountState:
    document_endpoint: str
    key_generated_at: dict[str, datetime | None]


class Accounts:
    """The Resource Manager calls of a rotation, each translated into RotationError on failure."""

    def __init__(self, management_client_for: Any, polling_interval: float = POLLING_INTERVAL_SECONDS) -> None:
        self._client_for = management_client_for
        self._polling_interval = polling_interval

    def get(self, target: Target) -> AccountState:
        try:
            account = self._client_for(target.subscription_id).database_accounts.get(
                target.resource_group, target.account
            )
        except Exception as exc:
            raise from_sdk(exc, "Resource Manager", f"read account {target.account}") from None
        properties = account.properties
        endpoint = getattr(properties, "document_endpoint", None)
        if not endpoint:
            raise RotationError("AccountNotReady", f"account {target.account} has no documentEndpoint yet",
                                transient=True)
        metadata = getattr(properties, "keys_metadata", None)
        generated = {kind: _generation_time(metadata, kind) for kind in KEY_KINDS}
        return AccountState(document_endpoint=endpoint, key_generated_at=generated)

    def regenerate(self, target: Target, kind: str) -> None:
        """Regenerate one key and wait for the long-running operation to finish."""
        from azure.mgmt.core.polling.arm_polling import ARMPolling
        from azure.mgmt.cosmosdb.models import DatabaseAccountRegenerateKeyParameters

        client = self._client_for(target.subscription_id)
        # The operation returns nothing, so its status document is the final state: no GET of the
        # Location URL afterwards, one request and one permission fewer.
        polling = ARMPolling(self._polling_interval, lro_options={"final-state-via": "azure-async-operation"})
        try:
            poller = client.database_accounts.begin_regenerate_key(
                target.resource_group,
                target.account,
                DatabaseAccountRegenerateKeyParameters(key_kind=kind),
                polling=polling,
            )
            poller.result()
        except Exception as exc:
            action = f"regenerate the {kind} key of {target.account}"
            if _operation_failed(exc):
                # The operation was accepted and then ended Failed or Canceled: the key was not changed,
                # so another attempt later is safe.
                raise RotationError(
                    "RegenerationFailed", f"Resource Manager could not {action}: {_operation_error(exc)}",
                    transient=True,
                ) from None
            raise from_sdk(exc, "Resource Manager", action) from None

    def keys(self, target: Target) -> dict[str, str]:
        """All four keys by kind. The values are secrets: never log them."""
        try:
            keys = self._client_for(target.subscription_id).database_accounts.list_keys(
                target.resource_group, target.account
            )
        except Exception as exc:
            raise from_sdk(exc, "Resource Manager", f"list the keys of {target.account}") from None
        return {kind: getattr(keys, field) for kind, field in _KEY_FIELDS.items() if getattr(keys, field, None)}

    def connection_string(self, target: Target, kind: str, endpoint: str) -> str:
        """The connection string for one key kind, as listConnectionStrings gives it. A secret."""
        key = self.keys(target).get(kind)
        if not key:
            raise RotationError("KeyMissing", f"listKeys of {target.account} returned no {kind} key")
        return connection_string(endpoint, key)


def connection_string(endpoint: str, key: str) -> str:
    return f"AccountEndpoint={endpoint};AccountKey={key};"


def key_of(connection_string: str) -> str | None:
    """The AccountKey part of a Cosmos DB connection string."""
    for part in connection_string.split(";"):
        name, _, value = part.partition("=")
        if name.strip().lower() == "accountkey":
            return value.strip()
    return None


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
    code = error.get("code") or "OperationFailed"
    message = error.get("message") or "the operation ended Failed or Canceled"
    return f"{code}: {message}"
