"""Resource Manager for Cosmos DB accounts, driven by the real azure-mgmt-cosmosdb client."""

from __future__ import annotations

import datetime
import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from local_azure import Emulator

from .conftest import ACCOUNT, RESOURCE_GROUP, SUBSCRIPTION

pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")

ACCOUNT_PATH = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.DocumentDB/databaseAccounts/{ACCOUNT}")
API = {"api-version": "2026-03-15"}


def _keys(mgmt: Any) -> Any:
    return mgmt.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)


def _key_works(endpoint: str, key: str) -> bool:
    from azure.cosmos import CosmosClient
    from azure.cosmos.exceptions import CosmosHttpResponseError

    try:
        list(CosmosClient(endpoint, credential=key).list_databases())
        return True
    except CosmosHttpResponseError as exc:
        assert exc.status_code == 401
        return False


def _counts(emu: Emulator, field: str = "regenerationCounts") -> dict[str, int]:
    return emu.admin.state()["accounts"][0][field]


def test_get_account_deserializes_into_the_sdk_model(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    got = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT)

    assert got.id == ACCOUNT_PATH
    assert got.kind == "GlobalDocumentDB"
    assert got.provisioning_state == "Succeeded"
    assert got.database_account_offer_type == "Standard"
    assert got.document_endpoint == account["properties"]["documentEndpoint"]
    assert got.document_endpoint.startswith("https://127.0.0.2:")
    policy = got.consistency_policy
    assert (policy.default_consistency_level, policy.max_interval_in_seconds, policy.max_staleness_prefix) == (
        "BoundedStaleness", 10, 200)
    assert [loc.location_name for loc in got.read_locations] == ["China East 2", "China North 2"]
    assert [loc.location_name for loc in got.write_locations] == ["China East 2"]
    metadata = got.keys_metadata
    for kind in ("primary_master_key", "secondary_master_key", "primary_readonly_master_key",
                 "secondary_readonly_master_key"):
        generated = getattr(metadata, kind).generation_time
        assert abs((datetime.datetime.now(datetime.timezone.utc) - generated).total_seconds()) < 60


def test_keys_generated_at_simulates_old_keys(emu: Emulator, mgmt: Any) -> None:
    emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT, locations=["eastus", "westus"],
                             keys_generated_at="2024-01-02T03:04:05Z")

    got = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT)

    assert got.keys_metadata.primary_readonly_master_key.generation_time == datetime.datetime(
        2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    assert got.location == "East US"


def test_keys_read_only_keys_and_connection_strings(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    keys = _keys(mgmt)
    by_get = mgmt.database_accounts.get_read_only_keys(RESOURCE_GROUP, ACCOUNT)
    by_post = mgmt.database_accounts.list_read_only_keys(RESOURCE_GROUP, ACCOUNT)
    strings = mgmt.database_accounts.list_connection_strings(RESOURCE_GROUP, ACCOUNT).connection_strings

    all_keys = [keys.primary_master_key, keys.secondary_master_key, keys.primary_readonly_master_key,
                keys.secondary_readonly_master_key]
    assert len(set(all_keys)) == 4
    assert all(len(k) == 88 and k.endswith("==") for k in all_keys)
    assert by_get.primary_readonly_master_key == by_post.primary_readonly_master_key == keys.primary_readonly_master_key
    assert [(s.key_kind, s.type) for s in strings] == [
        ("Primary", "Sql"), ("Secondary", "Sql"), ("PrimaryReadonly", "Sql"), ("SecondaryReadonly", "Sql")]
    endpoint = account["properties"]["documentEndpoint"]
    assert [s.connection_string for s in strings] == [f"AccountEndpoint={endpoint};AccountKey={k};" for k in all_keys]
    assert strings[2].description == "Primary Read-Only SQL Connection String"


def test_regenerate_key_long_running_operation(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    endpoint = account["properties"]["documentEndpoint"]
    before = _keys(mgmt)
    started = datetime.datetime.now(datetime.timezone.utc)

    poller = mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                                         polling_interval=0.1)
    poller.result(timeout=10)

    after = _keys(mgmt)
    assert poller.status() == "Succeeded"
    assert after.secondary_master_key != before.secondary_master_key
    assert after.primary_master_key == before.primary_master_key
    assert after.secondary_readonly_master_key == before.secondary_readonly_master_key
    assert _counts(emu) == {"primary": 0, "secondary": 1, "primaryReadonly": 0, "secondaryReadonly": 0}
    generated = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).keys_metadata.secondary_master_key.generation_time
    assert generated > started
    assert not _key_works(endpoint, before.secondary_master_key)
    assert _key_works(endpoint, after.secondary_master_key)


def test_operation_status_then_location(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    url = f"{emu.arm_url}{ACCOUNT_PATH}/regenerateKey"
    emu.admin.configure(regeneration_seconds=0.8)  # long enough to see it in progress on a slow machine

    accepted = requests.post(url, params=API, json={"keyKind": "primaryReadonly"}, headers=auth, timeout=10)

    assert accepted.status_code == 202
    assert int(accepted.headers["Retry-After"]) >= 0
    status_url, result_url = accepted.headers["Azure-AsyncOperation"], accepted.headers["Location"]
    assert "/providers/Microsoft.DocumentDB/locations/chinaeast2/operationsStatus/" in status_url
    assert "/regenerateKey/operationResults/" in result_url
    assert requests.get(status_url, headers=auth, timeout=10).json()["status"] == "InProgress"
    assert requests.get(result_url, headers=auth, timeout=10).status_code == 202
    deadline = time.monotonic() + 10
    while (status := requests.get(status_url, headers=auth, timeout=10).json()["status"]) == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status == "Succeeded"
    assert requests.get(result_url, headers=auth, timeout=10).json() == {}


def test_snake_case_body_is_rejected(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    with pytest.raises(HttpResponseError) as caught:
        mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"key_kind": "secondary"})

    assert caught.value.status_code == 400
    assert "keyKind" in caught.value.message and "key_kind" in caught.value.message
    assert _counts(emu, "regenerationRequests")["secondary"] == 0


def test_second_regeneration_while_one_runs_is_refused(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "primary"}, polling=False)

    with pytest.raises(HttpResponseError) as caught:
        mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"}, polling=False)

    assert caught.value.status_code == 412
    assert caught.value.error.code == "PreconditionFailed"


@pytest.mark.parametrize("outcome", ["Failed", "Canceled"])
def test_failed_operation_leaves_the_key(emu: Emulator, account: dict[str, Any], mgmt: Any, outcome: str) -> None:
    before = _keys(mgmt).secondary_master_key
    emu.admin.add_fault(service="arm", operation="regenerateKey", lro_status=outcome)

    poller = mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                                         polling_interval=0.1)
    with pytest.raises(HttpResponseError):
        poller.result(timeout=10)

    assert _keys(mgmt).secondary_master_key == before
    assert _counts(emu)["secondary"] == 0
    assert _counts(emu, "regenerationRequests")["secondary"] == 1
    assert emu.admin.state()["accounts"][0]["regenerations"][0]["status"] == outcome


def test_throttling_with_retry_after_is_retried(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.add_fault(service="arm", operation="listKeys", status=429, retry_after=0.2, account=ACCOUNT)
    started = time.monotonic()

    keys = _keys(mgmt)

    assert keys.primary_master_key
    assert time.monotonic() - started >= 0.2
    [rule] = emu.admin.faults()
    assert (rule["matched"], rule["remaining"]) == (1, 0)


def test_errors_while_polling_are_retried(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.add_fault(service="arm", operation="operationStatus", status=503, retry_after=0.1, count=2)

    mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "primary"},
                                                polling_interval=0.1).result(timeout=10)

    assert _counts(emu)["primary"] == 1
    assert emu.admin.faults()[0]["matched"] == 2


def test_slow_operation(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.add_fault(service="arm", operation="getAccount", delay_seconds=0.3)
    started = time.monotonic()

    mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT)

    assert time.monotonic() - started >= 0.3


def test_unknown_account(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    with pytest.raises(ResourceNotFoundError) as caught:
        mgmt.database_accounts.get(RESOURCE_GROUP, "docdb-missing")

    assert caught.value.error.code == "ResourceNotFound"


def test_bearer_token_is_required(emu: Emulator, account: dict[str, Any], credential: Any) -> None:
    url = f"{emu.arm_url}{ACCOUNT_PATH}/listKeys"
    vault_token = credential.get_token("https://vault.azure.net/.default").token

    for headers in ({}, {"Authorization": "Bearer not-a-token"}, {"Authorization": f"Bearer {vault_token}"}):
        answer = requests.post(url, params=API, headers=headers, timeout=10)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "AuthenticationFailed"


def test_cloud_audience_is_accepted(emu: Emulator, account: dict[str, Any], credential: Any) -> None:
    token = credential.get_token("https://management.chinacloudapi.cn/.default").token

    answer = requests.get(f"{emu.arm_url}{ACCOUNT_PATH}", params=API,
                          headers={"Authorization": f"Bearer {token}"}, timeout=10)

    assert answer.status_code == 200


def test_routing_errors(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    base = f"{emu.arm_url}{ACCOUNT_PATH}"

    assert requests.get(base.lower(), params=API, headers=auth, timeout=10).json()["name"] == ACCOUNT
    assert requests.get(base, headers=auth, timeout=10).status_code == 400  # no api-version
    assert requests.get(f"{base}/listKeys", params=API, headers=auth, timeout=10).status_code == 405
    assert requests.get(f"{base}/nothingHere", params=API, headers=auth, timeout=10).status_code == 404
    bad = requests.post(f"{base}/regenerateKey", params=API, json={"keyKind": "tertiary"}, headers=auth, timeout=10)
    assert bad.status_code == 400
    assert "tertiary" in bad.json()["error"]["message"]
