"""How an application reads the Cosmos DB connection string this product publishes, and keeps working
through every rotation. Copy it; it depends only on azure-identity, azure-keyvault-secrets and azure-cosmos.

    consumer = RotatingCosmosClient(vault_uri, "cosmos-docdb-prod-connection-string", DefaultAzureCredential())
    databases = consumer.call(lambda client: list(client.list_databases()))

Three rules make a rotation a non-event:
1. Read the connection string from Key Vault (the versionless secret: its latest version), never from a
   copy in your own configuration.
2. Read it again on a schedule, at least once a rotation period (`refresh_seconds`, hourly by default):
   under the `alternate` strategy the key you hold stays valid until the *next* rotation, which is when
   the product regenerates it; re-reading in between moves you to the new key before then. (The in-use guard
   refuses to regenerate a key that something still used in the last 24 hours.)
3. On a 401, read it again at once and retry, but at most once every `min_reread_seconds` whatever the
   request rate, so that a burst of failures costs Key Vault one read, not thousands.

A changed secret builds a new CosmosClient (one client per process, reused by every request, as the Cosmos
SDK recommends); the one before is closed at the next change, so a request still running on it finishes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _parse(connection_string: str) -> tuple[str, str]:
    parts = dict(part.split("=", 1) for part in connection_string.strip().strip(";").split(";") if "=" in part)
    return parts["AccountEndpoint"], parts["AccountKey"]


class RotatingCosmosClient:
    def __init__(self, vault_uri: str, secret_name: str, credential: Any, refresh_seconds: float = 3600.0,
                 min_reread_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic,
                 secret_client: Any = None, client_options: dict[str, Any] | None = None) -> None:
        from azure.keyvault.secrets import SecretClient

        self._secrets = secret_client or SecretClient(vault_uri, credential)
        self._name = secret_name
        self._refresh_seconds = refresh_seconds
        self._min_reread_seconds = min_reread_seconds
        self._clock = clock
        self._options = client_options or {}
        self._lock = threading.Lock()
        self._value: str | None = None
        self._client: Any = None
        self._retired: Any = None  # the client before the last change: requests may still be running on it
        self._read_at = float("-inf")
        self.rereads_on_401 = 0  # how often a 401 made it read the secret again (for dashboards and tests)

    def client(self) -> Any:
        """The current CosmosClient, after the periodic re-read when one is due."""
        with self._lock:
            if self._client is None or self._clock() - self._read_at >= self._refresh_seconds:
                self._reread()
            return self._client

    def call(self, operation: Callable[[Any], T]) -> T:
        """Run `operation(client)`; on a 401 read the secret again (rate-limited) and run it once more."""
        from azure.cosmos.exceptions import CosmosHttpResponseError

        client = self.client()
        try:
            return operation(client)
        except CosmosHttpResponseError as error:
            if error.status_code != 401:
                raise
            client = self._after_401(client)
            return operation(client)

    def _after_401(self, failed: Any) -> Any:
        with self._lock:
            # Another thread may already have moved to a new client; else re-read, at most so often.
            if self._client is failed and self._clock() - self._read_at >= self._min_reread_seconds:
                self.rereads_on_401 += 1
                self._reread()
            return self._client

    def _reread(self) -> None:
        """Read the latest secret version; build a new client only when the connection string changed."""
        value = self._secrets.get_secret(self._name).value
        self._read_at = self._clock()
        if value == self._value and self._client is not None:
            return
        from azure.cosmos import CosmosClient

        endpoint, key = _parse(value)
        if self._retired is not None:  # a whole change ago: nothing uses it any more
            self._retired.close()
        self._retired, self._client = self._client, CosmosClient(endpoint, credential=key, **self._options)
        self._value = value

    def close(self) -> None:
        with self._lock:
            for client in (self._client, self._retired):
                if client is not None:
                    client.close()
            self._client = self._retired = None
