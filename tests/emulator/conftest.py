"""Fixtures for the emulator's own tests: one emulator per test (own ports, own CA), and an
environment in which the real Azure SDKs reach it and nothing else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_azure import Emulator

SUBSCRIPTION = "00000000-0000-4000-8000-00000000e1a1"
RESOURCE_GROUP = "rg-emulator-tests"
ACCOUNT = "docdb-test"

# Anything that would make DefaultAzureCredential pick another credential than managed identity.
_FOREIGN_PREFIXES = ("AZURE_", "MSI_", "IMDS_")
_FOREIGN_NAMES = ("IDENTITY_SERVER_THUMBPRINT",)


@pytest.fixture
def emu(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(tmp_path / "emulator") as emulator:
        # Quick polls keep the long-running-operation tests fast.
        emulator.state.configure({"regenerationSeconds": 0.2, "pollRetryAfterMs": 20})
        yield emulator


@pytest.fixture
def azure_env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point the SDKs at the emulator, as an App Service managed identity would see it."""
    for name in list(os.environ):
        if name.startswith(_FOREIGN_PREFIXES) or name in _FOREIGN_NAMES:
            monkeypatch.delenv(name)
    env = emu.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # azure-cosmos retries a failed account read 3 times, 500 ms apart, whatever the status (even 401):
    # tests that expect a 401 would each wait 1.5 s. One test turns it back on on purpose.
    monkeypatch.setenv("AZURE_COSMOS_HEALTH_CHECK_MAX_RETRIES", "0")
    return env


@pytest.fixture(autouse=True)
def _fresh_challenge_cache() -> Iterator[None]:
    """Key Vault's challenge is cached process-wide per host; ports get reused across tests."""
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()
    yield
    http_challenge_cache.clear()


@pytest.fixture
def account(emu: Emulator) -> dict[str, Any]:
    return emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)


@pytest.fixture
def credential(azure_env: dict[str, str]) -> Any:
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


@pytest.fixture
def mgmt(emu: Emulator, credential: Any) -> Any:
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    return CosmosDBManagementClient(credential, SUBSCRIPTION, base_url=emu.arm_url,
                                    credential_scopes=[f"{emu.arm_url}/.default"])


@pytest.fixture
def secrets_client(emu: Emulator, credential: Any) -> Any:
    from azure.keyvault.secrets import SecretClient

    # A loopback vault host never ends with ".vault.azure.net": the resource check must be off.
    return SecretClient(emu.vault_url, credential, verify_challenge_resource=False)


@pytest.fixture
def arm_token(emu: Emulator, credential: Any) -> str:
    """A Resource Manager bearer token, for raw requests."""
    return credential.get_token(f"{emu.arm_url}/.default").token
