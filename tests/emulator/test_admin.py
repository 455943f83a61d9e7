"""The admin API, the never-log-a-secret promise, and the command line."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from local_azure import Emulator
from local_azure.admin import AdminClient, AdminError

from .conftest import ACCOUNT, RESOURCE_GROUP, SUBSCRIPTION

ROOT = Path(__file__).resolve().parents[2]


def _exercise(emu: Emulator, mgmt: Any, secrets_client: Any) -> None:
    """Touch every kind of secret the emulator hands out."""
    mgmt.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)
    mgmt.database_accounts.list_connection_strings(RESOURCE_GROUP, ACCOUNT)
    mgmt.database_accounts.begin_regenerate_key(RESOURCE_GROUP, ACCOUNT, {"keyKind": "secondary"},
                                                polling_interval=0.1).result(timeout=10)
    secrets_client.set_secret("conn", "AccountEndpoint=x;AccountKey=not-a-real-key;", tags={"keyKind": "primary"})
    secrets_client.get_secret("conn")


def test_issued_lists_every_secret_and_the_emulator_logs_none(
        emu: Emulator, account: dict[str, Any], mgmt: Any, secrets_client: Any,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="local_azure"):
        _exercise(emu, mgmt, secrets_client)
    issued = emu.admin.issued()

    assert len(issued["keys"]) == 5  # four at creation, one regenerated
    assert "AccountEndpoint=x;AccountKey=not-a-real-key;" in issued["secretValues"]
    assert len(issued["tokens"]) >= 2  # Resource Manager and Key Vault audiences
    assert issued["identityHeaders"] == [emu.identity_header]
    assert set(issued["all"]) >= set(issued["keys"]) | set(issued["tokens"])
    emulator_lines = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("local_azure"))
    assert "listKeys 200" in emulator_lines
    assert not [s for s in issued["all"] if s in emulator_lines]
    assert not [s for s in issued["all"] if s in json.dumps(emu.admin.state())]


def test_state_shows_history_and_secret_metadata(emu: Emulator, account: dict[str, Any], mgmt: Any,
                                                 secrets_client: Any) -> None:
    _exercise(emu, mgmt, secrets_client)

    state = emu.admin.state()

    [acct] = state["accounts"]
    assert acct["regenerationCounts"] == {"primary": 0, "secondary": 1, "primaryReadonly": 0,
                                          "secondaryReadonly": 0}
    [regeneration] = acct["regenerations"]
    assert regeneration["keyKind"] == "secondary" and regeneration["status"] == "Succeeded"
    assert acct["keysMetadata"]["secondaryMasterKey"]["generationTime"] == regeneration["completedAt"]
    [vault] = state["vaults"]
    [secret] = vault["secrets"]
    assert secret["name"] == "conn"
    assert secret["versions"][0]["tags"] == {"keyKind": "primary"}
    assert "value" not in secret["versions"][0]


def test_admin_rejects_bad_input(emu: Emulator, account: dict[str, Any]) -> None:
    bad_calls = [
        (lambda: emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT), 409),
        (lambda: emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, "Bad_Name"), 400),
        (lambda: emu.admin.create_vault("kv"), 400),
        (lambda: emu.admin.create_vault("emulator-vault"), 409),
        (lambda: emu.admin.add_fault(service="arm", operation="listSecrets", status=500), 400),
        (lambda: emu.admin.add_fault(service="vault", operation="getSecret", lro_status="Failed"), 400),
        (lambda: emu.admin.add_fault(service="arm"), 400),
        (lambda: emu.admin.configure(regenerationSecs=1), 400),
        (lambda: emu.admin.configure(propagation_failures=-1), 400),
    ]
    for call, status in bad_calls:
        with pytest.raises(AdminError) as caught:
            call()
        assert caught.value.status == status
    assert emu.admin.faults() == []


def test_faults_are_consumed_in_order(emu: Emulator) -> None:
    headers = {"X-IDENTITY-HEADER": emu.identity_header}
    query = {"api-version": "2019-08-01", "resource": "https://vault.azure.net"}
    emu.admin.add_fault(service="identity", status=500, count=1)
    emu.admin.add_fault(service="identity", status=503, count=2)

    codes = [requests.get(emu.identity_endpoint, params=query, headers=headers, timeout=10).status_code
             for _ in range(4)]

    assert codes == [500, 503, 503, 200]
    assert [(f["matched"], f["remaining"]) for f in emu.admin.faults()] == [(1, 0), (2, 0)]
    emu.admin.clear_faults()
    assert emu.admin.faults() == []


def test_reset(emu: Emulator, account: dict[str, Any], secrets_client: Any) -> None:
    extra = emu.admin.create_vault("kv-extra")
    secrets_client.set_secret("gone-after-reset", "v")
    emu.admin.add_fault(service="arm", status=500, count=-1)
    emu.admin.configure(propagation_failures=5)

    emu.admin.reset()

    state = emu.admin.state()
    assert state["accounts"] == [] and emu.admin.faults() == []
    assert [(v["name"], v["secrets"]) for v in state["vaults"]] == [("emulator-vault", [])]
    assert state["config"]["propagationFailures"] == 0
    with pytest.raises(requests.ConnectionError):
        requests.get(extra["uri"], verify=emu.ca_file, timeout=2)
    with pytest.raises(requests.ConnectionError):
        requests.get(account["properties"]["documentEndpoint"], verify=emu.ca_file, timeout=2)
    emu.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)  # the name is free again


def _serve(state_dir: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "local_azure", "serve", "--state-dir", str(state_dir),
                             "--regeneration-seconds", "0.1"],
                            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)


def _env_lines(state_dir: Path) -> dict[str, str]:
    result = subprocess.run([sys.executable, "-m", "local_azure", "env", "--state-dir", str(state_dir)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                            check=True)
    pairs = [line.removeprefix("export ").split("=", 1) for line in result.stdout.splitlines()]
    return {name: value.strip("'") for name, value in pairs}


def test_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    process = _serve(tmp_path)
    try:
        admin = AdminClient.from_state_dir(tmp_path, wait_seconds=20)
        info = json.loads((tmp_path / "emulator.json").read_text())
        assert info["pid"] == process.pid
        admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, ACCOUNT)
        env = _env_lines(tmp_path)
        assert set(env) == {"IDENTITY_ENDPOINT", "IDENTITY_HEADER", "REQUESTS_CA_BUNDLE", "ARM_ENDPOINT"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        client = CosmosDBManagementClient(ManagedIdentityCredential(), SUBSCRIPTION, base_url=env["ARM_ENDPOINT"],
                                          credential_scopes=[f"{env['ARM_ENDPOINT']}/.default"])
        client.database_accounts.list_keys(RESOURCE_GROUP, ACCOUNT)
        issued = admin.issued()["all"]
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=20)

    assert process.returncode == 0
    assert not (tmp_path / "emulator.json").exists()
    assert f"POST /subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}" in stderr
    assert "listKeys 200" in stderr and "identity GET /msi/token 200" in stderr
    assert not [s for s in issued if s in stderr]


def test_env_without_a_running_emulator(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "local_azure", "env", "--state-dir", str(tmp_path)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)

    assert result.returncode == 2
    assert "emulator.json" in result.stderr


def test_in_process_info_file(emu: Emulator) -> None:
    path = emu.write_info()
    info = json.loads(path.read_text())

    assert info == {**emu.info(), "pid": os.getpid()}
    assert Path(info["caFile"]).read_text().startswith("-----BEGIN CERTIFICATE-----")
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_port_in_use_leaves_nothing_running(emu: Emulator, tmp_path: Path) -> None:
    port = int(emu.arm_url.rsplit(":", 1)[1])
    clash = Emulator(tmp_path / "clash", arm_port=port)

    with pytest.raises(OSError):
        clash.start()

    with pytest.raises(RuntimeError):
        _ = clash.arm_url
    assert emu.admin.health() == {"status": "ok"}
