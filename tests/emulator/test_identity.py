"""The managed identity endpoint, as azure-identity's App Service credential uses it."""

from __future__ import annotations

import socket
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from local_azure import Emulator


def _token_request(emu: Emulator, headers: dict[str, str] | None = None, **params: str) -> requests.Response:
    query = {"api-version": "2019-08-01", "resource": "https://vault.azure.net", **params}
    return requests.get(emu.identity_endpoint, params=query, headers=headers or {}, timeout=10)


def test_default_credential_uses_the_identity_endpoint(emu: Emulator, credential: Any) -> None:
    token = credential.get_token(f"{emu.arm_url}/.default")

    assert token.token in emu.admin.issued()["tokens"]
    assert emu.state.token_info(token.token).audience == emu.arm_url
    assert token.expires_on > time.time() + 3600


def test_answer_has_the_app_service_shape(emu: Emulator) -> None:
    answer = _token_request(emu, {"X-IDENTITY-HEADER": emu.identity_header}, client_id="my-client")

    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_on"].isdigit()  # App Service sends epoch seconds as a string
    assert body["token_type"] == "Bearer"
    assert body["resource"] == "https://vault.azure.net"
    assert body["client_id"] == "my-client"
    assert emu.state.token_info(body["access_token"]).audience == "https://vault.azure.net"


@pytest.mark.parametrize(("headers", "status"), [({}, 400), ({"X-IDENTITY-HEADER": "wrong"}, 401)])
def test_identity_header_is_required(emu: Emulator, headers: dict[str, str], status: int) -> None:
    answer = _token_request(emu, headers)

    assert answer.status_code == status
    assert answer.json()["statusCode"] == status
    assert emu.state.snapshot()["tokensIssued"] == 0


def test_wrong_api_version_and_missing_resource_are_rejected(emu: Emulator) -> None:
    headers = {"X-IDENTITY-HEADER": emu.identity_header}
    assert _token_request(emu, headers, **{"api-version": "2017-09-01"}).status_code == 400
    answer = requests.get(emu.identity_endpoint, params={"api-version": "2019-08-01"}, headers=headers, timeout=10)
    assert answer.status_code == 400


def test_identity_fault(emu: Emulator) -> None:
    emu.admin.add_fault(service="identity", operation="token", status=503)

    assert _token_request(emu, {"X-IDENTITY-HEADER": emu.identity_header}).status_code == 503
    assert _token_request(emu, {"X-IDENTITY-HEADER": emu.identity_header}).status_code == 200


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback")
def test_ipv6_loopback(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    with Emulator(tmp_path, host="::1") as emu:
        emu.create_account("sub", "rg", "docdb-v6")
        for name, value in emu.env().items():
            monkeypatch.setenv(name, value)
        client = CosmosDBManagementClient(ManagedIdentityCredential(), "sub", base_url=emu.arm_url,
                                          credential_scopes=[f"{emu.arm_url}/.default"])

        assert emu.arm_url.startswith("https://[::1]:")
        assert client.database_accounts.get("rg", "docdb-v6").name == "docdb-v6"
