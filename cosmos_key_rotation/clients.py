"""Azure SDK clients, built once per process from the settings and reused (they are thread-safe).

The SDK packages are imported here, inside the methods, so that importing the function app (which the
host does at every cold start) does not pay for them until a function actually runs.
"""

from __future__ import annotations

import threading
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .budgets import Budgets, budget_policy
from .settings import Settings

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

_LOOPBACK = ("127.0.0.1", "::1", "localhost")
# Connections each host keeps open: a fleet rotation sends many requests to one Resource Manager, vault or
# storage host at once, and requests' default pool (10 per host) would open and drop the rest each time.
POOL_SIZE = 128
# A fleet rotation shares Azure's request budgets with everything else the identity does, so a 429 is
# answered by waiting its Retry-After again and again rather than by failing after azure-core's default 3
# tries (a POST is still not retried blindly: regenerateKey is sent with retry_total=0).
PATIENT_RETRIES = {"retry_total": 10, "retry_backoff_max": 30}
_session_lock = threading.Lock()
_session: Any = None


def pooled_session() -> Any:
    """One HTTP session for the process's clients, with POOL_SIZE connections per host. Configured like
    azure-core's own (RequestsTransport._init_session): no retries or redirects below azure-core's policies,
    which decide what is retried (a POST is not, blindly)."""
    global _session
    import requests
    from urllib3.util.retry import Retry

    with _session_lock:
        if _session is None:
            session = requests.Session()
            no_retries = Retry(total=False, redirect=False, raise_on_status=False)
            adapter = requests.adapters.HTTPAdapter(pool_connections=POOL_SIZE, pool_maxsize=POOL_SIZE,
                                                    max_retries=no_retries)
            for scheme in ("http://", "https://"):
                session.mount(scheme, adapter)
            _session = session
        return _session


def pooled_transport() -> Any:
    """A transport over the shared session; a client closing it leaves the session open for the others."""
    from azure.core.pipeline.transport import RequestsTransport

    return RequestsTransport(session=pooled_session(), session_owner=False)


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host in _LOOPBACK or host.startswith("127.")


class Clients:
    """One credential and one client per service endpoint, created on first use."""

    def __init__(self, settings: Settings, budgets: Budgets | None = None) -> None:
        self.settings = settings
        self.budgets = budgets or Budgets(dict(settings.budgets))
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Any] = {}

    @cached_property
    def credential(self) -> TokenCredential:
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(
            authority=self.settings.cloud.authority_host,
            managed_identity_client_id=self.settings.client_id,
            exclude_interactive_browser_credential=True,
        )

    def _cached(self, kind: str, key: str, build: Any) -> Any:
        with self._lock:
            if (kind, key) not in self._cache:
                self._cache[(kind, key)] = build()
            return self._cache[(kind, key)]

    def cosmos_management(self, subscription_id: str) -> Any:
        """A CosmosDBManagementClient for the subscription, aimed at the cloud's Resource Manager."""

        def build() -> Any:
            from azure.mgmt.cosmosdb import CosmosDBManagementClient

            endpoint = self.settings.arm_endpoint
            return CosmosDBManagementClient(
                self.credential,
                subscription_id,
                base_url=endpoint,
                credential_scopes=[self.settings.cloud.arm_scope(endpoint)],
                transport=pooled_transport(),
                per_retry_policies=[budget_policy(self.budgets, subscription_id, "arm")],
                **PATIENT_RETRIES,
            )

        return self._cached("arm", subscription_id, build)

    def secrets(self, vault_uri: str) -> Any:
        def build() -> Any:
            from azure.keyvault.secrets import SecretClient

            # Key Vault checks that the vault host ends with the challenge's resource domain; a loopback
            # vault (the local emulator) cannot, so the check is relaxed for loopback hosts only.
            return SecretClient(vault_uri, self.credential, verify_challenge_resource=not is_loopback(vault_uri),
                                transport=pooled_transport(),
                                per_retry_policies=[budget_policy(self.budgets, vault_uri, "vault")],
                                **PATIENT_RETRIES)

        return self._cached("vault", vault_uri, build)

    def logs(self) -> Any:
        """A LogsQueryClient aimed at the cloud's Logs API (LOGS_ENDPOINT overrides the address, never the
        token's audience). A query is a POST that only reads, so azure-core's retries are safe for it."""

        def build() -> Any:
            from azure.monitor.query import LogsQueryClient

            # The Logs API throttles per identity (429 with Retry-After): the budget policy waits those out.
            return LogsQueryClient(self.credential, endpoint=self.settings.logs_endpoint,
                                   audience=self.settings.cloud.logs, transport=pooled_transport(),
                                   per_retry_policies=[budget_policy(self.budgets, "logs", "logs")])

        return self._cached("logs", self.settings.logs_endpoint, build)

    def _storage_kwargs(self, service: str) -> tuple[str | None, dict[str, Any]]:
        storage = self.settings.require_storage()
        if storage.connection_string:
            return storage.connection_string, {}
        return None, {
            "account_url": storage.service_uri(service, self.settings.cloud.storage_suffix),
            "credential": self._storage_credential(),
        }

    def _storage_credential(self) -> TokenCredential:
        storage = self.settings.require_storage()
        if storage.client_id and storage.client_id != self.settings.client_id:
            from azure.identity import ManagedIdentityCredential

            return self._cached("storage-credential", storage.client_id,
                                lambda: ManagedIdentityCredential(client_id=storage.client_id))
        return self.credential

    def blob_service(self) -> Any:
        def build() -> Any:
            from azure.storage.blob import BlobServiceClient

            connection, kwargs = self._storage_kwargs("blob")
            if connection:
                return BlobServiceClient.from_connection_string(connection, transport=pooled_transport())
            return BlobServiceClient(**kwargs, transport=pooled_transport())

        return self._cached("storage", "blob", build)

    def table_service(self) -> Any:
        def build() -> Any:
            from azure.data.tables import TableServiceClient

            connection, kwargs = self._storage_kwargs("table")
            if connection:
                return TableServiceClient.from_connection_string(connection, transport=pooled_transport())
            return TableServiceClient(endpoint=kwargs["account_url"], credential=kwargs["credential"],
                                      transport=pooled_transport())

        return self._cached("storage", "table", build)

    def queue(self, name: str) -> Any:
        def build() -> Any:
            from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

            # The Functions host reads and writes queue messages as base64 text by default.
            codecs = {
                "message_encode_policy": TextBase64EncodePolicy(),
                "message_decode_policy": TextBase64DecodePolicy(),
                "transport": pooled_transport(),
            }
            connection, kwargs = self._storage_kwargs("queue")
            if connection:
                return QueueClient.from_connection_string(connection, name, **codecs)
            return QueueClient(kwargs["account_url"], name, credential=kwargs["credential"], **codecs)

        return self._cached("queue", name, build)
