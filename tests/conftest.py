"""Services for the end-to-end tests: Azurite (storage) and the local Azure emulator, one of each per
test session on free ports, stopped when the session ends. Each test gets its own Cosmos DB account,
so tests never see each other's keys, secrets or leases."""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from local_azure import Emulator  # noqa: E402
from local_azure.azurite import Azurite  # noqa: E402

# The function app reads HTTP_AUTH once, at import, as the host does at start: import it here, before any test
# sets HTTP_AUTH, so every test sees the default (function keys); test_entra.py checks entra in a process of its own.
os.environ.pop("HTTP_AUTH", None)
import function_app  # noqa: E402

SUBSCRIPTION = "6f1c2d3e-4b5a-4c6d-8e7f-90a1b2c3d4e5"
RESOURCE_GROUP = "rg-rotation-tests"

# Variables that would send DefaultAzureCredential elsewhere than the emulator's identity endpoint.
_CREDENTIAL_VARIABLES = (
    "AZURE_CLIENT_SECRET", "AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_USERNAME",
    "AZURE_TENANT_ID", "AZURE_CLIENT_ID", "MSI_ENDPOINT", "MSI_SECRET", "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT", "ROTATION_TARGETS",
)


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    service = Azurite(ROOT).start()
    yield service
    service.stop()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    service = Emulator(tmp_path_factory.mktemp("emulator"))
    service.start()
    yield service
    service.stop()


@dataclass
class World:
    """One test's Azure: an account in the emulator, its settings, and ways to look at the result."""

    emulator: Emulator
    azurite: Azurite
    account: str
    env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def admin(self) -> Any:
        return self.emulator.admin

    @property
    def secret_name(self) -> str:
        return f"cosmos-{self.account}-connection-string"

    def set(self, **settings: str) -> None:
        """Change app settings for the rest of the test (the runtime reads them again)."""
        from cosmos_key_rotation.runtime import reset_runtime

        for name, value in settings.items():
            self.env[name] = value
            self.monkeypatch.setenv(name, value)
        reset_runtime()

    def secret_client(self) -> Any:
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.secrets import SecretClient

        return SecretClient(self.env["KEY_VAULT_URI"], DefaultAzureCredential(), verify_challenge_resource=False)

    def live_secret(self, name: str | None = None) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.secret_client().get_secret(name or self.secret_name)
        except ResourceNotFoundError:
            return None

    def versions(self, name: str | None = None) -> list[Any]:
        return list(self.secret_client().list_properties_of_secret_versions(name or self.secret_name))

    def account_state(self) -> dict[str, Any]:
        return next(a for a in self.admin.state()["accounts"] if a["name"] == self.account)

    def regenerations(self) -> dict[str, int]:
        return self.account_state()["regenerationCounts"]

    def key_works(self, connection_string: str) -> bool:
        """Whether a connection string still authenticates against the account's data plane (real SDK)."""
        from azure.cosmos import CosmosClient
        from azure.cosmos.exceptions import CosmosHttpResponseError

        endpoint, key = _parse(connection_string)
        try:
            with CosmosClient(endpoint, credential=key, retry_total=0) as client:
                list(client.list_databases())
            return True
        except CosmosHttpResponseError as exc:
            if exc.status_code == 401:
                return False
            raise

    def host(self, visibility_timeout: float = 0.2) -> Any:
        from local_azure.functions_host import FunctionsHost

        return FunctionsHost(function_app.app, self.azurite.connection_string, ROOT / "host.json",
                             visibility_timeout=visibility_timeout)

    def records(self) -> Any:
        from cosmos_key_rotation.runtime import get_runtime

        return get_runtime().records

    def adopt(self, kind: str) -> Any:
        """Publish `kind` as the key applications use (the operator's `adopt`), through the product."""
        from cosmos_key_rotation.onboarding import adopt
        from cosmos_key_rotation.rotation import RotationRequest
        from cosmos_key_rotation.runtime import get_runtime

        result = adopt(get_runtime().rotator(), RotationRequest.new(self.account, "cli"), kind)
        assert result.outcome == "succeeded", result
        return result

    def regeneration_requests(self) -> dict[str, int]:
        """regenerateKey requests the account accepted, per key kind (acted on, whatever the client saw)."""
        return self.account_state()["regenerationRequests"]

    def assert_invariants(self, held: str | None, regenerated: dict[str, int]) -> None:
        """What every fault test holds after the fault and the retry that follows it: the latest secret
        version authenticates; the key live before it (`held`) still works (alternate never invalidates it);
        each key kind was regenerated exactly as often as rotations asked (never twice for one rotation)."""
        secret = self.live_secret()
        assert secret is not None and self.key_works(secret.value), "the published key does not authenticate"
        if held is not None:
            assert self.key_works(held), "the key applications held before was invalidated"
        assert {k: v for k, v in self.regeneration_requests().items() if v} == regenerated


def _parse(connection_string: str) -> tuple[str, str]:
    parts = dict(part.split("=", 1) for part in connection_string.strip(";").split(";"))
    return parts["AccountEndpoint"], parts["AccountKey"]


@pytest.fixture
def world(empty_world: World) -> World:
    """An adopted target, as after the README's onboarding: the primary key, which applications use, is
    published; rotations then alternate from the secondary."""
    empty_world.adopt("primary")
    return empty_world


@pytest.fixture
def empty_world(emulator: Emulator, azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    """A new account and an empty vault: nothing adopted yet."""
    from azure.keyvault.secrets._shared import http_challenge_cache

    from cosmos_key_rotation.runtime import reset_runtime

    account = f"docdb-{secrets.token_hex(4)}"
    emulator.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, name=account)
    emulator.admin.clear_faults()
    azurite.faults.clear()
    emulator.admin.configure(regenerationSeconds=0.1, propagationFailures=0)
    for name in _CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    env = {
        "IDENTITY_ENDPOINT": emulator.identity_endpoint,
        "IDENTITY_HEADER": emulator.identity_header,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_file),
        "ARM_ENDPOINT": emulator.arm_url,
        "AZURE_CLOUD": "AzureChinaCloud",
        "COSMOS_SUBSCRIPTION_ID": SUBSCRIPTION,
        "COSMOS_RESOURCE_GROUP": RESOURCE_GROUP,
        "COSMOS_ACCOUNT_NAME": account,
        "KEY_VAULT_URI": emulator.vault_url,
        "AzureWebJobsStorage": azurite.connection_string,
        "MIN_ROTATION_INTERVAL_MINUTES": "60",
        "VERIFY_TIMEOUT_SECONDS": "20",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    http_challenge_cache.clear()
    reset_runtime()
    yield World(emulator, azurite, account, env, monkeypatch)
    reset_runtime()
    emulator.admin.clear_faults()
    azurite.faults.clear()


@pytest.fixture
def subprocess_env(empty_world: World) -> dict[str, str]:
    """The environment for running the CLI as a separate process, as an operator would."""
    return {**os.environ, **empty_world.env, "PYTHONPATH": str(ROOT)}
