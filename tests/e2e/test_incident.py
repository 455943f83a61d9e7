"""Incident rotation (scope all-keys) end to end: every key of the account replaced, the keys that were live
retired after the grace, each phase recorded, a redelivery finishing the last phase without repeating the
first, the cooldown and the in-use guard overridden."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

from cosmos_key_rotation.runtime import get_runtime
from tests.e2e.openapi_document import answer_problems

ALL_FOUR = {"primary": 1, "secondary": 1, "primaryReadonly": 1, "secondaryReadonly": 1}


def incident(host, world, **body):
    response = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "scope": "all-keys", **body}))
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def test_an_incident_replaces_every_key_and_retires_the_live_one_after_the_grace(world, caplog):
    world.set(INCIDENT_GRACE_SECONDS="1")
    held = world.live_secret().value  # the primary, which applications use
    host = world.host()
    with caplog.at_level(logging.INFO):
        rotation = incident(host, world)
        assert host.process_queues() == 1
    record = get_runtime().records.get(rotation)
    assert (record["status"], record["scope"], record["incidentPhase"]) == ("succeeded", "all-keys", "done")
    assert record["retiredKeyKinds"] == "primary,primaryReadonly,secondaryReadonly"
    # Phase 1 regenerated the secondary and published it; phase 3 the primary and both read-only keys.
    assert world.regeneration_requests() == ALL_FOUR
    live = world.live_secret()
    assert live.properties.tags["keyKind"] == "secondary" and world.key_works(live.value)
    assert not world.key_works(held)  # the leaked key is dead
    assert [r.keyKind for r in events(caplog, "KeyRetired")] == ["primary", "primaryReadonly", "secondaryReadonly"]
    (retiring,) = events(caplog, "KeysRetiring")
    assert "applications have 1 s to re-read" in retiring.getMessage()
    # Hygiene: the version that held the leaked primary is disabled, the live one is not.
    assert [v.enabled for v in world.versions()] == [False, True]
    answer = host.call_http("rotation_status", "GET", f"/api/rotations/{rotation}", route_params={"id": rotation})
    shown = json.loads(answer.get_body())
    assert answer_problems("rotation_status", answer.status_code, dict(answer.headers), shown) == []
    assert shown["incidentPhase"] == "done" and "graceUntil" not in shown  # in-progress fields go when done


def test_the_cooldown_does_not_hold_an_incident_back(world):
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()
    world.set(INCIDENT_GRACE_SECONDS="0")
    rotation = incident(host, world)  # a rotation a minute ago: no 429 for an incident
    host.process_queues()
    assert get_runtime().records.get(rotation)["status"] == "succeeded"
    # The timer's rotation regenerated the secondary; the incident the primary, then the secondary again.
    assert world.regeneration_requests() == {**ALL_FOUR, "secondary": 2}


def test_a_failure_in_the_last_phase_resumes_without_repeating_the_first(world, caplog):
    world.set(INCIDENT_GRACE_SECONDS="0")
    get_runtime().accounts.confirm_wait_seconds = 1.0
    # Phase 1's regenerateKey goes through; the first retiring one gets no clear answer, three times over.
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 503, "skip": 1, "count": 3})
    host = world.host()
    with caplog.at_level(logging.INFO):
        rotation = incident(host, world)
        assert host.process_queues(timeout=120) == 2
    (failed,) = events(caplog, "RotationFailed")
    assert (failed.errorCode, failed.outcome) == ("RegenerationUnconfirmed", "retrying")
    record = get_runtime().records.get(rotation)
    assert (record["status"], record["incidentPhase"]) == ("succeeded", "done")
    assert world.regeneration_requests() == ALL_FOUR  # the secondary once: phase 1 was not repeated


def test_a_long_grace_is_a_continuation_that_holds_the_account(world, caplog):
    world.set(INCIDENT_GRACE_SECONDS="3")
    runtime = get_runtime()
    runtime.worker_wait_seconds = 0.5  # the grace outlasts the first delivery's wait
    host = world.host()
    with caplog.at_level(logging.INFO):
        rotation = incident(host, world)
        # The first delivery rotates, then hands the grace to a continuation invisible until it ends.
        with pytest.raises(TimeoutError):
            host.process_queues(timeout=1.5)
        # Another request while the incident waits: refused, the account is held.
        busy = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "force": True}))
        assert busy.status_code == 409 and b"RotationInProgress" in busy.get_body()
        host.process_queues(timeout=60)
    assert get_runtime().records.get(rotation)["status"] == "succeeded"
    assert world.regeneration_requests() == ALL_FOUR
    (waiting,) = events(caplog, "RotationWaiting")
    assert waiting.phase == "grace"


def test_the_in_use_guard_does_not_stop_an_incident_and_names_who_still_holds_the_old_key(world, caplog):
    from azure.cosmos import CosmosClient

    world.set(LOGS_ENDPOINT=world.emulator.logs_url, KEY_USAGE_WORKSPACE_ID=world.emulator.workspace_id,
              IN_USE_WINDOW_HOURS=str(60 / 3600), INCIDENT_GRACE_SECONDS="0")
    endpoint = world.account_state()["documentEndpoint"]
    with CosmosClient(endpoint, credential=world.emulator.account_keys(world.account)["primary"],
                      user_agent_suffix="slow-app/3.1") as client:
        list(client.list_databases())
    host = world.host()
    with caplog.at_level(logging.INFO):
        rotation = incident(host, world)
        host.process_queues()
    assert get_runtime().records.get(rotation)["status"] == "succeeded"
    (in_use,) = events(caplog, "KeyInUse")
    assert in_use.levelname == "WARNING" and in_use.keyKind == "primary" and "slow-app/3.1" in in_use.getMessage()
    assert "an incident rotation (all keys): the old key is retired now" in in_use.getMessage()


def test_the_cli_replaces_every_key(world, subprocess_env):
    env = {**subprocess_env, **world.env, "INCIDENT_GRACE_SECONDS": "1"}
    run = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--all-keys", "--json"], env=env,
                         capture_output=True, text=True, timeout=180, check=False)
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert result["outcome"] == "succeeded" and result["reason"].startswith("incident: every key replaced")
    assert world.regeneration_requests() == ALL_FOUR
    usage = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--all-keys", "--key-kind",
                            "primary"], env=env, capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "not allowed with argument" in usage.stderr


def test_bad_scopes_are_refused(world):
    host = world.host()
    for body, words in [({"scope": "everything"}, b'must be one of rotation, all-keys'),
                        ({"scope": "all-keys", "keyKind": "primary"}, b"cannot be combined")]:
        response = host.call_http("request_rotation", "POST", "/api/rotations",
                                  body=json.dumps({"target": world.account, **body}))
        assert response.status_code == 400 and b"InvalidScope" in response.get_body() and words in response.get_body()
