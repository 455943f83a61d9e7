"""Local emulator of the Azure endpoints the Cosmos DB key rotation app talks to.

A development and test tool, never deployed: the real Azure SDKs run unchanged
against it. It serves, each on its own loopback port:

- the managed identity token endpoint (App Service protocol, plain HTTP),
- Resource Manager for ``Microsoft.DocumentDB/databaseAccounts`` (HTTPS),
- Key Vault secrets, one port per vault (HTTPS),
- each Cosmos DB account's data plane, one port per account (HTTPS),
- the Azure Monitor Logs query API of one Log Analytics workspace, which the data planes' diagnostic
  logs (table CDBDataPlaneRequests) go to (HTTPS, ``logs.py``),

plus an admin API under ``<arm>/_emulator/`` (see ``control.py``)::

    from local_azure import Emulator
    with Emulator(state_dir) as emu:
        emu.create_account("sub", "rg", "docdb-test")
        os.environ.update(emu.env())  # IDENTITY_ENDPOINT, IDENTITY_HEADER, REQUESTS_CA_BUNDLE, ARM_ENDPOINT
"""

from __future__ import annotations

import datetime
import json
import os
import re
import secrets
import ssl
import threading
import uuid
from pathlib import Path
from typing import Any

from .admin import AdminClient
from .arm import ArmService, account_json
from .control import ControlApi
from .dataplane import DataPlaneService
from .faults import OPERATIONS, FaultRegistry
from .http import Listener, stop_all
from .identity import TOKEN_PATH, IdentityService
from .keyvault import VaultService, new_vault
from .logs import LogsService
from .state import (
    DEFAULT_LOCATIONS,
    KEY_KINDS,
    Account,
    EmulatorState,
    StateError,
    account_ref,
    new_account_key,
    parse_iso,
    utc_now,
)
from .tls import TlsFiles, create_tls_files

__all__ = ["AdminClient", "Emulator"]

DEFAULT_VAULT = "emulator-vault"
INFO_FILE = "emulator.json"
_ACCOUNT_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$")
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._()-]{1,90}$")
# Microsoft Learn, "Use tags to organize your Azure resources", Limitations: at most 50 tags per resource, names up
# to 512 characters without < > % & \ ? /, values up to 256 characters.
_MAX_TAGS, _MAX_TAG_NAME, _MAX_TAG_VALUE = 50, 512, 256
_TAG_NAME_FORBIDDEN = set("<>%&\\?/")


DATA_PLANE_HOST = "127.0.0.2"


class Emulator:
    """Starts and stops every emulated endpoint; also what the admin API drives."""

    def __init__(self, state_dir: str | os.PathLike[str], host: str = "127.0.0.1", arm_port: int = 0,
                 identity_port: int = 0, vault_port: int = 0, default_vault: str = DEFAULT_VAULT) -> None:
        self.state_dir = Path(state_dir)
        self.host = host
        # azure-cosmos turns TLS verification off for the hosts 127.0.0.1 and localhost (it assumes the
        # Cosmos DB emulator). The data planes listen on another loopback address so that verifying a
        # new key also proves the TLS chain, as it must against Azure.
        self.data_plane_host = DATA_PLANE_HOST if host == "127.0.0.1" else host
        self.default_vault = default_vault
        self._ports = {"arm": arm_port, "identity": identity_port, "vault": vault_port}
        self.faults = FaultRegistry(set(OPERATIONS) - {"storage"})  # storage faults: Azurite.faults
        self.state = EmulatorState(identity_header=secrets.token_urlsafe(32), tenant_id=str(uuid.uuid4()))
        self._lock = threading.RLock()
        self._listeners: dict[str, Listener] = {}
        self._tls: TlsFiles | None = None
        self._admin: AdminClient | None = None

    # ----- lifecycle --------------------------------------------------------

    def start(self) -> Emulator:
        try:
            self._start()
        except BaseException:
            self.stop()  # a port in use must not leave half an emulator running
            raise
        return self

    def _start(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._tls = create_tls_files(self.state_dir)
        identity = Listener(IdentityService(self.state, self.faults), self.host, self._ports["identity"])
        with self._lock:
            self._listeners["identity"] = identity.start()
        arm_service = ArmService(self.state, self.faults, ControlApi(self))
        arm = Listener(arm_service, self.host, self._ports["arm"], self._tls.server_context())
        arm_service.base_url = arm.base_url  # Location headers need it before the first request
        with self._lock:
            self._listeners["arm"] = arm.start()
        self.create_vault(self.default_vault, port=self._ports["vault"])
        logs = Listener(LogsService(self.state, self.faults), self.host, 0, self._tls.server_context())
        with self._lock:
            self._listeners["logs"] = logs.start()
        self._admin = AdminClient(self.arm_url, self.ca_file)

    def stop(self) -> None:
        with self._lock:
            listeners, self._listeners = list(self._listeners.values()), {}
        stop_all(listeners)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- where clients connect ---------------------------------------------

    def _listener(self, key: str) -> Listener:
        with self._lock:
            listener = self._listeners.get(key)
        if listener is None:
            raise RuntimeError(f"The emulator is not running ({key} has no listener).")
        return listener

    @property
    def arm_url(self) -> str:
        """Resource Manager endpoint, ``https://127.0.0.1:<port>`` (no trailing slash)."""
        return self._listener("arm").base_url

    @property
    def vault_url(self) -> str:
        """The default vault's URI, ``https://127.0.0.1:<port>/`` (trailing slash, like ``vaultUri``)."""
        return self._listener(f"vault:{self.default_vault.lower()}").base_url + "/"

    @property
    def logs_url(self) -> str:
        """The Logs query API, ``https://127.0.0.1:<port>`` (what LOGS_ENDPOINT points the app at)."""
        return self._listener("logs").base_url

    @property
    def workspace_id(self) -> str:
        """The Log Analytics workspace every account's diagnostic setting sends its data-plane requests to."""
        return self.state.workspace_id

    @property
    def identity_endpoint(self) -> str:
        return self._listener("identity").base_url + TOKEN_PATH

    @property
    def identity_header(self) -> str:
        return self.state.identity_header

    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def ca_file(self) -> str:
        if self._tls is None:
            raise RuntimeError("The emulator is not running.")
        return str(self._tls.ca_file)

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("The emulator is not running.")
        return self._admin

    def env(self) -> dict[str, str]:
        """Environment variables that point the Azure SDKs (and the app) at the emulator."""
        return {
            "IDENTITY_ENDPOINT": self.identity_endpoint,
            "IDENTITY_HEADER": self.identity_header,
            "REQUESTS_CA_BUNDLE": self.ca_file,
            "ARM_ENDPOINT": self.arm_url,
            "LOGS_ENDPOINT": self.logs_url,
        }

    def info(self) -> dict[str, Any]:
        """The content of ``emulator.json``."""
        return {
            "armUrl": self.arm_url,
            "vaultUrl": self.vault_url,
            "logsUrl": self.logs_url,
            "workspaceId": self.workspace_id,
            "identityEndpoint": self.identity_endpoint,
            "identityHeader": self.identity_header,
            "caFile": self.ca_file,
            "tenantId": self.tenant_id,
            "pid": os.getpid(),
        }

    def write_info(self, path: str | os.PathLike[str] | None = None) -> Path:
        """Write ``emulator.json`` atomically (readers never see half a file), owner-only."""
        target = Path(path) if path else self.state_dir / INFO_FILE
        tmp = target.with_name(target.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.info(), handle, indent=2)
        os.replace(tmp, target)
        return target

    # ----- accounts -----------------------------------------------------------

    def create_account(self, subscription_id: str, resource_group: str, name: str,
                       locations: list[str] | None = None, keys_generated_at: str | None = None,
                       tags: dict[str, str] | None = None) -> dict[str, Any]:
        """Create an account with four random keys and start its data-plane endpoint."""
        _check_account_names(subscription_id, resource_group, name)
        checked_tags = check_tags({} if tags is None else tags)
        generated = _generation_time(keys_generated_at)
        ref = account_ref(subscription_id, resource_group, name)
        with self._lock:
            if self.state.account(ref) is not None:
                raise StateError("conflict", f"Database account '{name}' already exists.")
            listener = Listener(DataPlaneService(self.state, self.faults, ref), self.data_plane_host, 0,
                                self._server_context())
            account = Account(subscription_id, resource_group, name, list(locations or DEFAULT_LOCATIONS),
                              listener.base_url + "/", {k: new_account_key() for k in KEY_KINDS},
                              {k: generated for k in KEY_KINDS}, tags=checked_tags,
                              diagnostics_workspace=self.state.workspace_id)
            try:
                self.state.add_account(account)
            except StateError:
                listener.stop()
                raise
            self._listeners[f"dataplane:{'/'.join(ref)}"] = listener.start()
        with self.state.lock:
            # documentEndpoint also at the top, for convenience: the rest is what Resource Manager returns.
            return {**account_json(account), "documentEndpoint": account.document_endpoint}

    def accounts(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return [account_json(a) for a in self.state.accounts.values()]

    def set_account_tags(self, name: str, tags: dict[str, str], subscription_id: str | None = None,
                         resource_group: str | None = None) -> dict[str, Any]:
        """Replace an account's tags (as a PATCH of ``tags`` through Resource Manager would); the subscription
        and resource group pick the account when several share its name."""
        checked = check_tags(tags)
        found = [a for a in self.state.find_accounts(name)
                 if (subscription_id is None or a.ref[0] == subscription_id.lower())
                 and (resource_group is None or a.ref[1] == resource_group.lower())]
        if not found:
            raise StateError("not_found", f"No database account named '{name}'.")
        if len(found) > 1:
            raise StateError("bad_request", f"{len(found)} accounts are named '{name}': give 'subscriptionId' and "
                                            "'resourceGroup'.")
        self.state.set_tags(found[0], checked)
        with self.state.lock:
            return {**account_json(found[0]), "documentEndpoint": found[0].document_endpoint}

    def set_diagnostics(self, name: str, workspace_id: str | None) -> dict[str, Any]:
        """Point an account's diagnostic setting (DataPlaneRequests) at a workspace, or remove it (None)."""
        found = self.state.find_accounts(name)
        if len(found) != 1:
            raise StateError("not_found", f"expected one database account named '{name}', found {len(found)}.")
        if workspace_id is not None and workspace_id.lower() not in self.state.workspaces:
            raise StateError("not_found", f"No workspace '{workspace_id}' (the emulator has {self.workspace_id}).")
        with self.state.lock:
            found[0].diagnostics_workspace = workspace_id.lower() if workspace_id else None
        return {"account": name, "workspaceId": found[0].diagnostics_workspace}

    def account_keys(self, name: str) -> dict[str, str]:
        """The current keys by kind (``primary`` ...), for in-process tests."""
        found = self.state.find_accounts(name)
        if len(found) != 1:
            raise KeyError(f"expected one account named {name!r}, found {len(found)}")
        with self.state.lock:
            return dict(found[0].keys)

    # ----- vaults -------------------------------------------------------------

    def create_vault(self, name: str, port: int = 0) -> dict[str, str]:
        """Create an empty vault served on its own port."""
        with self._lock:
            if self.state.vault(name) is not None:
                raise StateError("conflict", f"Vault '{name}' already exists.")
            new_vault(name, "")  # validates the name before a port is taken
            listener = Listener(VaultService(self.state, self.faults, name), self.host, port, self._server_context())
            vault = new_vault(name, listener.base_url + "/")
            self.state.add_vault(vault)
            self._listeners[f"vault:{name.lower()}"] = listener.start()
            return vault.to_json()

    def vaults(self) -> list[dict[str, str]]:
        with self.state.lock:
            return [v.to_json() for v in self.state.vaults.values()]

    # ----- metrics ----------------------------------------------------------------

    def metrics(self, reset: bool = False) -> dict[str, Any]:
        """Requests answered per service, what each bucket refused, and the listeners' connections (see
        ``metrics.py``); ``reset`` zeroes the counts in the same step (the buckets keep their tokens)."""
        view = self.state.metrics.snapshot(reset=reset)
        view["throttling"] = self.state.throttle.to_json(reset_counts=reset)
        view["connections"] = self.connections()
        if reset:
            with self._lock:
                listeners = list(self._listeners.values())
            for listener in listeners:
                listener.reset_peak()
        return view

    def connections(self) -> dict[str, Any]:
        """Open connections (each holds one server thread) now and at most, per kind of listener."""
        with self._lock:
            listeners = dict(self._listeners)
        view: dict[str, Any] = {}
        for key, listener in listeners.items():
            entry = view.setdefault(key.split(":", 1)[0], {"listeners": 0, "open": 0, "peak": 0})
            open_now, peak = listener.connection_counts()
            entry["listeners"] += 1
            entry["open"] += open_now
            entry["peak"] += peak
        return view

    # ----- reset ----------------------------------------------------------------

    def reset(self) -> None:
        """Drop accounts, secrets, extra vaults and faults; back to the default config."""
        self.faults.clear()
        self.state.reset(keep_vault=self.default_vault)
        keep = {"identity", "arm", f"vault:{self.default_vault.lower()}"}
        with self._lock:
            dropped = [key for key in self._listeners if key not in keep]
            listeners = [self._listeners.pop(key) for key in dropped]
        stop_all(listeners)

    def _server_context(self) -> ssl.SSLContext:
        if self._tls is None:
            raise RuntimeError("The emulator is not running.")
        return self._tls.server_context()


def _check_account_names(subscription_id: str, resource_group: str, name: str) -> None:
    if not _ACCOUNT_NAME.match(name) or "--" in name:
        raise StateError("bad_request", "Cosmos DB account names are 3-44 lower-case letters, digits and hyphens.")
    for label, value in (("subscriptionId", subscription_id), ("resourceGroup", resource_group)):
        if not _PATH_SEGMENT.match(value):
            raise StateError("bad_request", f"'{label}' must be 1-90 letters, digits, '.', '_', '-', '(' or ')'.")


def check_tags(tags: Any) -> dict[str, str]:
    """Resource tags as Resource Manager accepts them (limits above)."""
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise StateError("bad_request", "'tags' must be an object of string values.")
    if len(tags) > _MAX_TAGS:
        raise StateError("bad_request", f"A resource can have at most {_MAX_TAGS} tags.")
    for name, value in tags.items():
        if not name or len(name) > _MAX_TAG_NAME or _TAG_NAME_FORBIDDEN & set(name):
            raise StateError("bad_request", f"Invalid tag name '{name[:40]}': 1-{_MAX_TAG_NAME} characters, none "
                                            "of < > % & \\ ? /.")
        if len(value) > _MAX_TAG_VALUE:
            raise StateError("bad_request", f"The value of tag '{name[:40]}' is longer than {_MAX_TAG_VALUE} "
                                            "characters.")
    return dict(tags)


def _generation_time(keys_generated_at: str | None) -> datetime.datetime:
    if keys_generated_at is None:
        return utc_now()
    try:
        return parse_iso(keys_generated_at)
    except ValueError:
        raise StateError("bad_request", "'keysGeneratedAt' must be an ISO 8601 time.") from None
