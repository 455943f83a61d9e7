"""Token-bucket throttling of Resource Manager (per subscription) and Key Vault (per vault), seen through the real
azure-mgmt-cosmosdb and azure-keyvault-secrets clients."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError

from local_azure import Emulator
from local_azure.admin import AdminError
from local_azure.throttling import Throttler, TokenBucket

from .conftest import ACCOUNT, RESOURCE_GROUP, SUBSCRIPTION

API = {"api-version": "2026-03-15"}
ACCOUNT_PATH = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}"
                f"/providers/Microsoft.DocumentDB/databaseAccounts/{ACCOUNT}")
OTHER_SUBSCRIPTION = "00000000-0000-4000-8000-00000000e1a2"


@pytest.fixture
def mgmt_no_retry(emu: Emulator, credential: Any) -> Any:
    """A client that shows the first answer instead of retrying it."""
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    return CosmosDBManagementClient(credential, SUBSCRIPTION, base_url=emu.arm_url,
                                    credential_scopes=[f"{emu.arm_url}/.default"], retry_total=0)


@pytest.fixture
def vault_no_retry(emu: Emulator, credential: Any) -> Any:
    from azure.keyvault.secrets import SecretClient

    return SecretClient(emu.vault_url, credential, verify_challenge_resource=False, retry_total=0)


def _auth(arm_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {arm_token}"}


# ----- the bucket itself ------------------------------------------------------------------------


def test_bucket_refills_at_its_rate_up_to_its_size() -> None:
    bucket = TokenBucket((3, 2.0), now=0.0)

    taken = [bucket.take(0.0) for _ in range(4)]

    assert [d.allowed for d in taken] == [True, True, True, False]
    assert [d.remaining for d in taken] == [2, 1, 0, 0]
    assert taken[3].retry_after == 1  # 0.5 s to the next token, in whole seconds
    assert bucket.take(0.5).allowed and not bucket.take(0.5).allowed
    assert bucket.take(100.0).remaining == 2  # never more than the size
    slow = TokenBucket((1, 0.25), now=0.0)
    slow.take(0.0)
    assert slow.take(0.0).retry_after == 4


def test_a_new_configuration_starts_a_full_bucket() -> None:
    clock = [0.0]
    throttler = Throttler(clock=lambda: clock[0])

    for _ in range(2):
        throttler.take("arm", "sub", "writes", (2, 1.0))
    refused = throttler.take("arm", "sub", "writes", (2, 1.0))
    after_change = throttler.take("arm", "sub", "writes", (5, 1.0))

    assert refused is not None and not refused.allowed
    assert after_change is not None and after_change.allowed and after_change.remaining == 4
    assert throttler.take("arm", "sub", "writes", None) is None
    assert throttler.to_json()["arm"]["refused"] == {"reads": 0, "writes": 1}
    clock[0] = 10.0
    throttler.take("arm", "sub", "writes", (5, 1.0))
    [bucket] = throttler.to_json(reset_counts=True)["arm"]["buckets"]
    assert (bucket["tokens"], bucket["lowest"], bucket["taken"]) == (4.0, 4, 2)  # refilled to 5 in between
    [bucket] = throttler.to_json()["arm"]["buckets"]
    assert (bucket["lowest"], bucket["taken"], bucket["refused"]) == (4, 0, 0)


# ----- Resource Manager -----------------------------------------------------------------------------


def test_defaults_are_azures_numbers(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    config = emu.admin.config()

    read = requests.get(f"{emu.arm_url}{ACCOUNT_PATH}", params=API, headers=_auth(arm_token), timeout=10)
    write = requests.post(f"{emu.arm_url}{ACCOUNT_PATH}/listKeys", params=API, headers=_auth(arm_token), timeout=10)

    assert (config["armWriteBucket"], config["armReadBucket"]) == ([200, 10.0], [250, 25.0])
    assert (config["vaultWriteBucket"], config["vaultReadBucket"]) == ([300, 30.0], [4000, 400.0])
    assert read.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
    assert "x-ms-ratelimit-remaining-subscription-writes" not in read.headers
    assert write.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
    assert "x-ms-ratelimit-remaining-subscription-reads" not in write.headers


def test_empty_write_bucket_answers_429_with_retry_after(emu: Emulator, account: dict[str, Any],
                                                         mgmt_no_retry: Any) -> None:
    emu.admin.configure(arm_write_bucket=[3, 0.5])

    for _ in range(3):
        mgmt_no_retry.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)
    with pytest.raises(HttpResponseError) as caught:
        mgmt_no_retry.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)

    error = caught.value
    assert error.status_code == 429
    assert error.error.code == "SubscriptionRequestsThrottled"
    assert f"Number of 'write' requests for subscription '{SUBSCRIPTION}'" in error.message
    assert "Please try again after '2' seconds" in error.message
    assert error.response.headers["Retry-After"] == "2"  # one token comes back in 2 s at 0.5 a second
    assert error.response.headers["x-ms-ratelimit-remaining-subscription-writes"] == "0"
    got = mgmt_no_retry.database_accounts.get(RESOURCE_GROUP, ACCOUNT)  # reads have their own bucket
    assert got.name == ACCOUNT


def test_the_sdk_waits_retry_after_and_succeeds(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.configure(arm_write_bucket=[1, 1])
    mgmt.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)
    started = time.monotonic()

    mgmt.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)  # refused once, then served

    assert time.monotonic() - started >= 0.9
    writes = emu.admin.metrics()["arm"]["writes"]
    assert (writes["requests"], writes["throttled"]) == (3, 1)


def test_post_actions_are_writes_and_gets_are_reads(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    accounts = mgmt.database_accounts
    accounts.get(RESOURCE_GROUP, ACCOUNT)
    accounts.get_read_only_keys(RESOURCE_GROUP, ACCOUNT)  # GET readonlykeys
    accounts.list_read_only_keys(RESOURCE_GROUP, ACCOUNT)  # POST readonlykeys
    accounts.list_keys(RESOURCE_GROUP, ACCOUNT)
    accounts.list_connection_strings(RESOURCE_GROUP, ACCOUNT)
    accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                  polling_interval=0.05).result(timeout=10)

    metrics = emu.admin.metrics()
    buckets = {b["kind"]: b for b in metrics["throttling"]["arm"]["buckets"]}
    polls = metrics["arm"]["operations"]["operationStatus"]["requests"] + 1  # + the final operationResult read
    assert buckets["writes"]["taken"] == 4  # readonlykeys POST, listKeys, listConnectionStrings, regenerateKey
    assert buckets["reads"]["taken"] == 2 + polls
    assert metrics["arm"]["writes"]["requests"] == 4
    assert buckets["reads"]["scope"] == buckets["writes"]["scope"] == SUBSCRIPTION


def test_buckets_are_per_subscription(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.create_account(OTHER_SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)
    emu.admin.configure(arm_write_bucket=[1, 0.01])
    other = ACCOUNT_PATH.replace(SUBSCRIPTION, OTHER_SUBSCRIPTION)

    def list_keys(path: str) -> int:
        return requests.post(f"{emu.arm_url}{path}/listKeys", params=API, headers=_auth(arm_token),
                             timeout=10).status_code

    assert [list_keys(ACCOUNT_PATH), list_keys(ACCOUNT_PATH), list_keys(other)] == [200, 429, 200]
    assert emu.admin.metrics()["throttling"]["arm"]["refused"] == {"reads": 0, "writes": 1}


def test_throttling_comes_before_fault_rules_and_lookups(emu: Emulator, account: dict[str, Any],
                                                         arm_token: str) -> None:
    emu.admin.configure(arm_read_bucket=[2, 0.01])
    emu.admin.add_fault(service="arm", operation="getAccount", status=500)
    url = f"{emu.arm_url}{ACCOUNT_PATH}"

    missing = requests.get(url.replace(ACCOUNT, "docdb-missing"), params=API, headers=_auth(arm_token), timeout=10)
    faulted = requests.get(url, params=API, headers=_auth(arm_token), timeout=10)
    refused = requests.get(url, params=API, headers=_auth(arm_token), timeout=10)

    # A missing account still costs a token (the provider answers the 404, after Resource Manager counted it).
    assert (missing.status_code, faulted.status_code, refused.status_code) == (404, 500, 429)
    assert refused.json()["error"]["code"] == "SubscriptionRequestsThrottled"
    assert missing.headers["x-ms-ratelimit-remaining-subscription-reads"] == "1"
    emu.admin.clear_faults()
    emu.admin.add_fault(service="arm", operation="getAccount", status=503)
    assert requests.get(url, params=API, headers=_auth(arm_token), timeout=10).status_code == 429
    assert emu.admin.faults()[0]["matched"] == 0  # a refused request never meets a rule


def test_unauthenticated_requests_take_no_token(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.admin.configure(arm_read_bucket=[1, 0.01])
    url = f"{emu.arm_url}{ACCOUNT_PATH}"

    denied = [requests.get(url, params=API, headers={"Authorization": "Bearer nope"}, timeout=10)
              for _ in range(3)]
    served = requests.get(url, params=API, headers=_auth(arm_token), timeout=10)

    assert [d.status_code for d in denied] == [401] * 3
    assert not any("x-ms-ratelimit-remaining-subscription-reads" in d.headers for d in denied)
    assert served.status_code == 200


def test_null_turns_a_bucket_off(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.admin.configure(arm_write_bucket=[1, 0.01])
    emu.admin.set_throttling(False)
    url = f"{emu.arm_url}{ACCOUNT_PATH}/listKeys"

    answers = [requests.post(url, params=API, headers=_auth(arm_token), timeout=10) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert not any("x-ms-ratelimit-remaining-subscription-writes" in a.headers for a in answers)
    assert emu.admin.config()["armWriteBucket"] is None
    assert emu.admin.set_throttling(True)["armWriteBucket"] == [200, 10.0]


def test_the_admin_api_is_never_throttled(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    emu.admin.configure(arm_read_bucket=[1, 0.001], arm_write_bucket=[1, 0.001])
    requests.get(f"{emu.arm_url}{ACCOUNT_PATH}", params=API, headers=_auth(arm_token), timeout=10)

    for _ in range(20):
        assert emu.admin.health() == {"status": "ok"}
        emu.admin.configure(pollRetryAfterMs=20)

    assert emu.admin.metrics()["arm"]["requests"] == 1


def test_reset_refills_the_buckets(emu: Emulator, account: dict[str, Any], arm_token: str) -> None:
    url = f"{emu.arm_url}{ACCOUNT_PATH}/listKeys"
    emu.admin.configure(arm_write_bucket=[1, 0.001])
    requests.post(url, params=API, headers=_auth(arm_token), timeout=10)

    emu.admin.reset()
    emu.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)

    answer = requests.post(url, params=API, headers=_auth(arm_token), timeout=10)
    assert answer.status_code == 200
    assert answer.headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"


@pytest.mark.parametrize("value", [[0, 1], [1.5, 1], [10, 0], [10], "200,10", [True, 1], {"size": 1}])
def test_bad_bucket_configurations_are_refused(emu: Emulator, value: Any) -> None:
    with pytest.raises(AdminError) as caught:
        emu.admin.configure(arm_write_bucket=value)

    assert caught.value.status == 400
    assert emu.admin.config()["armWriteBucket"] == [200, 10.0]


# ----- Key Vault --------------------------------------------------------------------------------------


def test_vault_create_secret_bucket(emu: Emulator, vault_no_retry: Any) -> None:
    emu.admin.configure(vault_write_bucket=[2, 0.5])
    vault_no_retry.set_secret("a", "1")
    vault_no_retry.set_secret("a", "2")

    with pytest.raises(HttpResponseError) as caught:
        vault_no_retry.set_secret("a", "3")

    error = caught.value
    assert error.status_code == 429
    assert error.error.code == "Throttled"
    assert error.error.message == ("Request was not processed because too many requests were received. "
                                   "Reason: VaultRequestTypeLimitReached")
    assert error.response.headers["Retry-After"] == "2"
    # Every other operation draws from "all other transactions".
    assert vault_no_retry.get_secret("a").value == "2"
    vault_no_retry.update_secret_properties("a", tags={"t": "1"})
    assert len(list(vault_no_retry.list_properties_of_secret_versions("a"))) == 2
    metrics = emu.admin.metrics()
    # The SDK's first request, the challenge round (401), counts as a request but takes no token.
    assert metrics["vault"]["operations"]["setSecret"] == {"requests": 4, "throttled": 1}
    assert metrics["throttling"]["vault"]["refused"] == {"reads": 0, "writes": 1}


def test_vault_challenge_round_takes_no_token(emu: Emulator, vault_no_retry: Any) -> None:
    emu.admin.configure(vault_read_bucket=[1, 0.01], vault_write_bucket=[1, 0.01])
    vault_no_retry.set_secret("a", "1")  # first a 401 challenge, then the authenticated PUT

    assert vault_no_retry.get_secret("a").value == "1"
    with pytest.raises(HttpResponseError) as caught:
        vault_no_retry.get_secret("a")
    assert caught.value.status_code == 429
    statuses = emu.admin.metrics()["vault"]["statuses"]
    assert statuses == {"200": 2, "401": 1, "429": 1}


def test_vault_buckets_are_per_vault(emu: Emulator, credential: Any, vault_no_retry: Any) -> None:
    from azure.keyvault.secrets import SecretClient

    other = SecretClient(emu.create_vault("kv-other")["uri"], credential, verify_challenge_resource=False,
                         retry_total=0)
    emu.admin.configure(vault_write_bucket=[1, 0.01])
    vault_no_retry.set_secret("a", "1")

    other.set_secret("a", "1")
    with pytest.raises(HttpResponseError):
        vault_no_retry.set_secret("a", "2")
    scopes = {b["scope"] for b in emu.admin.metrics()["throttling"]["vault"]["buckets"]}
    assert scopes == {"emulator-vault", "kv-other"}
