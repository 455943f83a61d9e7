"""Fleet scale, end to end: regenerations that outlast a function invocation are carried by continuation
messages, while the account stays one rotation's."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from cosmos_key_rotation.runtime import get_runtime


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def wait_until(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_regeneration_longer_than_several_deliveries_is_carried_by_continuations(world, subprocess_env, caplog):
    runtime = get_runtime()
    runtime.worker_wait_seconds = 1.0  # hand over after a second of waiting (60 s in Azure)
    runtime.continuation_delay_scale = 0.1  # continuation checks 1, 2, 4, ... s apart (10, 20, 40 s in Azure)
    world.admin.configure(regenerationSeconds=8.0, pollRetryAfterMs=0)
    held = world.live_secret().value
    host = world.host()
    host.run_timer("scheduled_rotation")
    worker = threading.Thread(target=host.process_queues, kwargs={"timeout": 120})
    with caplog.at_level("INFO"):
        worker.start()
        wait_until(lambda: events(caplog, "RotationWaiting"))
        (waiting,) = events(caplog, "RotationWaiting")[:1]
        record = runtime.records.shown(waiting.rotationId)
        assert (record["status"], record["phase"], record["regeneratingKeyKind"]) == (
            "running", "regenerating", "secondary")
        # A second request in the middle: refused at once over HTTP, skipped by the CLI; nothing regenerated.
        response = host.call_http("request_rotation", "POST", "/api/rotations",
                                  body=json.dumps({"target": world.account, "force": True}))
        answer = json.loads(response.get_body())
        assert response.status_code == 409 and answer["error"]["code"] == "RotationInProgress"
        assert "waiting for Azure" in answer["error"]["message"]
        done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--force", "--json"],
                              env=subprocess_env, capture_output=True, text=True, timeout=120)
        (skipped,) = json.loads(done.stdout)["results"]
        assert skipped["outcome"] == "skipped" and "waiting for Azure" in skipped["reason"]
        worker.join(150)
    assert not worker.is_alive()
    waits = events(caplog, "RotationWaiting")
    assert len(waits) >= 3, [w.reason for w in waits]  # several deliveries while Azure regenerated
    assert {w.phase for w in waits} == {"regenerating"} and {w.rotationId for w in waits} == {waiting.rotationId}
    final = runtime.records.shown(waiting.rotationId)
    assert final["status"] == "succeeded" and "phase" not in final and "regeneratingKeyKind" not in final
    assert world.live_secret().properties.tags["rotationId"] == waiting.rotationId
    world.assert_invariants(held, {"secondary": 1})
    # The account is free again: the marker went with the rotation.
    assert get_runtime().leases.in_progress(runtime.settings.target(world.account)) is None


def test_a_new_key_propagating_slowly_is_verified_by_continuations(world, caplog):
    runtime = get_runtime()
    runtime.worker_wait_seconds = 1.0
    runtime.continuation_delay_scale = 0.1
    world.admin.add_fault({"service": "dataplane", "status": 401, "count": 12})  # about 3 s of refusals
    held = world.live_secret().value
    host = world.host()
    host.run_timer("scheduled_rotation")
    with caplog.at_level("INFO"):
        host.process_queues(timeout=120)
    waits = events(caplog, "RotationWaiting")
    assert waits and {w.phase for w in waits} == {"verifying"}
    assert events(caplog, "RotationSucceeded")
    world.assert_invariants(held, {"secondary": 1})


def test_the_cli_waits_in_process_and_says_so(world, subprocess_env):
    world.admin.configure(regenerationSeconds=12.0, pollRetryAfterMs=0)
    done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--json"], env=subprocess_env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["outcome"] == "succeeded"
    progress = [line for line in done.stderr.splitlines() if "regenerating the secondary key" in line]
    assert progress and progress[-1].endswith("s so far")


def test_accounts_are_discovered_by_tag_and_an_unadopted_one_is_reported_once(empty_world, subprocess_env, caplog):
    from tests.conftest import RESOURCE_GROUP, SUBSCRIPTION

    world = empty_world
    tagged = {"cosmos-key-rotation": "enabled"}
    base = world.account
    names = [f"{base}-d{i}" for i in range(3)]
    world.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, names[0], tags={**tagged,
                               "cosmos-key-rotation-live-key": "primary"})  # declares its live key
    world.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, names[1], tags=tagged)  # adopted below
    world.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, names[2], tags=tagged)  # never adopted
    world.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, f"{base}-x", tags={"team": "other"})
    env = {"DISCOVERY_SUBSCRIPTIONS": SUBSCRIPTION, "DISCOVERY_KEY_VAULT_URI": world.env["KEY_VAULT_URI"],
           "COSMOS_ACCOUNT_NAME": "", "COSMOS_SUBSCRIPTION_ID": "", "COSMOS_RESOURCE_GROUP": ""}
    world.set(**env)
    subprocess_env.update(env)
    adopted = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "adopt", "--target", names[1],
                              "--key-kind", "primary", "--json"], env=subprocess_env, capture_output=True, text=True,
                             timeout=120)
    assert adopted.returncode == 0, adopted.stderr
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        host.process_queues(timeout=120)
    ours = [r for r in caplog.records if getattr(r, "target", "").startswith(base)]
    scheduled = {r.target for r in ours if getattr(r, "event", None) == "RotationScheduled"}
    assert scheduled == {names[0], names[1]}  # not the untagged one, nor the one nobody adopted
    (summary,) = events(caplog, "TargetsDiscovered")
    assert summary.levelname == "WARNING" and names[2] in summary.reason and "not adopted" in summary.reason
    assert all(getattr(r, "origin", None) == "discovered" for r in ours if getattr(r, "event", "") == "RotationStarted")
    assert world.live_secret(f"cosmos-{names[0]}-connection-string").properties.tags["keyKind"] == "primary"
    assert world.live_secret(f"cosmos-{names[1]}-connection-string").properties.tags["keyKind"] == "secondary"
    status = json.loads(subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "status", "--json"],
                                       env=subprocess_env, capture_output=True, text=True, timeout=120).stdout)
    shown = {t["target"]: t for t in status["targets"] if t["target"].startswith(base)}
    assert set(shown) == set(names) and {t["origin"] for t in shown.values()} == {"discovered"}
    assert shown[names[2]]["adopted"] is False


def test_a_regeneration_past_its_timeout_ends_regeneration_timed_out(world, caplog):
    from dataclasses import replace

    runtime = get_runtime()
    runtime.worker_wait_seconds = 1.0
    runtime.continuation_delay_scale = 0.1
    # REGENERATION_TIMEOUT_MINUTES counts whole minutes; scaled here as the delays are (0.05 min = 3 s).
    runtime.settings = replace(runtime.settings, regeneration_timeout_minutes=0.05)
    world.admin.configure(regenerationSeconds=600.0, pollRetryAfterMs=0)
    held = world.live_secret().value
    host = world.host()
    host.run_timer("scheduled_rotation")
    with caplog.at_level("INFO"):
        host.process_queues(timeout=60)
    assert events(caplog, "RotationWaiting")
    (failed,) = events(caplog, "RotationFailed")
    assert failed.errorCode == "RegenerationTimedOut" and "REGENERATION_TIMEOUT_MINUTES" in failed.errorMessage
    assert not events(caplog, "RotationSucceeded")
    # Nothing published; the key applications hold is untouched; the account is free for the next rotation.
    assert world.live_secret().value == held and world.key_works(held)
    assert runtime.leases.in_progress(runtime.settings.target(world.account)) is None


def test_a_fleet_under_resource_manager_throttling_rotates_every_account(world, subprocess_env):
    """Azure's buckets, shrunk so that a handful of accounts empties them: every 429 is absorbed (its
    Retry-After honoured, regenerateKey sent again), no rotation fails, none regenerates twice."""
    from tests.conftest import RESOURCE_GROUP, SUBSCRIPTION

    names = [f"{world.account}-f{i}" for i in range(8)]
    for name in names:
        world.admin.create_account(SUBSCRIPTION, RESOURCE_GROUP, name)
    targets = [{"name": n, "subscriptionId": SUBSCRIPTION, "resourceGroup": RESOURCE_GROUP, "account": n,
                "keyVaultUri": world.env["KEY_VAULT_URI"]} for n in names]
    subprocess_env.update({"ROTATION_TARGETS": json.dumps(targets), "COSMOS_ACCOUNT_NAME": "",
                           "COSMOS_SUBSCRIPTION_ID": "", "COSMOS_RESOURCE_GROUP": "", "VERIFY_NEW_KEY": "false"})

    def cli(*args):
        done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", *args, "--json"], env=subprocess_env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return json.loads(done.stdout)["results"]

    cli("adopt", "--all", "--key-kind", "primary")
    world.admin.configure(regenerationSeconds=0.5, pollRetryAfterMs=0, armReadBucket=[6, 4], armWriteBucket=[3, 2])
    world.admin.reset_metrics()
    try:
        results = cli("rotate", "--all")
    finally:
        world.admin.set_throttling(True)
    metrics = world.admin.reset_metrics()
    assert {r["target"]: r["outcome"] for r in results} == {n: "succeeded" for n in names}
    assert metrics["arm"]["throttled"] > 0  # the buckets did run dry
    regenerations = metrics["arm"]["operations"]["regenerateKey"]
    assert regenerations["requests"] - regenerations["throttled"] == len(names)  # each acted once
