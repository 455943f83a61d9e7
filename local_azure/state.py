"""In-memory state shared by all emulated services, guarded by one lock.

Holds the Cosmos DB accounts (keys, key metadata, regeneration operations),
the Key Vault secrets, the access tokens issued by the identity endpoint, the
emulator's configuration, and a register of every secret value the emulator has
issued or stored, so tests can assert that none of them leaks into logs.
"""

from __future__ import annotations

import base64
import collections
import datetime
import heapq
import itertools
import secrets
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .metrics import Metrics
from .throttling import (
    ARM_READ_BUCKET,
    ARM_WRITE_BUCKET,
    VAULT_READ_BUCKET,
    VAULT_WRITE_BUCKET,
    BucketSpec,
    Throttler,
    parse_bucket,
)

KEY_KINDS = ("primary", "secondary", "primaryReadonly", "secondaryReadonly")
READ_WRITE_KINDS = frozenset({"primary", "secondary"})
KEY_FIELDS = {
    "primary": "primaryMasterKey",
    "secondary": "secondaryMasterKey",
    "primaryReadonly": "primaryReadonlyMasterKey",
    "secondaryReadonly": "secondaryReadonlyMasterKey",
}
DEFAULT_LOCATIONS = ("chinaeast2", "chinanorth2")
DEFAULT_LIST_PAGE_SIZE = 100
MAX_LIST_PAGE_SIZE = 1000


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc)


def iso_utc(moment: datetime.datetime) -> str:
    """ISO 8601 UTC with a ``Z``, as Resource Manager writes times."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_iso(text: str) -> datetime.datetime:
    """Parse ISO 8601; Python 3.10's ``fromisoformat`` does not accept a ``Z``."""
    moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.astimezone(datetime.timezone.utc)


def new_account_key() -> str:
    """64 random bytes in base64: 88 characters ending in ``==``, like real Cosmos DB keys."""
    return base64.b64encode(secrets.token_bytes(64)).decode("ascii")


class StateError(Exception):
    """A request the state cannot satisfy; services map ``kind`` to their error format."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


def _number(wire: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"'{wire}' must be a number >= 0.")
    return float(value)


def _whole(wire: str, value: Any) -> int:
    if not float(_number(wire, value)).is_integer():
        raise ValueError(f"'{wire}' must be an integer.")
    return int(value)


def _page_size(wire: str, value: Any) -> int:
    size = _whole(wire, value)
    if not 1 <= size <= MAX_LIST_PAGE_SIZE:
        raise ValueError(f"'{wire}' must be from 1 to {MAX_LIST_PAGE_SIZE}.")
    return size


@dataclass
class Config:
    """Knobs settable through ``POST /_emulator/config``. Buckets are ``(size, refillPerSecond)`` or None (no
    throttling); see ``throttling.py`` for where the defaults come from."""

    regeneration_seconds: float = 0.2
    propagation_failures: int = 0
    poll_retry_after_ms: int = 50
    token_lifetime_seconds: int = 86400
    arm_write_bucket: BucketSpec | None = ARM_WRITE_BUCKET
    arm_read_bucket: BucketSpec | None = ARM_READ_BUCKET
    vault_write_bucket: BucketSpec | None = VAULT_WRITE_BUCKET
    vault_read_bucket: BucketSpec | None = VAULT_READ_BUCKET
    arm_list_page_size: int = DEFAULT_LIST_PAGE_SIZE

    _NAMES = {
        "regenerationSeconds": ("regeneration_seconds", _number),
        "propagationFailures": ("propagation_failures", _whole),
        "pollRetryAfterMs": ("poll_retry_after_ms", _whole),
        "tokenLifetimeSeconds": ("token_lifetime_seconds", _whole),
        "armWriteBucket": ("arm_write_bucket", parse_bucket),
        "armReadBucket": ("arm_read_bucket", parse_bucket),
        "vaultWriteBucket": ("vault_write_bucket", parse_bucket),
        "vaultReadBucket": ("vault_read_bucket", parse_bucket),
        "armListPageSize": ("arm_list_page_size", _page_size),
    }

    def to_json(self) -> dict[str, Any]:
        view = {}
        for wire, (attr, _) in self._NAMES.items():
            value = getattr(self, attr)
            view[wire] = list(value) if isinstance(value, tuple) else value
        return view

    def update(self, payload: dict[str, Any]) -> None:
        """Validate everything first, then apply, so a bad field changes nothing."""
        changes: dict[str, Any] = {}
        for wire, value in payload.items():
            if wire not in self._NAMES:
                raise StateError("bad_request", f"Unknown config field '{wire}'; known: {', '.join(self._NAMES)}.")
            attr, parse = self._NAMES[wire]
            try:
                changes[attr] = parse(wire, value)
            except ValueError as exc:
                raise StateError("bad_request", str(exc)) from None
        for attr, value in changes.items():
            setattr(self, attr, value)


@dataclass
class Regeneration:
    """One ``regenerateKey`` long-running operation."""

    operation_id: str
    key_kind: str
    requested_at: datetime.datetime
    due: float  # time.monotonic() when the operation completes
    duration: float
    final_status: str = "Succeeded"
    error: dict[str, str] | None = None
    completed_at: datetime.datetime | None = None
    # The key kind's generationTime before this operation replaced the key (a stale read shows it).
    previous_generation: datetime.datetime | None = None

    @property
    def status(self) -> str:
        return "InProgress" if self.completed_at is None else self.final_status

    def to_json(self) -> dict[str, Any]:
        return {
            "operationId": self.operation_id,
            "keyKind": self.key_kind,
            "status": self.status,
            "requestedAt": iso_utc(self.requested_at),
            "completedAt": iso_utc(self.completed_at) if self.completed_at else None,
            "error": self.error,
        }


@dataclass
class Account:
    """A Cosmos DB account: identity, endpoint, keys and their history."""

    subscription_id: str
    resource_group: str
    name: str
    locations: list[str]
    document_endpoint: str
    keys: dict[str, str]
    generated: dict[str, datetime.datetime]
    succeeded: Counter[str] = field(default_factory=Counter)
    requested: Counter[str] = field(default_factory=Counter)
    log: list[Regeneration] = field(default_factory=list)
    # Remaining data-plane rejections of a freshly regenerated key, per key kind.
    propagation: dict[str, int] = field(default_factory=dict)
    data_plane_requests: int = 0
    tags: dict[str, str] = field(default_factory=dict)
    # The Log Analytics workspace its diagnostic setting sends DataPlaneRequests to (None: no setting).
    diagnostics_workspace: str | None = None

    @property
    def ref(self) -> tuple[str, str, str]:
        return account_ref(self.subscription_id, self.resource_group, self.name)

    @property
    def resource_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DocumentDB/databaseAccounts/{self.name}"
        )

    def pending(self) -> Regeneration | None:
        return next((op for op in self.log if op.completed_at is None), None)

    def generated_before_last(self) -> dict[str, datetime.datetime]:
        """Generation times as they were before the last regeneration that replaced a key (caller holds the
        lock): what a read lagging behind that finished operation shows."""
        generated = dict(self.generated)
        # One operation runs at a time per account, so the log is also in order of completion.
        for op in reversed(self.log):
            if op.previous_generation is not None:
                generated[op.key_kind] = op.previous_generation
                break
        return generated

    def to_state_json(self) -> dict[str, Any]:
        return {
            "id": self.resource_id,
            "subscriptionId": self.subscription_id,
            "resourceGroup": self.resource_group,
            "name": self.name,
            "locations": list(self.locations),
            "documentEndpoint": self.document_endpoint,
            "tags": dict(self.tags),
            "keysMetadata": {KEY_FIELDS[k]: {"generationTime": iso_utc(self.generated[k])} for k in KEY_KINDS},
            "regenerationCounts": {k: self.succeeded[k] for k in KEY_KINDS},
            "regenerationRequests": {k: self.requested[k] for k in KEY_KINDS},
            "regenerations": [op.to_json() for op in self.log],
            "pendingPropagation": {k: n for k, n in self.propagation.items() if n > 0},
            "dataPlaneRequests": self.data_plane_requests,
        }


def account_ref(subscription_id: str, resource_group: str, name: str) -> tuple[str, str, str]:
    """Resource Manager names are case-insensitive."""
    return subscription_id.lower(), resource_group.lower(), name.lower()


@dataclass
class SecretVersion:
    """One version of a Key Vault secret; times are epoch seconds."""

    version: str
    value: str
    created: int
    updated: int
    content_type: str | None = None
    tags: dict[str, str] | None = None
    enabled: bool = True
    not_before: int | None = None
    expires: int | None = None

    def metadata_json(self) -> dict[str, Any]:
        """Everything but the value, for the admin state view."""
        return {
            "version": self.version,
            "contentType": self.content_type,
            "tags": dict(self.tags or {}),
            "attributes": {
                "enabled": self.enabled,
                "created": self.created,
                "updated": self.updated,
                "nbf": self.not_before,
                "exp": self.expires,
            },
        }


@dataclass
class Secret:
    name: str
    versions: list[SecretVersion] = field(default_factory=list)

    @property
    def latest(self) -> SecretVersion:
        return self.versions[-1]

    def find(self, version: str) -> SecretVersion | None:
        return next((v for v in self.versions if v.version == version.lower()), None)


@dataclass
class DeletedSecret:
    """A soft-deleted secret with all its versions; times are epoch seconds."""

    secret: Secret
    deleted_date: int
    scheduled_purge_date: int

    def metadata_json(self) -> dict[str, Any]:
        return {
            "name": self.secret.name,
            "deletedDate": self.deleted_date,
            "scheduledPurgeDate": self.scheduled_purge_date,
            "versions": [v.metadata_json() for v in self.secret.versions],
        }


@dataclass
class Vault:
    name: str
    uri: str
    secrets: dict[str, Secret] = field(default_factory=dict)  # keyed by lower-case name
    deleted: dict[str, DeletedSecret] = field(default_factory=dict)  # soft-deleted, keyed by lower-case name

    def to_json(self) -> dict[str, str]:
        return {"name": self.name, "uri": self.uri}


@dataclass(frozen=True)
class TokenInfo:
    audience: str
    expires_on: int
    client_id: str


@dataclass
class Issued:
    """Every secret-bearing string the emulator ever issued or stored."""

    keys: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    secret_values: list[str] = field(default_factory=list)
    identity_headers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, list[str]]:
        every = [*self.keys, *self.tokens, *self.secret_values, *self.identity_headers]
        return {
            "keys": list(self.keys),
            "tokens": list(self.tokens),
            "secretValues": list(self.secret_values),
            "identityHeaders": list(self.identity_headers),
            "all": every,
        }


class EmulatorState:
    """All mutable emulator state. Every public method takes the lock."""

    def __init__(self, identity_header: str, tenant_id: str) -> None:
        self.lock = threading.RLock()
        self.config = Config()
        self.identity_header = identity_header
        self.tenant_id = tenant_id
        self.system_client_id = str(uuid.uuid4())
        self.accounts: dict[tuple[str, str, str], Account] = {}
        self.vaults: dict[str, Vault] = {}
        self.tokens: dict[str, TokenInfo] = {}
        self.operations: dict[str, tuple[Account, Regeneration]] = {}
        # Running regenerations by due time, so completing the due ones never walks every account.
        self._due: list[tuple[float, int, Account, Regeneration]] = []
        self._due_order = itertools.count()
        self.issued = Issued(identity_headers=[identity_header])
        # Each with its own lock: counting and throttling never wait for the state lock.
        self.throttle = Throttler()
        self.metrics = Metrics()
        # The Log Analytics workspaces, and what the accounts' diagnostic settings sent them (logs.py).
        self.workspace_id = str(uuid.uuid4())
        self.workspaces = {self.workspace_id}
        self._data_plane_log: collections.deque[dict[str, Any]] = collections.deque(maxlen=100_000)

    # ----- configuration -------------------------------------------------

    def configure(self, payload: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.config.update(payload)
            return self.config.to_json()

    def reset(self, keep_vault: str) -> None:
        """Forget accounts, operations, secrets and extra vaults; tokens and ``issued`` survive."""
        with self.lock:
            self.accounts.clear()
            self.operations.clear()
            self._due.clear()
            self.vaults = {k: v for k, v in self.vaults.items() if k == keep_vault.lower()}
            for vault in self.vaults.values():
                vault.secrets.clear()
                vault.deleted.clear()
            self.config = Config()
            self._data_plane_log.clear()
        self.throttle.reset()
        self.metrics.snapshot(reset=True)

    # ----- tokens ---------------------------------------------------------

    def issue_token(self, audience: str, client_id: str | None) -> tuple[str, TokenInfo]:
        with self.lock:
            token = secrets.token_urlsafe(48)
            info = TokenInfo(audience, int(time.time()) + self.config.token_lifetime_seconds,
                             client_id or self.system_client_id)
            self.tokens[token] = info
            self.issued.tokens.append(token)
            return token, info

    # ----- diagnostic logs ------------------------------------------------

    def log_data_plane_request(self, account: Account, key: str, client_ip: str, user_agent: str,
                               status: int = 200) -> None:
        """One CDBDataPlaneRequests row, in the workspace the account's diagnostic setting names; refused
        requests are rows too (StatusCode 401), as in Azure."""
        with self.lock:
            if account.diagnostics_workspace is not None:
                self._data_plane_log.append({
                    "workspace": account.diagnostics_workspace, "accountId": account.resource_id, "key": key,
                    "clientIp": client_ip, "userAgent": user_agent, "status": status,
                    "time": datetime.datetime.now(datetime.timezone.utc),
                })

    def data_plane_log(self, workspace: str) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self._data_plane_log if r["workspace"] == workspace]

    def token_info(self, token: str) -> TokenInfo | None:
        """The token's audience, or None when unknown or expired."""
        with self.lock:
            info = self.tokens.get(token)
        if info is None or info.expires_on <= time.time():
            return None
        return info

    # ----- accounts -------------------------------------------------------

    def add_account(self, account: Account) -> None:
        with self.lock:
            if account.ref in self.accounts:
                raise StateError("conflict", f"Database account '{account.name}' already exists.")
            self.accounts[account.ref] = account
            self.issued.keys.extend(account.keys.values())

    def remove_account(self, ref: tuple[str, str, str]) -> None:
        with self.lock:
            self.accounts.pop(ref, None)

    def list_accounts(self, subscription_id: str, resource_group: str | None = None) -> list[Account]:
        """The subscription's accounts (or one resource group's), ordered by resource group and name."""
        with self.lock:
            self._settle()
            found = [a for a in self.accounts.values() if a.ref[0] == subscription_id.lower()
                     and (resource_group is None or a.ref[1] == resource_group.lower())]
        return sorted(found, key=lambda a: a.ref)

    def set_tags(self, account: Account, tags: dict[str, str]) -> None:
        with self.lock:
            account.tags = dict(tags)

    def account(self, ref: tuple[str, str, str]) -> Account | None:
        """The account with every operation that is due completed first."""
        with self.lock:
            self._settle()
            return self.accounts.get(ref)

    def find_accounts(self, name: str) -> list[Account]:
        with self.lock:
            self._settle()
            return [a for a in self.accounts.values() if a.name.lower() == name.lower()]

    def start_regeneration(self, account: Account, key_kind: str, lro_status: str | None,
                           error: dict[str, str] | None) -> Regeneration:
        """Accept a regeneration; it completes ``regenerationSeconds`` later."""
        with self.lock:
            self._settle()
            if account.pending() is not None:
                # What Cosmos DB answers while another control-plane operation holds the account lock.
                raise StateError("busy", f"There is another user operation in progress which requires an "
                                         f"exclusive lock on [{account.name}]. Please retry after sometime.")
            duration = self.config.regeneration_seconds
            op = Regeneration(str(uuid.uuid4()), key_kind, utc_now(), time.monotonic() + duration, duration,
                              final_status=lro_status or "Succeeded", error=error)
            account.requested[key_kind] += 1
            account.log.append(op)
            self.operations[op.operation_id] = (account, op)
            heapq.heappush(self._due, (op.due, next(self._due_order), account, op))
            return op

    def operation(self, operation_id: str) -> tuple[Account, Regeneration] | None:
        with self.lock:
            self._settle()
            return self.operations.get(operation_id.lower())

    def _settle(self) -> None:
        """Complete every operation whose time has come (lazily, under the lock). Only due operations are
        visited: with hundreds of accounts, every request still does O(1) work here when nothing is due."""
        now = time.monotonic()
        while self._due and self._due[0][0] <= now:
            _, _, account, op = heapq.heappop(self._due)
            if op.completed_at is None and self.accounts.get(account.ref) is account:
                self._complete(account, op)

    def _complete(self, account: Account, op: Regeneration) -> None:
        op.completed_at = op.requested_at + datetime.timedelta(seconds=op.duration)
        if op.final_status != "Succeeded":
            return  # a failed or canceled operation leaves the key as it was
        key = new_account_key()
        op.previous_generation = account.generated[op.key_kind]
        account.keys[op.key_kind] = key
        account.generated[op.key_kind] = op.completed_at
        account.succeeded[op.key_kind] += 1
        account.propagation[op.key_kind] = self.config.propagation_failures
        self.issued.keys.append(key)

    # ----- vaults ---------------------------------------------------------

    def add_vault(self, vault: Vault) -> None:
        with self.lock:
            if vault.name.lower() in self.vaults:
                raise StateError("conflict", f"Vault '{vault.name}' already exists.")
            self.vaults[vault.name.lower()] = vault

    def vault(self, name: str) -> Vault | None:
        with self.lock:
            return self.vaults.get(name.lower())

    def record_secret_value(self, value: str) -> None:
        with self.lock:
            self.issued.secret_values.append(value)

    # ----- views ----------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """Admin view: metadata only, never a key, token or secret value."""
        with self.lock:
            self._settle()
            return {
                "config": self.config.to_json(),
                "tenantId": self.tenant_id,
                "accounts": [a.to_state_json() for a in self.accounts.values()],
                "vaults": [self._vault_state(v) for v in self.vaults.values()],
                "tokensIssued": len(self.tokens),
            }

    @staticmethod
    def _vault_state(vault: Vault) -> dict[str, Any]:
        return {
            **vault.to_json(),
            "secrets": [
                {"name": s.name, "versions": [v.metadata_json() for v in s.versions]}
                for s in vault.secrets.values()
            ],
            "deletedSecrets": [d.metadata_json() for d in vault.deleted.values()],
        }

    def issued_json(self) -> dict[str, list[str]]:
        with self.lock:
            self._settle()  # a regeneration that is due has issued its key
            return self.issued.to_json()
