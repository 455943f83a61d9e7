"""The operator's CLI, run as a separate process as an operator would, against the emulator."""

import io
import json
import subprocess
import sys

from cosmos_key_rotation.cli import main
from tests.conftest import RESOURCE_GROUP, SUBSCRIPTION


def cli(env, *args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cosmos_key_rotation", *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_rotate_json_prints_one_document_and_exits_0(world, subprocess_env):
    done = cli(subprocess_env, "rotate", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    (result,) = document["results"]
    assert (result["target"], result["outcome"], result["keyKind"], result["trigger"]) == (
        world.account, "succeeded", "secondary", "cli")
    assert result["secretVersion"] == world.live_secret().properties.version
    events = [json.loads(line)["event"] for line in done.stderr.splitlines() if line.startswith("{")
              and "event" in json.loads(line)]
    assert events == ["RotationStarted", "KeyRegenerated", "KeyVerified", "SecretPublished", "RotationSucceeded"]


def test_second_rotate_is_skipped_with_a_reason_and_exits_0(world, subprocess_env):
    cli(subprocess_env, "rotate")
    done = cli(subprocess_env, "rotate", "--json")
    assert done.returncode == 0
    (result,) = json.loads(done.stdout)["results"]
    assert result["outcome"] == "skipped" and "cooldown" in result["reason"]


def test_failed_rotation_exits_1_with_its_error_code(world, subprocess_env):
    world.admin.add_fault({"service": "arm", "operation": "regenerateKey", "status": 403, "count": 1})
    done = cli(subprocess_env, "rotate", "--json")
    assert done.returncode == 1
    (result,) = json.loads(done.stdout)["results"]
    assert result["outcome"] == "failed" and result["errorCode"]


def test_dry_run_changes_nothing(world, subprocess_env):
    adopted = world.live_secret().properties.version
    done = cli(subprocess_env, "rotate", "--dry-run", "--json")
    assert done.returncode == 0
    (result,) = json.loads(done.stdout)["results"]
    assert result["outcome"] == "skipped" and result["reason"].startswith("dry run: would rotate secondary")
    assert [v.version for v in world.versions()] == [adopted]
    assert sum(world.regenerations().values()) == 0


def test_bad_settings_and_usage_exit_2_naming_the_problem(world, subprocess_env):
    done = cli({**subprocess_env, "KEY_STRATEGY": "sideways"}, "rotate")
    assert done.returncode == 2 and "KEY_STRATEGY" in done.stderr
    done = cli(subprocess_env, "rotate", "--target", "nope")
    assert done.returncode == 2 and "no target named 'nope'" in done.stderr
    done = cli(subprocess_env, "rotate", "--key-kind", "tertiary")
    assert done.returncode == 2 and "tertiary" in done.stderr


def test_settings_file_is_read(world, subprocess_env, tmp_path):
    values = {name: subprocess_env.pop(name) for name in ("COSMOS_ACCOUNT_NAME", "KEY_VAULT_URI")}
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    done = cli(subprocess_env, "rotate", "--settings", str(path), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["results"][0]["outcome"] == "succeeded"


def test_four_simultaneous_runs_regenerate_once(world, subprocess_env):
    world.admin.configure(regenerationSeconds=1.0)
    runs = [subprocess.Popen([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--json"],
                             env=subprocess_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(4)]
    outcomes = []
    for run in runs:
        stdout, stderr = run.communicate(timeout=120)
        assert run.returncode == 0, stderr
        outcomes.append(json.loads(stdout)["results"][0]["outcome"])
    assert sorted(outcomes) == ["skipped", "skipped", "skipped", "succeeded"]
    assert world.regenerations()["secondary"] == 1
    assert len(world.versions()) == 2  # the adopted one, and this rotation's


def test_all_rotates_every_target_concurrently_with_progress(world, subprocess_env):
    names = [world.account] + [f"{world.account}-{i}" for i in range(2)]
    for name in names[1:]:
        world.admin.create_account(subscription_id=SUBSCRIPTION, resource_group=RESOURCE_GROUP, name=name)
    targets = [{"name": name, "subscriptionId": SUBSCRIPTION, "resourceGroup": RESOURCE_GROUP, "account": name,
                "keyVaultUri": world.env["KEY_VAULT_URI"], "readonlySecretName": f"{name}-readonly"}
               for name in names]
    env = {**subprocess_env, "ROTATION_TARGETS": json.dumps(targets), "COSMOS_ACCOUNT_NAME": ""}
    adopted = cli(env, "adopt", "--all", "--key-kind", "primary", "--json")
    assert adopted.returncode == 0, adopted.stderr
    # The first target's read-write secret was adopted already: only its read-only one is published.
    assert [r["outcome"] for r in json.loads(adopted.stdout)["results"]] == ["succeeded"] * 3
    done = cli(env, "rotate", "--all", "--concurrency", "3", "--json")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    assert [r["target"] for r in results] == names
    assert all(r["outcome"] == "succeeded" and r["readonlyKeyKind"] == "secondaryReadonly" for r in results)
    progress = [line for line in done.stderr.splitlines() if line.startswith("[")]
    assert len(progress) == 3 and progress[-1].startswith("[3/3]")
    status = cli(env, "status", "--json")
    assert status.returncode == 0
    assert [t["liveKeyKind"] for t in json.loads(status.stdout)["targets"]] == ["secondary"] * 3


def test_status_table_shows_key_ages(world, subprocess_env):
    cli(subprocess_env, "rotate")
    done = cli(subprocess_env, "status")
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.splitlines()[:2]
    assert "key age p/s/pr/sr (d)" in header and "compliant" in header
    assert row.startswith(world.account) and "secondary" in row and "0/0/0/0" in row and "yes" in row
    assert max(len(line) for line in done.stdout.splitlines()) <= 120


def test_in_process_main_returns_exit_codes(world):
    stdout, stderr = io.StringIO(), io.StringIO()
    assert main(["rotate", "--json"], stdout=stdout, stderr=stderr) == 0
    assert json.loads(stdout.getvalue())["results"][0]["outcome"] == "succeeded"
    assert main(["rotate", "--bogus"], stdout=io.StringIO(), stderr=io.StringIO()) == 2
