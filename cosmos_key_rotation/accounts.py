"""Cosmos DB accounts through Resource Manager: read the account and its keys (regeneration.py changes them).

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
from .times import iso

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

# How long a read that lags behind a regeneration is read again: keysMetadata still showing the old
# generationTime (regeneration.py), listKeys still returning the key being replaced (connection_string).
CONFIRM_WAIT_SECONDS = 120.0


@dataclass(frozen=True)
class AccountState:
    document_endpoint: str
    key_generated_at: dict[str, datetime | None]

    def generated_by_name(self) -> dict[str, str]:
        """Each known generationTime under the keysMetadata name of its key (primaryMasterKey, ...), as the
        results, the final events and the heartbeat show them."""
        return {METADATA_NAMES[kind]: iso(value) for kind, value in self.key_generated_at.items() if value}


class Accounts:
    """The Resource Manager calls of a rotation, each translated into RotationError on failure."""

    def __init__(self, management_client_for: Any, confirm_wait_seconds: float = CONFIRM_WAIT_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self._client_for = management_client_for
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

    def list(self, subscription_id: str) -> list[Any]:
        """Every Cosmos DB account of the subscription (with its tags), all pages. Raises the SDK's errors:
        the caller says which subscription failed."""
        return list(self._client_for(subscription_id).database_accounts.list())

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
