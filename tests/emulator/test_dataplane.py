"""Each account's data plane, driven by the real azure-cosmos client and by hand-signed requests."""

from __future__ import annotations

import base64
import secrets
from email.utils import formatdate
from typing import Any

import pytest
import requests
from azure.cosmos import CosmosClient
from azure.cosmos.exceptions import CosmosHttpResponseError

from local_azure import Emulator
from local_azure.dataplane import authorization_header

from .conftest import ACCOUNT, RESOURCE_GROUP

# azure-cosmos turns TLS verification off for 127.0.0.1 and localhost (_synchronized_request.py) and warns.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


def _endpoint(account: dict[str, Any]) -> str:
    return account["properties"]["documentEndpoint"]


def _signed_get(emu: Emulator, endpoint: str, key: str, path: str = "/") -> requests.Response:
    x_date = formatdate(usegmt=True)
    headers = {"x-ms-date": x_date, "x-ms-version": "2020-07-15",
               "authorization": authorization_header(key, "GET", path, x_date)}
    return requests.get(endpoint.rstrip("/") + path, headers=headers, verify=emu.ca_file, timeout=10)


def test_current_key_reads_the_account(emu: Emulator, account: dict[str, Any], azure_env: dict[str, str]) -> None:
    endpoint = _endpoint(account)
    client = CosmosClient(endpoint, credential=emu.account_keys(ACCOUNT)["primary"])

    document = client.get_database_account()

    assert list(client.list_databases()) == []
    assert [loc["databaseAccountEndpoint"] for loc in document.WritableLocations] == [endpoint]
    assert {loc["databaseAccountEndpoint"] for loc in document.ReadableLocations} == {endpoint}
    assert document.ConsistencyPolicy["defaultConsistencyLevel"] == "BoundedStaleness"


def test_wrong_key_is_refused(emu: Emulator, account: dict[str, Any], azure_env: dict[str, str]) -> None:
    wrong = base64.b64encode(secrets.token_bytes(64)).decode()

    with pytest.raises(CosmosHttpResponseError) as caught:
        CosmosClient(_endpoint(account), credential=wrong)

    assert caught.value.status_code == 401
    assert "authorization token can't serve the request" in caught.value.message
    assert not any(key in str(caught.value) for key in emu.admin.issued()["keys"])


def test_read_only_key_reads_but_does_not_write(emu: Emulator, account: dict[str, Any],
                                                azure_env: dict[str, str]) -> None:
    client = CosmosClient(_endpoint(account), credential=emu.account_keys(ACCOUNT)["secondaryReadonly"])

    assert list(client.list_databases()) == []
    with pytest.raises(CosmosHttpResponseError) as caught:
        client.create_database("not-allowed")
    assert caught.value.status_code == 401


def test_signature_is_checked(emu: Emulator, account: dict[str, Any]) -> None:
    endpoint, key = _endpoint(account), emu.account_keys(ACCOUNT)["primary"]
    x_date = formatdate(usegmt=True)
    signed_for_dbs = authorization_header(key, "GET", "/dbs", x_date)

    assert _signed_get(emu, endpoint, key).status_code == 200
    assert _signed_get(emu, endpoint, key, "/dbs").json() == {"_rid": "", "Databases": [], "_count": 0}
    wrong_path = requests.get(endpoint, headers={"x-ms-date": x_date, "authorization": signed_for_dbs},
                              verify=emu.ca_file, timeout=10)
    unsigned = requests.get(endpoint, headers={"x-ms-date": x_date}, verify=emu.ca_file, timeout=10)
    assert wrong_path.status_code == unsigned.status_code == 401
    assert wrong_path.json()["code"] == "Unauthorized"


def test_old_key_stops_at_once_and_new_key_waits_for_propagation(
        emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    endpoint = _endpoint(account)
    old = emu.account_keys(ACCOUNT)["primary"]
    emu.admin.configure(propagation_failures=2)

    mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "primary"},
                                                polling_interval=0.1).result(timeout=10)
    new = emu.account_keys(ACCOUNT)["primary"]

    assert _signed_get(emu, endpoint, old).status_code == 401
    assert [_signed_get(emu, endpoint, new).status_code for _ in range(3)] == [401, 401, 200]
    assert emu.admin.state()["accounts"][0]["pendingPropagation"] == {}


def test_sdk_own_retries_absorb_short_propagation(emu: Emulator, account: dict[str, Any], mgmt: Any,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK retries a failed account read 3 times: a key refused twice still connects, in one constructor.
    monkeypatch.setenv("AZURE_COSMOS_HEALTH_CHECK_MAX_RETRIES", "3")
    monkeypatch.setenv("AZURE_COSMOS_HEALTH_CHECK_RETRY_AFTER_MS", "10")
    emu.admin.configure(propagation_failures=2)
    mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                                polling_interval=0.1).result(timeout=10)

    client = CosmosClient(_endpoint(account), credential=emu.account_keys(ACCOUNT)["secondary"])

    assert list(client.list_databases()) == []


def test_data_plane_faults(emu: Emulator, account: dict[str, Any]) -> None:
    emu.admin.add_fault(service="dataplane", operation="*", status=429, retry_after=1, account=ACCOUNT)
    key = emu.account_keys(ACCOUNT)["primary"]

    throttled = _signed_get(emu, _endpoint(account), key)

    assert throttled.status_code == 429
    assert (throttled.headers["x-ms-retry-after-ms"], throttled.headers["Retry-After"]) == ("1000", "1")
    assert throttled.json()["code"] == "TooManyRequests"
    assert _signed_get(emu, _endpoint(account), key).status_code == 200
