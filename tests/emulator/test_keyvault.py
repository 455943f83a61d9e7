"""Key Vault secrets, driven by the real azure-keyvault-secrets client."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from local_azure import Emulator


def test_first_request_gets_a_bearer_challenge(emu: Emulator) -> None:
    from azure.keyvault.secrets._shared.http_challenge import HttpChallenge

    url = f"{emu.vault_url}secrets"
    answer = requests.get(url, params={"api-version": "2026-04-01"}, verify=emu.ca_file, timeout=10)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "Unauthorized"
    challenge = HttpChallenge(url, answer.headers["WWW-Authenticate"])
    assert challenge.is_bearer_challenge()
    assert challenge.tenant_id == emu.tenant_id
    assert challenge.get_resource() == "https://vault.azure.net"


def test_resource_check_refuses_loopback_by_default(emu: Emulator, credential: Any) -> None:
    from azure.keyvault.secrets import SecretClient

    with pytest.raises(ValueError, match="verify_challenge_resource"):
        SecretClient(emu.vault_url, credential).get_secret("anything")


def test_set_and_get(emu: Emulator, secrets_client: Any) -> None:
    expires = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    first = secrets_client.set_secret("cosmos-conn", "first-value", tags={"keyKind": "primary"},
                                      content_type="application/x-connection-string", expires_on=expires)
    second = secrets_client.set_secret("cosmos-conn", "second-value", tags={"keyKind": "secondary"})

    latest = secrets_client.get_secret("cosmos-conn")
    old = secrets_client.get_secret("cosmos-conn", first.properties.version)

    assert len(first.properties.version) == 32 and first.properties.version != second.properties.version
    assert first.id == f"{emu.vault_url}secrets/cosmos-conn/{first.properties.version}"
    assert (latest.value, latest.properties.tags, latest.properties.version) == (
        "second-value", {"keyKind": "secondary"}, second.properties.version)
    assert old.value == "first-value"
    assert old.properties.content_type == "application/x-connection-string"
    assert old.properties.expires_on == expires
    assert old.properties.enabled is True
    assert old.properties.created_on is not None
    assert old.properties.recovery_level == "Recoverable"


def test_versions_are_paged(emu: Emulator, secrets_client: Any) -> None:
    for n in range(7):
        secrets_client.set_secret("paged", f"value-{n}")

    pages = [list(page) for page in secrets_client.list_properties_of_secret_versions("paged", max_page_size=3)
             .by_page()]
    versions = [item for page in pages for item in page]

    assert [len(page) for page in pages] == [3, 3, 1]
    assert len({v.version for v in versions}) == 7
    assert all(v.name == "paged" for v in versions)


def test_list_update_and_delete(emu: Emulator, secrets_client: Any) -> None:
    secrets_client.set_secret("alpha", "a")
    version = secrets_client.set_secret("beta", "b").properties.version

    names = sorted(p.name for p in secrets_client.list_properties_of_secrets())
    updated = secrets_client.update_secret_properties("beta", version, enabled=False, tags={"state": "off"})

    assert names == ["alpha", "beta"]
    assert (updated.enabled, updated.tags) == (False, {"state": "off"})
    with pytest.raises(HttpResponseError) as caught:
        secrets_client.get_secret("beta")
    assert caught.value.status_code == 403
    secrets_client.begin_delete_secret("alpha").result()
    with pytest.raises(ResourceNotFoundError):
        secrets_client.get_secret("alpha")


def test_not_found_and_bad_names(emu: Emulator, secrets_client: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as missing:
        secrets_client.get_secret("never-set")
    with pytest.raises(HttpResponseError) as bad:
        secrets_client.get_secret("bad_name")

    assert missing.value.error.code == "SecretNotFound"
    assert "never-set" in missing.value.message
    assert bad.value.status_code == 400
    assert bad.value.error.code == "BadParameter"


def test_each_vault_has_its_own_port(emu: Emulator, credential: Any) -> None:
    from azure.keyvault.secrets import SecretClient

    other = emu.admin.create_vault("kv-second")
    client = SecretClient(other["uri"], credential, verify_challenge_resource=False)

    client.set_secret("only-here", "x")

    assert other["uri"] != emu.vault_url
    assert {v["name"] for v in emu.admin.vaults()} == {"emulator-vault", "kv-second"}
    default = SecretClient(emu.vault_url, credential, verify_challenge_resource=False)
    with pytest.raises(ResourceNotFoundError):
        default.get_secret("only-here")


def test_throttled_write_is_retried(emu: Emulator, secrets_client: Any) -> None:
    emu.admin.add_fault(service="vault", operation="setSecret", status=429, retry_after=0.1)
    started = time.monotonic()

    secrets_client.set_secret("throttled", "v")

    assert time.monotonic() - started >= 0.1
    assert emu.admin.faults()[0]["matched"] == 1
    assert secrets_client.get_secret("throttled").value == "v"


def test_management_token_is_refused(emu: Emulator, arm_token: str) -> None:
    answer = requests.get(f"{emu.vault_url}secrets", params={"api-version": "2026-04-01"},
                          headers={"Authorization": f"Bearer {arm_token}"}, timeout=10)

    assert answer.status_code == 401
    assert "WWW-Authenticate" in answer.headers
