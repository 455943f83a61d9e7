"""Request metrics per service and operation, read through the admin API."""

from __future__ import annotations

from typing import Any

import requests

from local_azure import Emulator

from .conftest import ACCOUNT, RESOURCE_GROUP


def _rotation(mgmt: Any, secrets_client: Any, endpoint: str) -> None:
    """What one rotation roughly sends: read the account, regenerate, read the keys, publish, verify."""
    from azure.cosmos import CosmosClient

    accounts = mgmt.database_accounts
    accounts.get(RESOURCE_GROUP, ACCOUNT)
    accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                  polling_interval=0.05).result(timeout=10)
    key = accounts.list_keys(RESOURCE_GROUP, ACCOUNT).secondary_master_key
    secrets_client.set_secret("cosmos-conn", f"AccountEndpoint={endpoint};AccountKey={key};")
    secrets_client.get_secret("cosmos-conn")
    list(CosmosClient(endpoint, credential=key).list_databases())


def test_a_rotation_counted_per_service_and_operation(emu: Emulator, account: dict[str, Any], mgmt: Any,
                                                      secrets_client: Any) -> None:
    _rotation(mgmt, secrets_client, account["properties"]["documentEndpoint"])

    metrics = emu.admin.metrics()

    arm = metrics["arm"]
    ops = arm["operations"]
    polls = ops["operationStatus"]["requests"]
    assert polls >= 1
    assert {name: ops[name]["requests"] for name in ("getAccount", "regenerateKey", "operationResult", "listKeys")} \
        == {"getAccount": 1, "regenerateKey": 1, "operationResult": 1, "listKeys": 1}
    assert (arm["requests"], arm["reads"]["requests"], arm["writes"]["requests"]) == (4 + polls, 2 + polls, 2)
    assert arm["statuses"] == {"200": 3 + polls, "202": 1}
    assert arm["throttled"] == 0
    vault = metrics["vault"]
    # The SDK's first request to a vault is its challenge round: answered 401, counted, never throttled.
    assert vault["operations"] == {"setSecret": {"requests": 2, "throttled": 0},
                                   "getSecret": {"requests": 1, "throttled": 0}}
    assert vault["statuses"] == {"200": 2, "401": 1}
    assert (vault["reads"]["requests"], vault["writes"]["requests"]) == (1, 2)
    dataplane = metrics["dataplane"]
    assert dataplane["operations"]["readAccount"]["requests"] >= 1
    assert dataplane["operations"]["listDatabases"]["requests"] == 1
    assert metrics["identity"]["operations"]["token"]["requests"] >= 2  # a Resource Manager and a Key Vault token
    assert metrics["since"].endswith("Z")


def test_reset_returns_the_window_and_starts_a_new_one(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.configure(arm_write_bucket=[2, 0.01])
    mgmt.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)

    window = emu.admin.reset_metrics()
    after = emu.admin.metrics()

    assert window["arm"]["operations"]["listKeys"]["requests"] == 1
    assert after["arm"]["requests"] == 0 and after["arm"]["operations"] == {}
    assert after["since"] > window["since"]
    [bucket] = after["throttling"]["arm"]["buckets"]
    assert (bucket["taken"], bucket["refused"], bucket["tokens"] < 1.1) == (0, 0, True)  # the tokens stay spent


def test_throttled_counts_any_429_and_refused_only_the_buckets(emu: Emulator, account: dict[str, Any],
                                                              arm_token: str) -> None:
    auth = {"Authorization": f"Bearer {arm_token}"}
    url = f"{emu.arm_url}{account['id']}/listKeys"
    emu.admin.configure(arm_write_bucket=[2, 0.01])
    emu.admin.add_fault(service="arm", operation="listKeys", status=429, retry_after=1)

    statuses = [requests.post(url, params={"api-version": "2026-03-15"}, headers=auth, timeout=10).status_code
                for _ in range(3)]

    metrics = emu.admin.metrics()
    assert statuses == [429, 200, 429]  # a fault rule's 429, then a served request, then the empty bucket
    assert metrics["arm"]["operations"]["listKeys"] == {"requests": 3, "throttled": 2}
    assert metrics["throttling"]["arm"]["refused"] == {"reads": 0, "writes": 1}


def test_admin_calls_and_unknown_paths(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.admin.health()
    emu.admin.state()
    requests.get(f"{emu.arm_url}/subscriptions/x/nothing", params={"api-version": "1"},
                 headers={"Authorization": f"Bearer {arm_token}"}, verify=emu.ca_file, timeout=10)

    arm = emu.admin.metrics()["arm"]

    assert arm["requests"] == 1
    assert arm["operations"] == {"unknown": {"requests": 1, "throttled": 0}}
    assert arm["statuses"] == {"404": 1}


def test_reset_zeroes_the_metrics(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT)

    emu.admin.reset()

    metrics = emu.admin.metrics()
    assert metrics["arm"]["requests"] == 0
    assert metrics["throttling"]["arm"] == {"refused": {"reads": 0, "writes": 0}, "buckets": []}
