"""Listing accounts (per subscription and per resource group, paged) and account tags, through the real
azure-mgmt-cosmosdb client."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from local_azure import Emulator
from local_azure.admin import AdminError
from local_azure.state import StateError

from .conftest import ACCOUNT, RESOURCE_GROUP, SUBSCRIPTION

API = {"api-version": "2026-03-15"}
OTHER_SUBSCRIPTION = "00000000-0000-4000-8000-00000000e1a2"
LIST_PATH = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.DocumentDB/databaseAccounts"


def test_list_follows_next_link_through_every_page(emu: Emulator, mgmt: Any) -> None:
    for n in range(250):
        emu.create_account(SUBSCRIPTION, f"rg-{n % 3}", f"docdb-{n:03d}", tags={"team": f"t{n % 7}", "n": str(n)})
    emu.create_account(OTHER_SUBSCRIPTION, RESOURCE_GROUP, "docdb-elsewhere")

    listed = list(mgmt.database_accounts.list())

    assert len(listed) == 250
    assert len({a.id for a in listed}) == 250
    assert {a.name for a in listed} == {f"docdb-{n:03d}" for n in range(250)}
    by_name = {a.name: a for a in listed}
    assert by_name["docdb-042"].tags == {"team": "t0", "n": "42"}
    assert by_name["docdb-042"].document_endpoint.startswith("https://127.0.0.2:")
    assert by_name["docdb-042"].keys_metadata.primary_master_key.generation_time is not None
    assert emu.admin.metrics()["arm"]["operations"]["listAccounts"] == {"requests": 3, "throttled": 0}


def test_pages_and_next_link_on_the_wire(emu: Emulator, arm_token: str) -> None:
    for n in range(5):
        emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, f"docdb-{n}")
    emu.admin.configure(arm_list_page_size=2)
    auth = {"Authorization": f"Bearer {arm_token}"}

    pages, url, params = [], f"{emu.arm_url}{LIST_PATH}", dict(API)
    while url:
        page = requests.get(url, params=params, headers=auth, timeout=10).json()
        pages.append([a["name"] for a in page["value"]])
        url, params = page.get("nextLink"), {}

    assert pages == [["docdb-0", "docdb-1"], ["docdb-2", "docdb-3"], ["docdb-4"]]
    bad = requests.get(f"{emu.arm_url}{LIST_PATH}", params={**API, "$skipToken": "x"}, headers=auth, timeout=10)
    assert bad.status_code == 400


def test_list_by_resource_group(emu: Emulator, mgmt: Any) -> None:
    emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, "docdb-a")
    emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, "docdb-b")
    emu.create_account(SUBSCRIPTION, "rg-other", "docdb-c")
    emu.create_account(OTHER_SUBSCRIPTION, RESOURCE_GROUP, "docdb-d")

    in_group = [a.name for a in mgmt.database_accounts.list_by_resource_group(RESOURCE_GROUP.upper())]
    everywhere = sorted(a.name for a in mgmt.database_accounts.list())

    assert in_group == ["docdb-a", "docdb-b"]
    assert everywhere == ["docdb-a", "docdb-b", "docdb-c"]
    assert list(mgmt.database_accounts.list_by_resource_group("rg-empty")) == []
    operations = emu.admin.metrics()["arm"]["operations"]
    assert operations["listAccountsByResourceGroup"]["requests"] == 2
    assert operations["listAccounts"]["requests"] == 1


def test_fault_rules_apply_to_lists(emu: Emulator, account: dict[str, Any], mgmt: Any, credential: Any) -> None:
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    emu.admin.add_fault(service="arm", operation="listAccounts", status=503, retry_after=0)
    emu.admin.add_fault(service="arm", operation="listAccountsByResourceGroup", status=429, account=ACCOUNT)
    emu.admin.add_fault(service="arm", operation="listAccountsByResourceGroup", status=500)
    no_retry = CosmosDBManagementClient(credential, SUBSCRIPTION, base_url=emu.arm_url,
                                        credential_scopes=[f"{emu.arm_url}/.default"], retry_total=0)

    assert [a.name for a in mgmt.database_accounts.list()] == [ACCOUNT]  # the 503 is retried
    with pytest.raises(HttpResponseError) as caught:
        list(no_retry.database_accounts.list_by_resource_group(RESOURCE_GROUP))

    assert caught.value.status_code == 500
    faults = emu.admin.faults()
    assert faults[0]["matched"] == 1
    assert faults[1]["matched"] == 0  # "account" names one account: a list is no account's request
    assert faults[2]["matched"] == 1


def test_lists_are_throttled_as_reads(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.admin.configure(arm_read_bucket=[1, 0.01])
    auth = {"Authorization": f"Bearer {arm_token}"}

    first = requests.get(f"{emu.arm_url}{LIST_PATH}", params=API, headers=auth, timeout=10)
    second = requests.get(f"{emu.arm_url}{LIST_PATH}", params=API, headers=auth, timeout=10)

    assert (first.status_code, second.status_code) == (200, 429)
    assert first.headers["x-ms-ratelimit-remaining-subscription-reads"] == "0"


def test_tags_at_creation_and_changed_later(emu: Emulator, mgmt: Any) -> None:
    created = emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT, tags={"rotation": "weekly"})

    changed = emu.admin.set_account_tags(ACCOUNT, {"rotation": "daily", "owner": "ops"})

    assert created["tags"] == {"rotation": "weekly"}
    assert changed["tags"] == {"rotation": "daily", "owner": "ops"}
    assert mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).tags == {"rotation": "daily", "owner": "ops"}
    assert emu.admin.state()["accounts"][0]["tags"] == {"rotation": "daily", "owner": "ops"}
    assert emu.admin.accounts()[0]["tags"] == {"rotation": "daily", "owner": "ops"}
    assert emu.admin.set_account_tags(ACCOUNT, {})["tags"] == {}


def test_tag_errors(emu: Emulator, account: dict[str, Any]) -> None:
    emu.create_account(OTHER_SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)
    bad_calls = [
        (lambda: emu.admin.set_account_tags("docdb-missing", {"a": "b"}), 404),
        (lambda: emu.admin.set_account_tags(ACCOUNT, {"a": "b"}), 400),  # two accounts share the name
        (lambda: emu.admin.set_account_tags(ACCOUNT, {"a": 1}, subscription_id=SUBSCRIPTION), 400),
        (lambda: emu.admin.set_account_tags(ACCOUNT, {"a/b": "c"}, subscription_id=SUBSCRIPTION), 400),
        (lambda: emu.admin.set_account_tags(ACCOUNT, {"a": "v" * 257}, subscription_id=SUBSCRIPTION), 400),
        (lambda: emu.admin.set_account_tags(ACCOUNT, {f"t{n}": "" for n in range(51)},
                                            subscription_id=SUBSCRIPTION), 400),
        (lambda: emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, "docdb-x", tags=["a"]), 400),  # type: ignore[arg-type]
    ]
    for call, status in bad_calls:
        with pytest.raises(AdminError) as caught:
            call()
        assert caught.value.status == status

    tagged = emu.admin.set_account_tags(ACCOUNT, {"a": "b"}, subscription_id=OTHER_SUBSCRIPTION,
                                        resource_group=RESOURCE_GROUP)
    assert tagged["id"].startswith(f"/subscriptions/{OTHER_SUBSCRIPTION}/")
    with pytest.raises(StateError):
        emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, "docdb-y", tags={"": "x"})
