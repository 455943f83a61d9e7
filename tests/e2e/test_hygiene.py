"""Hygiene: after each regeneration the secret versions that still hold the regenerated key's old value are
disabled in Key Vault (decided from their tags), and the live version is never touched."""

from __future__ import annotations

import json
import logging

import pytest
from azure.core.exceptions import HttpResponseError


def rotate(host, world):
    response = host.call_http("request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "force": True}))
    assert response.status_code == 202
    host.process_queues()


def enabled(world):
    return {v.tags["keyKind"]: v.enabled for v in world.versions()} | {
        f"{v.tags['keyKind']}@{v.version[:6]}": v.enabled for v in world.versions()}


def test_versions_holding_a_regenerated_key_are_disabled_and_the_live_one_never(world, caplog):
    host = world.host()
    (adopted,) = world.versions()  # the primary, as applications use it
    with caplog.at_level(logging.INFO):
        rotate(host, world)  # regenerates the secondary: the adopted primary version still holds a valid key
        assert [v.enabled for v in world.versions()] == [True, True]
        rotate(host, world)  # regenerates the primary: the adopted version's key is dead
    versions = {v.version: v for v in world.versions()}
    assert versions[adopted.version].enabled is False
    assert [v.enabled for v in world.versions() if v.version != adopted.version] == [True, True]
    live = world.live_secret()
    assert live.properties.tags["keyKind"] == "primary" and world.key_works(live.value)
    with pytest.raises(HttpResponseError) as refused:
        world.secret_client().get_secret(world.secret_name, adopted.version)
    assert refused.value.status_code == 403  # SecretDisabled: nobody reads the dead key from it
    (event,) = [r for r in caplog.records if getattr(r, "event", None) == "OldVersionsDisabled"]
    assert event.disabledVersions == adopted.version and event.keyKind == "primary"


def test_a_failure_to_disable_is_a_warning_and_the_next_rotation_catches_up(world, caplog):
    host = world.host()
    (adopted,) = world.versions()
    rotate(host, world)
    world.admin.add_fault({"service": "vault", "operation": "updateSecret", "status": 403, "count": -1})
    with caplog.at_level(logging.INFO):
        rotate(host, world)
    assert world.live_secret().properties.tags["keyKind"] == "primary"  # the rotation itself succeeded
    (warning,) = [r for r in caplog.records if getattr(r, "event", None) == "OldVersionsNotDisabled"]
    assert warning.levelname == "WARNING" and warning.errorCode == "AuthorizationFailed"
    world.admin.clear_faults()
    rotate(host, world)  # regenerates the secondary: disables its old version and, at last, the adopted one
    disabled = {v.version for v in world.versions() if not v.enabled}
    assert adopted.version in disabled and len(disabled) == 2
