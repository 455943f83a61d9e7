"""The fault campaign: each fault, then the retry that follows it (the queue's next delivery, or the next
run), through the real entry points, the real SDKs, the emulator and Azurite behind the storage front.
Every test ends with `world.assert_invariants`: the latest secret version authenticates, the key that was
live before still works, and no key was regenerated twice for one rotation; and checks that the record and
the events name what happened with a product error code."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time

import pytest

from cosmos_key_rotation import budgets
from cosmos_key_rotation.error_codes import CODES
from cosmos_key_rotation.runtime import get_runtime

ARM_403 = ("The client 'c0ffee00-0000-0000-0000-000000000001' with object id 'c0ffee00-0000-0000-0000-000000000001' "
           "does not have authorization to perform action 'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action' "
           "over scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your "
           "credentials.")
LOCKED = ("The scope '{scope}' cannot perform write operation because following scope(s) are locked: "
          "'/subscriptions/{sub}/resourceGroups/{group}'. Please remove the lock and try again.")


def rotated_once(world):
    """The starting point of most tests: the timer rotated once, the secondary key is live and held."""
    host = world.host()
    host.run_timer("scheduled_rotation")
    assert host.process_queues() == 1
    secret = world.live_secret()
    assert secret.properties.tags["keyKind"] == "secondary"
    return host, secret.value


def request(host, world, **body):
    response = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "force": True, **body}))
    assert response.status_code == 202, response.get_body()
    return json.loads(response.get_body())["id"]


def record(rotation_id):
    return get_runtime().records.get(rotation_id)


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def failed_codes(caplog):
    codes = [r.errorCode for r in events(caplog, "RotationFailed")]
    assert set(codes) <= set(CODES), codes
    return codes


def quick(world, confirm_wait=3.0):
    """Shorter waits than production's, for the runtime the host's functions use."""
    get_runtime().accounts.confirm_wait_seconds = confirm_wait


def arm_scope(world):
    return (f"/subscriptions/{world.env['COSMOS_SUBSCRIPTION_ID']}/resourceGroups/{world.env['COSMOS_RESOURCE_GROUP']}"
            f"/providers/Microsoft.DocumentDB/databaseAccounts/{world.account}")


# -- Resource Manager -------------------------------------------------------------------------------------


def test_throttling_on_every_resource_manager_call_is_absorbed(world, caplog):
    host, held = rotated_once(world)
    rotation = request(host, world)
    for operation in ("getAccount", "listKeys", "regenerateKey", "operationStatus"):
        world.admin.add_fault({"service": "arm", "operation": operation, "status": 429, "retryAfter": 1})
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1  # one delivery: nothing failed
    assert all(rule["remaining"] == 0 for rule in world.admin.faults())
    assert record(rotation)["status"] == "succeeded" and failed_codes(caplog) == []
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_server_errors_beyond_the_sdk_retries_fail_transient_and_the_next_delivery_finishes(world, caplog):
    quick(world)
    host, held = rotated_once(world)
    rotation = request(host, world)
    # azure-core sends each read 4 times (3 retries): two deliveries fail reading the new key, after the
    # regeneration; the third finishes it without regenerating again.
    world.admin.add_fault({"service": "arm", "operation": "listKeys", "status": 503, "count": 8})
    with caplog.at_level("INFO"):
        assert host.process_queues(timeout=120) == 3
    assert failed_codes(caplog) == ["ServiceUnavailable", "ServiceUnavailable"]
    assert {r.outcome for r in events(caplog, "RotationFailed")} == {"retrying"}
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


@pytest.mark.parametrize("fault", [{"status": 503, "acted": True}, {"drop": True, "acted": True},
                                   {"status": 500, "acted": True}], ids=["503", "dropped", "500"])
def test_a_lost_answer_to_the_regeneration_is_never_sent_again(world, fault, caplog):
    # Cosmos DB acted, then the answer was lost. azure-core would re-send a POST answered 500/503 at once.
    quick(world)
    host, held = rotated_once(world)
    rotation = request(host, world)
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", **fault})
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_an_unclear_answer_that_did_not_act_is_sent_again_after_watching_the_account(world, caplog):
    quick(world, confirm_wait=2.0)
    host, held = rotated_once(world)
    rotation = request(host, world)
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 503})  # refused, not acted
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_a_read_lagging_behind_the_regeneration_is_read_again_never_published(world):
    host, held = rotated_once(world)
    rotation = request(host, world)
    # The first reads after the regeneration still show the old generationTime.
    world.admin.add_fault({"service": "arm", "operation": "getAccount", "stale": True, "count": 3})
    host.process_queues()
    assert record(rotation)["status"] == "succeeded"
    assert world.live_secret().properties.tags["keyKind"] == "primary"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_a_regeneration_that_ends_failed_is_retried(world, caplog):
    host, held = rotated_once(world)
    rotation = request(host, world)
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", "lroStatus": "Failed"})
    with caplog.at_level("INFO"):
        assert host.process_queues() == 2
    assert failed_codes(caplog) == ["RegenerationFailed"]
    assert record(rotation)["status"] == "succeeded"
    # The failed operation changed nothing; the retry's regeneration is the only one that acted.
    assert world.regenerations()["primary"] == 1
    world.assert_invariants(held, {"secondary": 1, "primary": 2})


@pytest.mark.parametrize("status, code, message, words", [
    (403, "AuthorizationFailed", ARM_403,
     "lacks permission Microsoft.DocumentDB/databaseAccounts/regenerateKey/action"),
    (409, "ScopeLocked", LOCKED, "locked scope(s): '/subscriptions/"),
], ids=["403", "locked"])
def test_a_refusal_retrying_cannot_fix_fails_at_once_with_what_to_do(world, caplog, status, code, message, words):
    host, held = rotated_once(world)
    rotation = request(host, world)
    text = message.format(scope=arm_scope(world), sub=world.env["COSMOS_SUBSCRIPTION_ID"],
                          group=world.env["COSMOS_RESOURCE_GROUP"])
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": status, "errorCode": code,
                           "errorMessage": text, "count": -1})
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1  # not retried
    done = record(rotation)
    assert (done["status"], done["errorCode"]) == ("failed", code) and words in done["errorMessage"]
    (failure,) = events(caplog, "RotationFailed")
    assert (failure.levelname, failure.outcome, failure.errorCode) == ("ERROR", "failed", code)
    world.assert_invariants(held, {"secondary": 1})


def test_an_account_that_does_not_exist_fails_at_once(world, caplog):
    world.set(COSMOS_ACCOUNT_NAME=f"{world.account}-gone")
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        assert host.process_queues() == 1
    (failure,) = events(caplog, "RotationFailed")
    assert (failure.errorCode, failure.outcome) == ("AccountNotFound", "failed")


def test_a_regeneration_slower_than_the_function_timeout_resumes_on_the_next_delivery(world, subprocess_env):
    host, held = rotated_once(world)
    world.admin.configure(regenerationSeconds=4.0)
    # The first attempt dies while Azure regenerates (the host kills an invocation that times out).
    run = subprocess.Popen([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--force", "--json"],
                           env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: world.regeneration_requests()["primary"] == 1)
    run.kill()
    run.wait()
    break_lease(world)  # what its expiry does a minute later
    rotation = request(host, world)
    # The next delivery finds the operation still running (412: retried) or done (resumed); never a new one.
    host = world.host(visibility_timeout=1.5)
    host.process_queues(timeout=120)
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


# -- Key Vault ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("operation", ["getSecret", "setSecret"])
def test_key_vault_throttling_and_outage_beyond_the_retries(world, caplog, monkeypatch, operation):
    quick(world)
    # Production waits out 429s for 10 minutes; 2 s here. With Retry-After 1 the budget policy sends 3 times
    # (0, 1, 2 s), then each of azure-core's 3 status retries once: 6 throttled answers fail one delivery.
    monkeypatch.setattr(budgets, "THROTTLED_PATIENCE_SECONDS", 2.0)
    host, held = rotated_once(world)
    rotation = request(host, world)
    # The next delivery meets a 503 sent 4 times (3 retries); the third delivery works.
    world.admin.add_fault({"service": "vault", "operation": operation, "status": 429, "retryAfter": 1, "count": 6})
    world.admin.add_fault({"service": "vault", "operation": operation, "status": 503, "count": 4})
    with caplog.at_level("INFO"):
        assert host.process_queues(timeout=120) == 3
    assert failed_codes(caplog) == ["Throttled", "ServiceUnavailable"]
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_key_vault_refusing_the_identity_is_permanent(world, caplog):
    host, held = rotated_once(world)
    rotation = request(host, world)
    message = ("Caller is not authorized to perform action on resource.\r\nCaller: appid=x;oid=y\r\n"
               "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\nResource: 'vault'\r\n")
    world.admin.add_fault({"service": "vault", "operation": "setSecret", "status": 403, "errorCode": "Forbidden",
                           "errorMessage": message, "count": -1})
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1
    done = record(rotation)
    assert done["errorCode"] == "AuthorizationFailed"
    assert "Microsoft.KeyVault/vaults/secrets/setSecret/action" in done["errorMessage"]
    world.admin.clear_faults()
    # The role is granted: the next run publishes the key already regenerated, without regenerating it.
    assert get_runtime().rotator().rotate(new_request(world)).outcome == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_a_soft_deleted_secret_is_reported_and_never_treated_as_missing(world, caplog):
    host, held = rotated_once(world)
    world.secret_client().begin_delete_secret(world.secret_name).result()
    refused = host.call_http("request_rotation", "POST", "/api/rotations",
                             body=json.dumps({"target": world.account, "force": True}))
    assert refused.status_code == 409 and json.loads(refused.get_body())["error"]["code"] == "SecretDeleted"
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        assert host.process_queues() == 1  # not retried
    (failure,) = events(caplog, "RotationFailed")
    done = record(failure.rotationId)
    assert (done["status"], done["errorCode"]) == ("failed", "SecretDeleted")
    assert "recover" in done["errorMessage"] and "purge" in done["errorMessage"]
    assert world.regeneration_requests()["primary"] == world.regeneration_requests()["secondary"] - 1 == 0
    world.secret_client().begin_recover_deleted_secret(world.secret_name).result()
    assert get_runtime().rotator().rotate(new_request(world, force=True)).outcome == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


# -- the data plane -----------------------------------------------------------------------------------------


def test_a_new_key_refused_for_a_while_is_published_once_it_works(world):
    host, held = rotated_once(world)
    world.admin.configure(propagationFailures=6)
    rotation = request(host, world)
    host.process_queues()
    assert record(rotation)["status"] == "succeeded"
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_a_new_key_never_accepted_is_not_published_and_the_next_run_finishes(world):
    world.set(VERIFY_TIMEOUT_SECONDS="2")
    _host, held = rotated_once(world)
    before = world.live_secret().properties.version
    world.admin.add_fault({"service": "dataplane", "status": 401, "count": -1})
    failed = get_runtime().rotator().rotate(new_request(world, force=True))
    assert (failed.outcome, failed.error_code, failed.transient) == ("failed", "VerificationTimedOut", True)
    assert world.live_secret().properties.version == before
    world.admin.clear_faults()
    resumed = get_runtime().rotator().rotate(new_request(world))  # inside the cooldown: resuming is allowed
    assert (resumed.outcome, resumed.key_kind) == ("succeeded", "primary")
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_under_a_fixed_strategy_the_new_key_is_published_before_it_verifies(world, caplog):
    world.set(KEY_STRATEGY="primary", VERIFY_TIMEOUT_SECONDS="2", MIN_ROTATION_INTERVAL_MINUTES="0")
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()
    world.admin.add_fault({"service": "dataplane", "status": 401, "count": -1})
    rotation = request(host, world)
    with caplog.at_level("INFO"):
        assert host.process_queues() == 1  # published already: not retried
    done = record(rotation)
    assert (done["status"], done["errorCode"]) == ("failed", "PublishedKeyUnverified")
    (failure,) = events(caplog, "RotationFailed")
    assert failure.levelname == "ERROR" and failure.outcome == "failed"
    world.admin.clear_faults()
    # The old key died with the regeneration; what is published is the only key that works.
    assert done["secretVersion"] == world.live_secret().properties.version
    world.assert_invariants(None, {"primary": 2})


# -- storage ------------------------------------------------------------------------------------------------


def test_a_lease_held_by_another_rotation_is_waited_for_then_skipped_not_failed(world, subprocess_env):
    runtime = get_runtime()
    target = runtime.settings.target(world.account)
    with runtime.leases.hold(target):
        done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--json"],
                              env=subprocess_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert result["outcome"] == "skipped" and result["reason"].startswith("RotationInProgress")
    assert sum(world.regeneration_requests().values()) == 0


def test_a_renewal_failing_mid_rotation_stops_before_publishing_and_the_next_run_finishes(world, caplog):
    from cosmos_key_rotation.leases import Leases

    _host, held = rotated_once(world)
    runtime = get_runtime()
    # A 20 s lease is confirmed only while its last renewal is under 5 s old; the regeneration takes 7 s.
    runtime.leases = Leases(runtime.clients.blob_service(), lease_seconds=20, renew_every=1)
    world.admin.configure(regenerationSeconds=7.0)
    world.azurite.faults.add({"service": "storage", "operation": "renewLease", "status": 500, "count": -1})
    with caplog.at_level("INFO"):
        fenced = runtime.rotator().rotate(new_request(world, force=True))
    assert (fenced.outcome, fenced.error_code, fenced.transient) == ("failed", "LeaseLost", True)
    assert world.live_secret().value == held
    world.azurite.faults.clear()
    world.admin.configure(regenerationSeconds=0.1)
    finished = runtime.rotator().rotate(new_request(world))
    assert (finished.outcome, finished.key_kind) == ("succeeded", "primary")
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


def test_a_holder_killed_between_regeneration_and_publication(world, subprocess_env):
    _host, held = rotated_once(world)
    world.admin.add_fault({"service": "vault", "operation": "setSecret", "delaySeconds": 60})
    run = subprocess.Popen([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--force", "--json"],
                           env=subprocess_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: world.regenerations()["primary"] == 1)
    time.sleep(1.0)  # verifying, then publishing (held up by the slow vault)
    os.kill(run.pid, signal.SIGKILL)
    run.wait()
    world.admin.clear_faults()
    target = get_runtime().settings.target(world.account)
    assert get_runtime().leases.is_held(target)
    # The real lease expiry (LEASE_SECONDS), not a simulated one.
    wait_until(lambda: not get_runtime().leases.is_held(target), timeout=75)
    finished = get_runtime().rotator().rotate(new_request(world))
    assert (finished.outcome, finished.key_kind) == ("succeeded", "primary")
    world.assert_invariants(held, {"secondary": 1, "primary": 1})


# -- poison and bad messages --------------------------------------------------------------------------------


def test_five_transient_failures_go_to_the_poison_queue_and_the_record_says_why(world, caplog):
    host, held = rotated_once(world)
    rotation = request(host, world)
    world.admin.add_fault({"service": "arm", "operation": "getAccount", "status": 503, "count": -1})
    with caplog.at_level("INFO"):
        host.process_queues(timeout=120)
    assert [r.outcome for r in events(caplog, "RotationFailed")] == ["retrying"] * host.max_dequeue_count
    (abandoned,) = events(caplog, "RotationAbandoned")
    assert (abandoned.levelname, abandoned.errorCode) == ("ERROR", "ServiceUnavailable")
    done = record(rotation)
    assert done["status"] == "failed" and "gave up after 5 attempts" in done["errorMessage"]
    world.admin.clear_faults()
    world.assert_invariants(held, {"secondary": 1})


def test_malformed_messages_are_logged_and_dropped_never_retried(world, caplog):
    from azure.core.exceptions import ResourceExistsError

    client = get_runtime().clients.queue("key-rotation-requests")  # the SDK client under the product's queue
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    bad = ["not json", json.dumps({"id": "x", "target": world.account, "trigger": "cron"}),
           json.dumps({"id": "y", "target": world.account, "trigger": "timer", "keyKind": "primaryReadonly"})]
    for body in bad:
        client.send_message(body)
    host = world.host()
    with caplog.at_level("INFO"):
        assert host.process_queues() == len(bad)  # each delivered once, dropped
    dropped = [r for r in caplog.records if "dropped queue message" in r.getMessage()]
    assert len(dropped) == len(bad) and all(r.levelname == "ERROR" for r in dropped)
    assert sum(world.regeneration_requests().values()) == 0
    assert events(caplog, "RotationAbandoned") == []


# -- the timer ----------------------------------------------------------------------------------------------


def test_a_timer_run_that_cannot_enqueue_is_retried_and_says_so(world, caplog, monkeypatch):
    from cosmos_key_rotation.errors import RotationError
    from cosmos_key_rotation.rotation_queue import RotationQueue

    send = RotationQueue.send
    failures = iter([RotationError("ServiceUnavailable", "Storage answered 503 while trying to enqueue")])

    def flaky(self, request):
        error = next(failures, None)
        if error is not None:
            raise error
        send(self, request)

    monkeypatch.setattr(RotationQueue, "send", flaky)
    host = world.host()
    with caplog.at_level("INFO"):
        assert host.run_timer("scheduled_rotation") == 2  # the retry policy ran it again
        assert host.process_queues() == 1
    (failure,) = events(caplog, "ScheduleFailed")
    assert failure.levelname == "ERROR" and failure.errorCode == "ServiceUnavailable"
    world.assert_invariants(None, {"secondary": 1})


# -- logs ---------------------------------------------------------------------------------------------------


def test_a_clean_rotation_logs_nothing_at_warning_or_error(world, caplog):
    host, _ = rotated_once(world)
    request(host, world)
    # Normal during propagation: the client's first read of the account succeeds, and its background health
    # check of the account's endpoints (a region the new key has not reached yet) is refused and retried
    # 500 ms later, after the verification is done with the client.
    world.admin.add_fault({"service": "dataplane", "operation": "readAccount", "status": 401, "skip": 1})
    with caplog.at_level(logging.DEBUG):
        host.process_queues()
        time.sleep(2.0)  # the SDK's background endpoint health check runs after the client is done
    loud = [f"{r.name}: {r.getMessage()}" for r in caplog.records if r.levelno >= logging.WARNING]
    assert loud == []


def test_the_function_app_redacts_every_logger_and_quiets_the_sdks(world, caplog):
    import function_app  # noqa: F401  (importing it is what configures the worker's logging)

    key = "Q" * 86 + "=="
    assert logging.getLogger("azure").level == logging.WARNING
    with caplog.at_level(logging.INFO):
        logging.getLogger("some.library").info("connected with AccountKey=%s;", key)
    assert key not in caplog.text and "AccountKey=[redacted]" in caplog.text


# -- helpers ------------------------------------------------------------------------------------------------


def new_request(world, **kwargs):
    from cosmos_key_rotation.rotation import RotationRequest

    return RotationRequest.new(world.account, "cli", **kwargs)


def wait_until(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def break_lease(world):
    """End the account's lease now, as its expiry would (LEASE_SECONDS after its holder died)."""
    from azure.storage.blob import BlobLeaseClient, BlobServiceClient

    from cosmos_key_rotation.leases import lease_blob_name
    from cosmos_key_rotation.names import LEASE_CONTAINER

    target = get_runtime().settings.target(world.account)
    blob = BlobServiceClient.from_connection_string(world.azurite.connection_string).get_blob_client(
        LEASE_CONTAINER, lease_blob_name(target))
    BlobLeaseClient(blob).break_lease(lease_break_period=0)
