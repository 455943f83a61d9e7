"""Who used which key of an account recently: Cosmos DB's diagnostic logs, read from Log Analytics.

Cosmos DB logs every data-plane request, with the key that authorized it, in table CDBDataPlaneRequests
(diagnostic setting category DataPlaneRequests, resource-specific mode): column KeyType in direct mode,
AuthTokenType in gateway mode (Azure Monitor Logs reference, "CDBDataPlaneRequests"). key_usage.kql asks
for the clients of each key in the window; `KEY_TYPES` turns the logged values into the product's key
kinds. The product's own verification requests carry VERIFIER_USER_AGENT and are not a use.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from .error_table import from_sdk
from .errors import RotationError
from .settings import Target
from .verification import VERIFIER_USER_AGENT

QUERY = (Path(__file__).with_name("key_usage.kql")).read_text(encoding="utf-8")

# The values of KeyType / AuthTokenType, lower-cased (compared without case), and the key kind each names;
# None: not an account key (Entra ID, resource and SAS tokens, Azure's own system keys). The documentation
# of the table does not list them: these are the names of the Cosmos DB SDK's AuthorizationTokenType enum
# (Azure/azure-cosmos-dotnet-v3, Microsoft.Azure.Cosmos/src/direct/AuthorizationTokenType.cs), which the
# service logs as text; the docs' sample log record shows "PrimaryReadOnlyMasterKey" (hence no case).
# A value not listed here, or an empty one, counts as a use of every key: the guard fails safe.
KEY_TYPES: dict[str, str | None] = {
    "primarymasterkey": "primary",
    "secondarymasterkey": "secondary",
    "primaryreadonlymasterkey": "primaryReadonly",
    "secondaryreadonlymasterkey": "secondaryReadonly",
    "aadtoken": None,
    "resourcetoken": None,
    "sastoken": None,
    "compoundtoken": None,
    "systemreadonly": None,
    "systemreadwrite": None,
    "systemall": None,
    "computegatewaykey": None,
}
TOP_CLIENTS = 10


def kinds_of(key_type: str) -> frozenset[str]:
    """The key kinds a logged value may name: one, none, or (unknown) all four."""
    lowered = key_type.strip().lower()
    if lowered in KEY_TYPES:
        kind = KEY_TYPES[lowered]
        return frozenset() if kind is None else frozenset({kind})
    return frozenset({"primary", "secondary", "primaryReadonly", "secondaryReadonly"})


@dataclass(frozen=True)
class Client:
    """One client of a key: where it came from and what it said it was; never a key."""

    key_type: str  # as logged
    ip: str
    user_agent: str
    requests: int
    last_seen: str

    def describe(self) -> str:
        known = "" if self.key_type.strip().lower() in KEY_TYPES else f" [logged key type {self.key_type!r}]"
        return f"{self.ip or 'unknown IP'} ({self.user_agent or 'no user agent'}) {self.requests:,} requests, " \
               f"last {self.last_seen}{known}"

    def to_json(self) -> dict[str, Any]:
        return {"keyType": self.key_type, "clientIp": self.ip, "userAgent": self.user_agent,
                "requests": self.requests, "lastSeen": self.last_seen}


@dataclass(frozen=True)
class KeyUsage:
    """What the workspace saw of an account in the window."""

    window_hours: float
    seen_requests: int  # every request logged, the product's own included: 0 means the guard cannot tell
    clients: tuple[Client, ...] = ()

    def clients_of(self, kind: str) -> list[Client]:
        return [c for c in self.clients if kind in kinds_of(c.key_type)]

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per key kind: how many clients used it and when last (what `status` shows)."""
        view: dict[str, dict[str, Any]] = {}
        for kind in ("primary", "secondary", "primaryReadonly", "secondaryReadonly"):
            clients = self.clients_of(kind)
            view[kind] = {"clients": len(clients), "lastUse": max((c.last_seen for c in clients), default=None)}
        return view


def query_text(account_id: str, window_hours: float) -> str:
    """key_usage.kql with its three lets. The account id comes from validated settings; still quoted."""
    return (f"let accountId = {json.dumps(account_id)};\n"
            f"let window = {window_hours * 3600:.3f}s;\n"
            f"let verifierAgent = {json.dumps(VERIFIER_USER_AGENT)};\n" + QUERY)


class KeyUsageReader:
    """Runs the query with a LogsQueryClient (azure-monitor-query) per process."""

    def __init__(self, logs_client: Callable[[], Any], window_hours: float) -> None:
        self._client = logs_client
        self.window_hours = window_hours

    def read(self, workspace_id: str, target: Target) -> KeyUsage:
        """Raises RotationError KeyUsageQueryFailed (transient) when the workspace cannot answer in full."""
        from azure.monitor.query import LogsQueryStatus

        doing = f"query workspace {workspace_id} for the key usage of {target.account}"
        try:
            result = self._client().query_workspace(workspace_id, query_text(target.account_id, self.window_hours),
                                                    timespan=timedelta(hours=self.window_hours))
        except Exception as exc:
            error = from_sdk(exc, "logs", doing)
            raise RotationError("KeyUsageQueryFailed", f"{error.code}: {error.message}") from None
        if result.status != LogsQueryStatus.SUCCESS:  # a partial answer could hide a client
            detail = getattr(getattr(result, "partial_error", None), "message", "") or "a partial result"
            raise RotationError("KeyUsageQueryFailed", f"could not {doing}: {detail}")
        return parse(result.tables, self.window_hours)


def parse(tables: Any, window_hours: float) -> KeyUsage:
    """The query's rows (Key, ClientIpAddress, UserAgent, Requests, LastSeen) into a KeyUsage."""
    clients: list[Client] = []
    seen = 0
    for table in tables or ():
        names = [getattr(c, "name", c) for c in table.columns]
        for row in table.rows:
            values = dict(zip(names, row, strict=False))
            requests = int(values.get("Requests") or 0)
            last = values.get("LastSeen")
            last_text = last.isoformat() if hasattr(last, "isoformat") else str(last or "")
            if values.get("Key") == "*":
                seen += requests
            else:
                clients.append(Client(str(values.get("Key") or ""), str(values.get("ClientIpAddress") or ""),
                                      str(values.get("UserAgent") or ""), requests, last_text))
    return KeyUsage(window_hours, seen, tuple(clients))
