"""Safety nets through their real handlers: Key Vault's expiry events (Event Grid, the documented payload)
start a rotation of the secret's target."""

from __future__ import annotations

import json
import logging


def expiry_event(world, event_type="Microsoft.KeyVault.SecretNearExpiry", secret=None, version=None,
                 vault="emulator-vault", vault_url=None):
    """An event as Key Vault publishes it to its system topic (docs: "Azure Key Vault as Event Grid source");
    `Id` is the version's URL on the vault's host (the emulator's vault: its loopback address)."""
    live = world.live_secret()
    name = secret or world.secret_name
    version = version or live.properties.version
    base = (vault_url or world.env["KEY_VAULT_URI"]).rstrip("/")
    return {
        "id": "00000000-0000-4000-8000-00000000e1a1", "topic": "/subscriptions/s/resourceGroups/g/providers/"
        "Microsoft.KeyVault/vaults/" + vault, "subject": name, "eventType": event_type,
        "eventTime": "2026-11-29T10:00:00.0000000Z", "dataVersion": "1", "metadataVersion": "1",
        "data": {"Id": f"{base}/secrets/{name}/{version}", "VaultName": vault,
                 "ObjectType": "Secret", "ObjectName": name, "Version": version, "NBF": None, "EXP": 1767225600},
    }


def rotations(caplog):
    return [r for r in caplog.records if getattr(r, "event", None) == "RotationSucceeded"]


def test_a_near_expiry_or_expired_live_secret_is_rotated_and_a_duplicate_absorbed(world, caplog):
    host = world.host()
    with caplog.at_level(logging.INFO):
        host.send_event("secret_expiry", expiry_event(world, "Microsoft.KeyVault.SecretExpired"))
        host.process_queues()
        assert [r.trigger for r in rotations(caplog)] == ["event"]
        assert world.live_secret().properties.tags["keyKind"] == "secondary"
        # The same event delivered again: the cooldown skips it.
        host.send_event("secret_expiry", expiry_event(world))
        host.process_queues()
    assert len(rotations(caplog)) == 1
    skipped = [r for r in caplog.records if getattr(r, "event", None) == "RotationSkipped"]
    assert skipped and "cooldown" in skipped[-1].reason
    assert world.regeneration_requests()["secondary"] == 1


def test_other_events_are_ignored(world, caplog):
    host = world.host()
    older = world.live_secret().properties.version
    host.run_timer("scheduled_rotation")  # a newer version: the older one's event is not about the live one
    host.process_queues()
    ignored = [
        expiry_event(world, "Microsoft.KeyVault.SecretNewVersionCreated"),
        expiry_event(world, secret="some-other-secret"),
        expiry_event(world, vault_url="https://another-vault.vault.azure.net/"),
        expiry_event(world, version=older),
    ]
    with caplog.at_level(logging.INFO):
        for event in ignored:
            host.send_event("secret_expiry", event)
    assert host.process_queues() == 0
    assert [r for r in caplog.records if getattr(r, "event", None) == "RotationRequested"] == []
    assert world.regeneration_requests()["secondary"] == 1  # the timer's rotation only


def test_the_heartbeat_logs_the_age_of_all_four_keys_of_every_target(world, caplog):
    other = f"{world.account}-gone"  # a target whose account cannot be read still beats, with the reason
    world.set(ROTATION_TARGETS=json.dumps([
        {"name": world.account, "subscriptionId": world.env["COSMOS_SUBSCRIPTION_ID"],
         "resourceGroup": world.env["COSMOS_RESOURCE_GROUP"], "account": world.account,
         "keyVaultUri": world.env["KEY_VAULT_URI"]},
        {"name": other, "subscriptionId": world.env["COSMOS_SUBSCRIPTION_ID"],
         "resourceGroup": world.env["COSMOS_RESOURCE_GROUP"], "account": other,
         "keyVaultUri": world.env["KEY_VAULT_URI"]},
    ]), COSMOS_ACCOUNT_NAME="", MAX_KEY_AGE_DAYS="45")
    host = world.host()
    with caplog.at_level(logging.INFO):
        assert host.run_timer("heartbeat") == 1
    beats = {r.target: r for r in caplog.records if getattr(r, "event", None) == "RotationHeartbeat"}
    assert set(beats) == {world.account, other}
    beat = beats[world.account]
    keys = world.account_state()["keysMetadata"]
    for name in ("primaryMasterKey", "secondaryMasterKey", "primaryReadonlyMasterKey", "secondaryReadonlyMasterKey"):
        assert getattr(beat, f"{name}GeneratedAt")[:19] == keys[name]["generationTime"][:19]
    assert (beat.levelname, beat.maxKeyAgeDays) == ("INFO", 45)
    assert (beats[other].levelname, beats[other].errorCode) == ("WARNING", "AccountNotFound")
