"""The in-use guard end to end: an application signing with a key, the emulator's data plane logging it as
Cosmos DB's diagnostic setting would, the product asking Log Analytics (azure-monitor-query, real SDK) who
used the key before regenerating it, through the function app's real handlers and the CLI."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time

from cosmos_key_rotation.runtime import get_runtime
from tests.e2e.openapi_document import answer_problems

WINDOW_SECONDS = 6.0
LEGACY_AGENT = "legacy-billing/1.0"


def guarded(world, **settings):
    world.set(LOGS_ENDPOINT=world.emulator.logs_url, KEY_USAGE_WORKSPACE_ID=world.emulator.workspace_id,
              IN_USE_WINDOW_HOURS=str(WINDOW_SECONDS / 3600), **settings)


def sign_with(world, kind, agent=LEGACY_AGENT, times=3):
    """An application reading the account with one of its keys (the real Cosmos SDK)."""
    from azure.cosmos import CosmosClient

    endpoint = world.account_state()["documentEndpoint"]
    key = world.emulator.account_keys(world.account)[kind]
    with CosmosClient(endpoint, credential=key, user_agent_suffix=agent, retry_total=0) as client:
        for _ in range(times):
            list(client.list_databases())


def request(host, world, **body):
    response = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, **body}))
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def rotate(world, caplog, deliveries=None, **body):
    """Ask for a rotation over HTTP and let the worker run it; the record, and the queue deliveries it took."""
    host = world.host()
    with caplog.at_level(logging.INFO):
        rotation = request(host, world, **body)
        delivered = host.process_queues()
    if deliveries is not None:
        assert delivered == deliveries
    return get_runtime().records.get(rotation)


def answer(host, rotation_id):
    response = host.call_http("rotation_status", "GET", f"/api/rotations/{rotation_id}",
                              route_params={"id": rotation_id})
    return response.get_body().decode()


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def assert_no_key_in(world, *texts):
    for key in world.emulator.account_keys(world.account).values():
        assert all(key not in text for text in texts)


def test_a_key_an_application_still_uses_is_refused_naming_it_then_rotated_once_unused(world, caplog):
    guarded(world)
    sign_with(world, "secondary")  # the key the next rotation would regenerate
    host = world.host()
    with caplog.at_level(logging.INFO):
        refused = request(host, world)
        assert host.process_queues() == 1  # permanent: not retried
    record = get_runtime().records.get(refused)
    assert (record["status"], record["errorCode"]) == ("failed", "KeyStillInUse")
    assert f"secondary key of {world.account} used by 1 client(s)" in record["errorMessage"]
    assert f"in the last {WINDOW_SECONDS:g} s: 127.0.0.1 (azsdk-python-cosmos/" in record["errorMessage"]
    assert f"{LEGACY_AGENT}) " in record["errorMessage"] and " requests, last 20" in record["errorMessage"]
    (in_use,) = events(caplog, "KeyInUse")
    assert in_use.levelname == "ERROR" and in_use.keyKind == "secondary" and in_use.guard == "enforce"
    (client,) = json.loads(in_use.clients)
    assert client["requests"] >= 3 and LEGACY_AGENT in client["userAgent"] and client["clientIp"]
    assert world.regeneration_requests()["secondary"] == 0  # nothing regenerated
    assert_no_key_in(world, caplog.text, json.dumps(record), answer(host, refused))

    # The application moves to the published secret (the primary); once the window has passed since its last
    # use of the secondary, the next rotation regenerates the secondary.
    time.sleep(WINDOW_SECONDS)
    sign_with(world, "primary")
    caplog.clear()
    with caplog.at_level(logging.INFO):
        rotated = request(host, world)
        assert host.process_queues() == 1
    assert get_runtime().records.get(rotated)["status"] == "succeeded"
    assert events(caplog, "KeyInUse") == []
    world.assert_invariants(None, {"secondary": 1})


def test_warn_rotates_and_logs_the_clients(world, caplog):
    guarded(world, IN_USE_GUARD="warn")
    sign_with(world, "secondary")
    record = rotate(world, caplog)
    assert record["status"] == "succeeded"
    (in_use,) = events(caplog, "KeyInUse")
    assert in_use.levelname == "WARNING" and "rotating anyway: IN_USE_GUARD=warn" in in_use.getMessage()
    assert world.regeneration_requests()["secondary"] == 1


def test_force_rotates_and_says_so(world, caplog):
    guarded(world)
    sign_with(world, "secondary")
    record = rotate(world, caplog, force=True)
    assert record["status"] == "succeeded"
    (in_use,) = events(caplog, "KeyInUse")
    assert in_use.levelname == "WARNING" and in_use.forced is True
    assert "rotating anyway: the request says force" in in_use.getMessage()


def test_a_failing_query_is_transient_under_enforce_and_never_a_silent_pass(world, caplog):
    guarded(world)
    sign_with(world, "primary")
    # The identity lost its role on the workspace, then got it back: one delivery fails, the next rotates.
    world.admin.add_fault({"service": "logs", "operation": "query", "status": 403,
                           "errorCode": "InsufficientAccessError", "count": 1})
    record = rotate(world, caplog, deliveries=2)
    (failed,) = events(caplog, "RotationFailed")
    assert (failed.errorCode, failed.outcome) == ("KeyUsageQueryFailed", "retrying")
    assert "Log Analytics answered 403 InsufficientAccessError" in failed.errorMessage
    assert record["status"] == "succeeded"
    world.assert_invariants(None, {"secondary": 1})


def test_an_account_without_diagnostic_logs_is_key_usage_unknown(world, caplog):
    guarded(world)
    world.admin.set_diagnostics(world.account, None)
    record = rotate(world, caplog)
    assert (record["status"], record["errorCode"]) == ("failed", "KeyUsageUnknown")
    assert "no diagnostic setting sends DataPlaneRequests" in record["errorMessage"]
    assert world.regeneration_requests()["secondary"] == 0


def test_a_fixed_strategy_regenerates_the_live_key_and_names_who_loses_it(world, caplog):
    guarded(world, KEY_STRATEGY="primary")
    sign_with(world, "primary", agent="orders/2.0")
    record = rotate(world, caplog)
    assert record["status"] == "succeeded"
    (in_use,) = events(caplog, "KeyInUse")
    message = in_use.getMessage()
    assert in_use.levelname == "WARNING" and "orders/2.0" in message and "lose it now" in message


def test_status_shows_the_clients_of_each_key(world, subprocess_env):
    guarded(world)
    sign_with(world, "secondary")
    env = {**subprocess_env, **world.env}
    run = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "status", "--json"], env=env,
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    (target,) = json.loads(run.stdout)["targets"]
    usage = target["keyUsage"]
    assert usage["keys"]["secondaryMasterKey"]["clients"] == 1
    assert usage["keys"]["primaryReadonlyMasterKey"]["clients"] == 0
    assert usage["requestsSeen"] >= 3
    table = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "status"], env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert "clients in the last" in table.stdout and "secondaryMasterKey 1" in table.stdout
    assert_no_key_in(world, run.stdout, run.stderr, table.stdout, table.stderr)


def test_the_targets_route_shows_key_usage_as_documented(world):
    guarded(world)
    sign_with(world, "secondary")
    response = world.host().call_http("targets", "GET", "/api/targets")
    document = json.loads(response.get_body())
    assert answer_problems("targets", response.status_code, dict(response.headers), document) == []
    (target,) = document["targets"]
    assert target["keyUsage"]["keys"]["secondaryMasterKey"]["clients"] == 1
    world.admin.add_fault({"service": "logs", "operation": "query", "status": 403, "count": -1})
    response = world.host().call_http("targets", "GET", "/api/targets")
    document = json.loads(response.get_body())
    assert answer_problems("targets", response.status_code, dict(response.headers), document) == []
    assert document["targets"][0]["keyUsage"]["error"]["code"] == "KeyUsageQueryFailed"


def test_the_logs_api_throttling_is_waited_out(world, caplog):
    guarded(world)
    sign_with(world, "primary")
    world.admin.add_fault({"service": "logs", "operation": "query", "status": 429, "retryAfter": 1, "count": 5})
    # More 429s than azure-core's 3 status retries, and no failure: one delivery.
    record = rotate(world, caplog, deliveries=1)
    assert record["status"] == "succeeded"
    assert all(rule["remaining"] == 0 for rule in world.admin.faults())


def test_a_dry_run_fails_where_the_guard_would_refuse(world, subprocess_env):
    guarded(world)
    sign_with(world, "secondary")
    run = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--dry-run", "--json"],
                         env={**subprocess_env, **world.env}, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 1, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert (result["outcome"], result["errorCode"]) == ("failed", "KeyStillInUse")
    assert world.regeneration_requests()["secondary"] == 0
