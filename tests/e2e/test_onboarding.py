"""Onboarding and the operator's day, end to end: never guess which key applications use; adopt, declare,
roll back, pause; a live key changed outside the product; secrets disabled, deleted or expired."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest

from cosmos_key_rotation.cli import main
from cosmos_key_rotation.runtime import get_runtime
from tests.conftest import RESOURCE_GROUP, SUBSCRIPTION


def cli(env, *args):
    return subprocess.run([sys.executable, "-m", "cosmos_key_rotation", *args], env=env, capture_output=True,
                          text=True, timeout=120)


def events(caplog, name):
    return [r for r in caplog.records if getattr(r, "event", None) == name]


def post(host, **body):
    response = host.call_http("request_rotation", "POST", "/api/rotations", body=json.dumps(body))
    return response.status_code, json.loads(response.get_body())


# -- never guess ----------------------------------------------------------------------------------------------


def test_with_no_secret_nothing_is_regenerated_whoever_asks(empty_world, subprocess_env, caplog):
    world = empty_world
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        assert host.process_queues() == 1  # failed for good: not retried
    (failure,) = events(caplog, "RotationFailed")
    assert (failure.errorCode, failure.outcome, failure.levelname) == ("NoLiveSecret", "failed", "ERROR")
    assert "adopt" in failure.errorMessage
    status, body = post(host, target=world.account, force=True)
    assert (status, body["error"]["code"]) == (409, "NoLiveSecret")
    for args in (["rotate", "--json"], ["rotate", "--force", "--json"], ["rotate", "--dry-run", "--json"]):
        done = cli(subprocess_env, *args)
        assert done.returncode == 1, (args, done.stderr)
        (result,) = json.loads(done.stdout)["results"]
        assert (result["outcome"], result["errorCode"]) == ("failed", "NoLiveSecret")
    assert sum(world.regeneration_requests().values()) == 0
    assert world.live_secret() is None


def test_adopt_publishes_the_key_applications_use_and_rotations_alternate_from_there(empty_world, subprocess_env,
                                                                                       caplog):
    world = empty_world
    world.set(READONLY_SECRET_NAME=f"{world.account}-ro")
    subprocess_env["READONLY_SECRET_NAME"] = f"{world.account}-ro"
    keys = world.emulator.account_keys(world.account)
    done = cli(subprocess_env, "adopt", "--key-kind", "secondary", "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["outcome"], result["keyKind"], result["readonlyKeyKind"]) == (
        "succeeded", "secondary", "secondaryReadonly")
    logged = [json.loads(line)["event"] for line in done.stderr.splitlines()
              if line.startswith("{") and "event" in json.loads(line)]
    assert logged == ["RotationStarted", "SecretPublished", "SecretPublished", "AccountAdopted"]
    secret, readonly = world.live_secret(), world.live_secret(f"{world.account}-ro")
    assert keys["secondary"] in secret.value and keys["secondaryReadonly"] in readonly.value
    assert secret.properties.tags["keyKind"] == "secondary" and secret.properties.tags["adopted"] == "true"
    assert sum(world.regeneration_requests().values()) == 0
    record = get_runtime().records.get(result["id"])
    assert (record["operation"], record["status"]) == ("adopt", "succeeded")
    # Again: skipped, the secret is live; with --force it publishes over it.
    again = cli(subprocess_env, "adopt", "--key-kind", "secondary", "--json")
    (skipped,) = json.loads(again.stdout)["results"]
    assert skipped["outcome"] == "skipped" and "--force" in skipped["reason"]
    # Adopting started no cooldown: the next rotation regenerates the other key at once.
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()
    assert world.live_secret().properties.tags["keyKind"] == "primary"
    assert world.live_secret(f"{world.account}-ro").properties.tags["keyKind"] == "primaryReadonly"
    assert world.key_works(secret.value)  # the adopted key, which applications hold, still works
    world.assert_invariants(secret.value, {"primary": 1, "primaryReadonly": 1})


def test_a_declared_live_key_is_adopted_by_the_first_run_which_rotates_nothing_else(empty_world, caplog):
    world = empty_world
    world.set(LIVE_KEY_KIND="primary")
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        host.process_queues()
    assert world.live_secret().properties.tags["keyKind"] == "primary"
    assert sum(world.regeneration_requests().values()) == 0
    assert events(caplog, "AccountAdopted") and events(caplog, "RotationSucceeded")[0].reason.startswith("adopted")
    host.run_timer("scheduled_rotation")
    host.process_queues()
    assert world.live_secret().properties.tags["keyKind"] == "secondary"  # the next run rotates as usual


def test_a_deleted_or_disabled_secret_is_never_taken_for_a_missing_one(world):
    host = world.host()
    client = world.secret_client()
    version = world.live_secret().properties.version
    client.update_secret_properties(world.secret_name, version, enabled=False)
    status, body = post(host, target=world.account)
    assert (status, body["error"]["code"]) == (409, "SecretDisabled")
    assert "re-enable" in body["error"]["message"]
    client.update_secret_properties(world.secret_name, version, enabled=True)
    client.begin_delete_secret(world.secret_name).result()
    status, body = post(host, target=world.account)
    assert (status, body["error"]["code"]) == (409, "SecretDeleted")
    assert sum(world.regeneration_requests().values()) == 0


def test_an_expired_live_version_is_rotated_with_a_warning(world, caplog):
    client = world.secret_client()
    live = world.live_secret()
    client.update_secret_properties(world.secret_name, live.properties.version,
                                    expires_on=datetime.now(timezone.utc) - timedelta(days=1))
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        host.process_queues()
    (warning,) = events(caplog, "LiveSecretExpired")
    assert warning.levelname == "WARNING"
    assert events(caplog, "RotationSucceeded")
    world.assert_invariants(live.value, {"secondary": 1})


# -- the operator's tools -----------------------------------------------------------------------------------


def test_rollback_republishes_the_previous_key_while_it_is_valid(world, subprocess_env, caplog):
    world.set(MIN_ROTATION_INTERVAL_MINUTES="0")
    subprocess_env["MIN_ROTATION_INTERVAL_MINUTES"] = "0"
    adopted = world.live_secret()
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()  # secondary published; primary (the adopted key) untouched until the next one
    done = cli(subprocess_env, "rollback", "--json")
    assert done.returncode == 0, done.stderr
    (result,) = json.loads(done.stdout)["results"]
    assert (result["outcome"], result["keyKind"], result["previousKeyKind"]) == ("succeeded", "primary", "secondary")
    live = world.live_secret()
    assert live.value == adopted.value and live.properties.tags["rolledBackFrom"]
    assert "RotationRolledBack" in done.stderr
    assert get_runtime().records.get(result["id"])["operation"] == "rollback"
    # The next rotation regenerates the key rolled back from (the secondary), never the live one.
    host.run_timer("scheduled_rotation")
    host.process_queues()
    assert world.live_secret().properties.tags["keyKind"] == "secondary"
    world.assert_invariants(adopted.value, {"secondary": 2})


def test_rollback_of_a_key_regenerated_since_is_refused(world, subprocess_env):
    # Under a fixed strategy the previous version's key died with the rotation: rolling back would publish it.
    world.set(KEY_STRATEGY="primary", MIN_ROTATION_INTERVAL_MINUTES="0")
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()
    live = world.live_secret()
    # Hygiene disabled the version holding the dead key, so there is nothing enabled to go back to.
    (previous,) = [v for v in world.versions() if v.version != live.properties.version]
    assert previous.enabled is False
    refused = cli({**subprocess_env, "KEY_STRATEGY": "primary"}, "rollback", "--json")
    assert refused.returncode == 1
    (result,) = json.loads(refused.stdout)["results"]
    assert result["errorCode"] == "NoPreviousVersion"
    assert world.live_secret().properties.version == live.properties.version
    # Were it still enabled (hygiene failed), its dead key is recognised by comparison and refused.
    world.secret_client().update_secret_properties(world.secret_name, previous.version, enabled=True)
    refused = cli({**subprocess_env, "KEY_STRATEGY": "primary"}, "rollback", "--json")
    (result,) = json.loads(refused.stdout)["results"]
    assert result["errorCode"] == "PreviousKeyInvalid" and "dead key" in result["errorMessage"]
    assert world.live_secret().properties.version == live.properties.version


def test_rollback_with_nothing_to_go_back_to_is_refused(world, subprocess_env):
    done = cli(subprocess_env, "rollback", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["results"][0]["errorCode"] == "NoPreviousVersion"


def test_a_live_key_regenerated_outside_is_reported_with_the_fix_and_flagged(world, subprocess_env, caplog):
    from azure.identity import DefaultAzureCredential
    from azure.mgmt.cosmosdb import CosmosDBManagementClient

    # Someone regenerates the live (primary) key in the portal.
    arm = CosmosDBManagementClient(DefaultAzureCredential(), SUBSCRIPTION, base_url=world.env["ARM_ENDPOINT"],
                                   credential_scopes=[world.env["ARM_ENDPOINT"] + "/.default"])
    arm.database_accounts.begin_regenerate_key(RESOURCE_GROUP, world.account, {"keyKind": "primary"},
                                               polling_interval=0.1).result()
    host = world.host()
    status, body = post(host, target=world.account, force=True)
    assert (status, body["error"]["code"]) == (409, "KeyChangedOutside")
    assert "adopt --force --key-kind primary" in body["error"]["message"]
    table = cli(subprocess_env, "status")
    assert "live key changed outside" in table.stdout and "adopt --force --key-kind primary" in table.stdout
    fixed = cli(subprocess_env, "adopt", "--force", "--key-kind", "primary", "--json")
    assert fixed.returncode == 0, fixed.stderr
    assert world.key_works(world.live_secret().value)
    assert json.loads(cli(subprocess_env, "status", "--json").stdout)["targets"][0]["liveKeyChangedOutside"] is False
    assert world.regeneration_requests() == {"primary": 1, "secondary": 0, "primaryReadonly": 0,
                                             "secondaryReadonly": 0}


def test_a_paused_target_and_a_paused_timer_are_shown_and_respected(world, subprocess_env, caplog):
    world.set(PAUSED_TARGETS=world.account)
    host = world.host()
    with caplog.at_level("INFO"):
        host.run_timer("scheduled_rotation")
        assert host.process_queues() == 0  # nothing enqueued
    (skipped,) = events(caplog, "RotationSkipped")
    assert "PAUSED_TARGETS" in skipped.reason
    status, body = post(host, target=world.account, force=True)
    assert (status, body["error"]["code"]) == (409, "TargetPaused")
    env = {**subprocess_env, "PAUSED_TARGETS": world.account, "AzureWebJobs.scheduled_rotation.Disabled": "true"}
    done = cli(env, "rotate", "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["results"][0]["reason"].startswith("paused")
    table = cli(env, "status")
    assert "the timer is disabled" in table.stdout and "paused (PAUSED_TARGETS)" in table.stdout
    document = json.loads(cli(env, "status", "--json").stdout)
    assert document["timerDisabled"] is True and document["targets"][0]["paused"] is True
    assert sum(world.regeneration_requests().values()) == 0


# -- the command line ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args, env_change, code", [
    (["rotate", "--json", "--concurrency", "0"], {}, "UsageError"),
    (["rotate", "--json", "--bogus"], {}, "UsageError"),
    (["rotate", "--json"], {"KEY_STRATEGY": "sideways"}, "ConfigurationError"),
    (["status", "--json"], {"ROTATION_SCHEDULE": "99 99 99 99 99 99"}, "ConfigurationError"),
    (["adopt", "--json"], {}, "UsageError"),  # --key-kind is required
    (["rotate", "--json", "--target", "nope"], {}, "UsageError"),
])
def test_json_prints_exactly_one_document_whatever_happens(world, subprocess_env, args, env_change, code):
    done = cli({**subprocess_env, **env_change}, *args)
    assert done.returncode == 2
    document = json.loads(done.stdout)  # one document, nothing else
    assert document["error"]["code"] == code and document["error"]["message"]


def test_help_lists_the_settings_exit_codes_and_examples():
    stdout = io.StringIO()
    with pytest.raises(SystemExit):
        from cosmos_key_rotation.cli import _parser

        _parser().parse_args(["--help"])
    assert main(["--help"], stdout=stdout, stderr=io.StringIO()) == 0
    done = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "--help"], capture_output=True, text=True,
                          timeout=60)
    for words in ("LIVE_KEY_KIND", "PAUSED_TARGETS", "ROTATION_SCHEDULE", "exit codes:", "examples:", "adopt",
                  "rollback"):
        assert words in done.stdout, words


def test_a_bad_concurrency_names_the_flag(world, subprocess_env):
    done = cli(subprocess_env, "rotate", "--concurrency", "lots")
    assert done.returncode == 2 and "--concurrency" in done.stderr and "'lots'" in done.stderr
