"""Key Vault secrets, driven by the real azure-keyvault-secrets client."""

from __future__ import annotations

import datetime
import json
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

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


# ----- soft-delete ---------------------------------------------------------------------------------------------

CONFLICT = ("Secret {} is currently in a deleted but recoverable state, and its name cannot be reused; in this "
            "state, the secret can only be recovered or purged.")


def _delete(secrets_client: Any, name: str) -> Any:
    poller = secrets_client.begin_delete_secret(name)
    poller.wait(timeout=10)  # polls GET /deletedsecrets/{name} until it answers 200
    assert poller.done()
    return poller.result()


def test_delete_is_soft(emu: Emulator, secrets_client: Any) -> None:
    first = secrets_client.set_secret("soft", "one", tags={"keyKind": "primary"})
    second = secrets_client.set_secret("soft", "two", content_type="text/plain")
    before = int(time.time())

    deleted = _delete(secrets_client, "soft")

    assert deleted.recovery_id == f"{emu.vault_url}deletedsecrets/soft"
    assert deleted.id == second.id  # the latest version's id
    assert deleted.properties.content_type == "text/plain"
    assert before - 1 <= deleted.deleted_date.timestamp() <= time.time() + 1
    assert deleted.scheduled_purge_date - deleted.deleted_date == datetime.timedelta(days=90)
    with pytest.raises(ResourceNotFoundError) as missing:
        secrets_client.get_secret("soft")
    assert missing.value.error.code == "SecretNotFound"
    with pytest.raises(ResourceNotFoundError):
        secrets_client.get_secret("soft", first.properties.version)
    assert "soft" not in [p.name for p in secrets_client.list_properties_of_secrets()]
    got = secrets_client.get_deleted_secret("soft")
    assert (got.recovery_id, got.id, got.deleted_date) == (deleted.recovery_id, second.id, deleted.deleted_date)
    assert [d.name for d in secrets_client.list_deleted_secrets()] == ["soft"]


def test_deleted_secrets_never_carry_a_value(emu: Emulator, secrets_client: Any, credential: Any) -> None:
    secrets_client.set_secret("valueless", "do-not-show")
    _delete(secrets_client, "valueless")
    auth = {"Authorization": f"Bearer {credential.get_token('https://vault.azure.net/.default').token}"}
    api = {"api-version": "2026-04-01"}

    one = requests.get(f"{emu.vault_url}deletedsecrets/valueless", params=api, headers=auth, verify=emu.ca_file,
                       timeout=10).json()
    listed = requests.get(f"{emu.vault_url}deletedsecrets", params=api, headers=auth, verify=emu.ca_file,
                          timeout=10).json()

    assert "value" not in one and one["recoveryId"].endswith("/deletedsecrets/valueless")
    assert isinstance(one["deletedDate"], int) and isinstance(one["scheduledPurgeDate"], int)
    assert one["attributes"]["recoveryLevel"] == "Recoverable"
    [item] = listed["value"]
    assert "value" not in item and item["id"] == f"{emu.vault_url}secrets/valueless"
    state = emu.admin.state()["vaults"][0]
    assert state["secrets"] == []
    [shown] = state["deletedSecrets"]
    assert (shown["name"], shown["deletedDate"]) == ("valueless", one["deletedDate"])
    assert "do-not-show" not in json.dumps(state)


def test_name_of_a_deleted_secret_cannot_be_reused(emu: Emulator, secrets_client: Any) -> None:
    secrets_client.set_secret("Taken", "v")
    _delete(secrets_client, "Taken")

    with pytest.raises(ResourceExistsError) as caught:
        secrets_client.set_secret("Taken", "again")

    error = caught.value
    assert error.status_code == 409
    assert error.error.code == "Conflict"
    assert error.error.message == CONFLICT.format("Taken")
    assert error.error.innererror["code"] == "ObjectIsDeletedButRecoverable"


def test_recover_brings_back_every_version(emu: Emulator, secrets_client: Any) -> None:
    versions = [secrets_client.set_secret("back", f"v{n}").properties.version for n in range(3)]
    _delete(secrets_client, "back")

    poller = secrets_client.begin_recover_deleted_secret("back")
    poller.wait(timeout=10)  # polls GET /secrets/{name} until it answers

    recovered = poller.result()
    assert recovered.version == versions[-1]
    assert secrets_client.get_secret("back").value == "v2"
    assert secrets_client.get_secret("back", versions[0]).value == "v0"
    assert sorted(p.version for p in secrets_client.list_properties_of_secret_versions("back")) == sorted(versions)
    with pytest.raises(ResourceNotFoundError) as gone:
        secrets_client.get_deleted_secret("back")
    assert gone.value.error.message == "Deleted Secret not found: back"
    secrets_client.set_secret("back", "v3")  # the name is usable again


def test_purge_frees_the_name(emu: Emulator, secrets_client: Any) -> None:
    secrets_client.set_secret("purged", "old")
    _delete(secrets_client, "purged")

    secrets_client.purge_deleted_secret("purged")

    with pytest.raises(ResourceNotFoundError):
        secrets_client.get_deleted_secret("purged")
    secrets_client.set_secret("purged", "new")
    assert [p.enabled for p in secrets_client.list_properties_of_secret_versions("purged")] == [True]
    assert secrets_client.get_secret("purged").value == "new"


def test_recover_or_purge_of_nothing_is_404(emu: Emulator, secrets_client: Any) -> None:
    with pytest.raises(ResourceNotFoundError):
        secrets_client.begin_recover_deleted_secret("never-deleted")
    with pytest.raises(ResourceNotFoundError):
        secrets_client.purge_deleted_secret("never-deleted")
    with pytest.raises(ResourceNotFoundError):
        secrets_client.begin_delete_secret("never-set")


def test_deleted_secrets_are_paged(emu: Emulator, secrets_client: Any) -> None:
    for n in range(5):
        secrets_client.set_secret(f"gone-{n}", "v")
        _delete(secrets_client, f"gone-{n}")

    pages = [list(page) for page in secrets_client.list_deleted_secrets(max_page_size=2).by_page()]

    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(d.name for page in pages for d in page) == [f"gone-{n}" for n in range(5)]


def test_disabled_secret_answers_403_secret_disabled(emu: Emulator, secrets_client: Any) -> None:
    version = secrets_client.set_secret("off", "v").properties.version
    secrets_client.update_secret_properties("off", version, enabled=False)

    for args in (("off",), ("off", version)):
        with pytest.raises(HttpResponseError) as caught:
            secrets_client.get_secret(*args)
        error = caught.value
        assert error.status_code == 403
        assert (error.error.code, error.error.message) == ("Forbidden",
                                                           "Operation get is not allowed on a disabled secret.")
        assert error.error.innererror == {"code": "SecretDisabled"}


def test_faults_on_soft_delete_routes(emu: Emulator, secrets_client: Any) -> None:
    secrets_client.set_secret("guarded", "v")
    _delete(secrets_client, "guarded")
    emu.admin.add_fault(service="vault", operation="purgeDeletedSecret", status=403, error_code="Forbidden",
                        error_message="Operation purge is not allowed.")
    emu.admin.add_fault(service="vault", operation="recoverDeletedSecret", status=409)

    with pytest.raises(HttpResponseError) as purge:
        secrets_client.purge_deleted_secret("guarded")
    with pytest.raises(ResourceExistsError):
        secrets_client.begin_recover_deleted_secret("guarded")

    assert (purge.value.status_code, purge.value.error.code) == (403, "Forbidden")
    assert secrets_client.get_deleted_secret("guarded").name == "guarded"
    assert [f["matched"] for f in emu.admin.faults()] == [1, 1]
