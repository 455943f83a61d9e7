"""The fault effects "drop", "acted" and "stale", driven by the real Azure SDKs."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ServiceResponseError

from local_azure import Emulator
from local_azure.admin import AdminError

from .conftest import ACCOUNT, RESOURCE_GROUP


def _account_state(emu: Emulator) -> dict[str, Any]:
    return emu.admin.state()["accounts"][0]


def _wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _regenerate(mgmt: Any, kind: str, **options: Any) -> Any:
    return mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": kind},
                                                       polling_interval=0.1, **options)


def test_acted_regeneration_answered_503(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    before = emu.account_keys(ACCOUNT)["secondary"]
    emu.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 503, "acted": True})

    with pytest.raises(HttpResponseError) as caught:
        _regenerate(mgmt, "secondary", retry_total=0)

    assert caught.value.status_code == 503
    assert caught.value.error.code == "ServiceUnavailable"
    assert _account_state(emu)["regenerationRequests"]["secondary"] == 1
    # Cosmos DB acted: the regeneration runs to its end although the client saw an error.
    _wait_for(lambda: _account_state(emu)["regenerationCounts"]["secondary"] == 1)
    assert emu.account_keys(ACCOUNT)["secondary"] != before


def test_acted_503_makes_azure_core_send_the_post_twice(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    """azure-core retries a POST answered 503 (at once, the first time): the service receives the same
    regenerateKey twice, and with a quick regeneration the key is regenerated twice."""
    emu.admin.configure(regeneration_seconds=0)
    emu.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 503, "acted": True})

    _regenerate(mgmt, "primary").result(timeout=10)

    state = _account_state(emu)
    assert state["regenerationRequests"]["primary"] == 2
    assert state["regenerationCounts"]["primary"] == 2


def test_dropped_acted_regeneration(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.add_fault({"service": "arm", "operation": "regenerateKey", "drop": True, "acted": True})

    # A connection error on a POST is not retried by azure-core (POST is not in its method allowlist).
    with pytest.raises(ServiceResponseError):
        _regenerate(mgmt, "primaryReadonly")

    assert _account_state(emu)["regenerationRequests"]["primaryReadonly"] == 1
    _wait_for(lambda: _account_state(emu)["regenerationCounts"]["primaryReadonly"] == 1)


def test_dropped_regeneration_that_did_not_act(emu: Emulator, account: dict[str, Any], mgmt: Any) -> None:
    emu.admin.add_fault({"service": "arm", "operation": "regenerateKey", "drop": True})

    with pytest.raises(ServiceResponseError):
        _regenerate(mgmt, "secondary", retry_total=0)

    assert _account_state(emu)["regenerationRequests"]["secondary"] == 0


def test_stale_get_account_shows_the_old_generation_time_once(emu: Emulator, account: dict[str, Any],
                                                              mgmt: Any) -> None:
    def generated() -> Any:
        return mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).keys_metadata.secondary_master_key.generation_time

    old = generated()
    _regenerate(mgmt, "secondary").result(timeout=10)
    new = generated()
    emu.admin.add_fault({"service": "arm", "operation": "getAccount", "stale": True})

    first, second = generated(), generated()

    assert new > old
    assert (first, second) == (old, new)
    primary = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).keys_metadata.primary_master_key.generation_time
    assert primary == old  # only the regenerated kind lags


def test_stale_without_a_finished_regeneration_is_current(emu: Emulator, account: dict[str, Any],
                                                          mgmt: Any) -> None:
    current = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).keys_metadata
    emu.admin.add_fault({"service": "arm", "operation": "getAccount", "stale": True})

    stale = mgmt.database_accounts.get(RESOURCE_GROUP, ACCOUNT).keys_metadata

    assert stale.as_dict() == current.as_dict()
    assert emu.admin.faults()[0]["matched"] == 1


def test_dropped_get_is_retried_by_azure_core(emu: Emulator, secrets_client: Any) -> None:
    secrets_client.set_secret("kept", "v")
    emu.admin.add_fault({"service": "vault", "operation": "getSecret", "drop": True})

    assert secrets_client.get_secret("kept").value == "v"
    assert emu.admin.faults()[0]["matched"] == 1


def test_drop_closes_the_connection_without_an_answer(emu: Emulator) -> None:
    emu.admin.add_fault({"service": "identity", "drop": True})
    query = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
    headers = {"X-IDENTITY-HEADER": emu.identity_header}

    with pytest.raises(requests.ConnectionError, match="without response"):
        requests.get(emu.identity_endpoint, params=query, headers=headers, timeout=10)

    assert requests.get(emu.identity_endpoint, params=query, headers=headers, timeout=10).status_code == 200


def test_acted_secret_write_is_stored(emu: Emulator, secrets_client: Any) -> None:
    emu.admin.add_fault({"service": "vault", "operation": "setSecret", "status": 500, "acted": True})

    with pytest.raises(HttpResponseError) as caught:
        secrets_client.set_secret("written", "v", retry_total=0)

    assert caught.value.status_code == 500
    assert len(list(secrets_client.list_properties_of_secret_versions("written"))) == 1


@pytest.mark.parametrize("rule", [
    {"service": "arm", "operation": "listKeys", "drop": True, "status": 503},
    {"service": "arm", "operation": "regenerateKey", "acted": True},
    {"service": "arm", "operation": "regenerateKey", "acted": True, "lroStatus": "Failed"},
    {"service": "arm", "operation": "listKeys", "stale": True},
    {"service": "arm", "operation": "getAccount", "stale": True, "status": 500},
    {"service": "arm", "operation": "getAccount", "drop": "yes"},
    {"service": "vault", "operation": "getDeletedSecrets", "status": 500},
    {"service": "storage", "operation": "putBlob", "status": 412},  # storage rules go to Azurite.faults
])
def test_bad_effect_combinations_are_refused(emu: Emulator, rule: dict[str, Any]) -> None:
    with pytest.raises(AdminError) as caught:
        emu.admin.add_fault(rule)

    assert caught.value.status == 400
    assert emu.admin.faults() == []


def test_rules_show_their_effects(emu: Emulator) -> None:
    rule = emu.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 503, "acted": True})

    assert (rule["status"], rule["acted"], rule["drop"], rule["stale"]) == (503, True, False, False)
