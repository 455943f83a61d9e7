"""Client of the emulator's admin API (``/_emulator/*``), for tests and scripts.

Uses only the standard library and trusts the emulator's own CA file::

    admin = AdminClient.from_state_dir("/tmp/emu")   # reads emulator.json
    admin.create_account("sub", "rg", "docdb-test")
    admin.add_fault(service="arm", operation="listKeys", status=429, retry_after=1)
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .throttling import ARM_READ_BUCKET, ARM_WRITE_BUCKET, VAULT_READ_BUCKET, VAULT_WRITE_BUCKET


class AdminError(RuntimeError):
    """The admin API answered with an error status."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("error", {}).get("message") if isinstance(body, dict) else None
        super().__init__(f"admin API answered {status}: {message or body}")
        self.status = status
        self.body = body


def _camel(name: str) -> str:
    """``retry_after`` -> ``retryAfter``, so Python callers can use keyword arguments."""
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _camel_dict(fields: dict[str, Any]) -> dict[str, Any]:
    return {_camel(k): v for k, v in fields.items()}


class AdminClient:
    """Thin JSON client; every method returns the decoded answer."""

    def __init__(self, arm_url: str, ca_file: str | os.PathLike[str], timeout: float = 30.0) -> None:
        self.arm_url = arm_url.rstrip("/")
        self._context = ssl.create_default_context(cafile=str(ca_file))
        self._timeout = timeout

    @classmethod
    def from_state_dir(cls, state_dir: str | os.PathLike[str], wait_seconds: float = 0.0) -> AdminClient:
        """Build from ``<state_dir>/emulator.json``, waiting for it to appear if asked."""
        info = read_info(state_dir, wait_seconds)
        return cls(info["armUrl"], info["caFile"])

    def _call(self, method: str, resource: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode("utf-8")
        request = urllib.request.Request(f"{self.arm_url}/_emulator/{resource}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self._timeout, context=self._context) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
            raise AdminError(exc.code, body) from None

    def health(self) -> dict[str, Any]:
        return self._call("GET", "health")

    def create_account(self, subscription_id: str, resource_group: str, name: str,
                       locations: list[str] | None = None, keys_generated_at: str | None = None,
                       tags: dict[str, str] | None = None) -> dict[str, Any]:
        payload: dict[str, Any] = {"subscriptionId": subscription_id, "resourceGroup": resource_group, "name": name}
        if locations is not None:
            payload["locations"] = locations
        if keys_generated_at is not None:
            payload["keysGeneratedAt"] = keys_generated_at
        if tags is not None:
            payload["tags"] = tags
        return self._call("POST", "accounts", payload)

    def accounts(self) -> list[dict[str, Any]]:
        return self._call("GET", "accounts")["accounts"]

    def set_account_tags(self, name: str, tags: dict[str, str], subscription_id: str | None = None,
                         resource_group: str | None = None) -> dict[str, Any]:
        """Replace the account's tags; give the subscription and resource group when several share its name."""
        payload: dict[str, Any] = {"tags": tags}
        if subscription_id is not None:
            payload["subscriptionId"] = subscription_id
        if resource_group is not None:
            payload["resourceGroup"] = resource_group
        return self._call("PATCH", f"accounts/{urllib.parse.quote(name, safe='')}", payload)

    def set_diagnostics(self, account: str, workspace_id: str | None) -> dict[str, Any]:
        """Send the account's data-plane requests to the workspace's logs, or (None) nowhere."""
        return self._call("POST", "diagnostics", {"account": account, "workspaceId": workspace_id})

    def create_vault(self, name: str) -> dict[str, str]:
        return self._call("POST", "vaults", {"name": name})

    def vaults(self) -> list[dict[str, str]]:
        return self._call("GET", "vaults")["vaults"]

    def add_fault(self, rule: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Add one rule; give it as a dict (wire names) or keywords (``retry_after=1``)."""
        return self._call("POST", "faults", {**(rule or {}), **_camel_dict(fields)})["faults"][0]

    def faults(self) -> list[dict[str, Any]]:
        return self._call("GET", "faults")["faults"]

    def clear_faults(self) -> None:
        self._call("DELETE", "faults")

    def configure(self, config: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        """Change config, e.g. ``configure(regeneration_seconds=1, propagation_failures=2)``."""
        return self._call("POST", "config", {**(config or {}), **_camel_dict(fields)})

    def config(self) -> dict[str, Any]:
        return self._call("GET", "config")

    def state(self) -> dict[str, Any]:
        return self._call("GET", "state")

    def issued(self) -> dict[str, list[str]]:
        return self._call("GET", "issued")

    def metrics(self) -> dict[str, Any]:
        """Requests answered per service (``arm``, ``vault``, ``dataplane``, ``identity``: totals, ``reads``,
        ``writes``, ``operations``, ``statuses``), ``throttling`` (what each bucket refused) and ``connections``."""
        return self._call("GET", "metrics")

    def reset_metrics(self) -> dict[str, Any]:
        """The metrics so far, zeroed in the same step: the next call counts from here."""
        return self._call("POST", "metrics/reset")

    def set_throttling(self, enabled: bool) -> dict[str, Any]:
        """Every bucket off (``False``) or back to Azure's numbers (``True``); finer control with ``configure``
        (``arm_write_bucket=[200, 10]``, ``vault_read_bucket=None`` ...)."""
        buckets = {"armWriteBucket": ARM_WRITE_BUCKET, "armReadBucket": ARM_READ_BUCKET,
                   "vaultWriteBucket": VAULT_WRITE_BUCKET, "vaultReadBucket": VAULT_READ_BUCKET}
        return self.configure({name: list(value) if enabled else None for name, value in buckets.items()})

    def reset(self) -> None:
        self._call("POST", "reset")


def read_info(state_dir: str | os.PathLike[str], wait_seconds: float = 0.0) -> dict[str, Any]:
    """Read ``emulator.json`` (written atomically by ``serve`` once it listens)."""
    path = Path(state_dir) / "emulator.json"
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)
