"""Every error answer of the HTTP routes: JSON, the right status, never a 500 for bad input."""

import json

import pytest


def call(world, name, method, path, body=None, route_params=None):
    response = world.host().call_http(name, method, path, body=body, route_params=route_params)
    document = json.loads(response.get_body())
    return response, document


@pytest.mark.parametrize("body, status, code", [
    ("{not json", 400, "InvalidJson"),
    ("", 400, "InvalidBody"),
    ('["docdb"]', 400, "InvalidBody"),
    ('{"target": "x", "colour": "red"}', 400, "UnknownField"),
    ("{}", 400, "MissingTarget"),
    ('{"target": 5}', 400, "MissingTarget"),
    ('{"target": "no-such-target"}', 404, "TargetNotFound"),
    ('{"target": "ACCOUNT", "keyKind": "tertiary"}', 400, "UnknownKeyKind"),
    ('{"target": "ACCOUNT", "keyKind": "primaryReadonly"}', 400, "UnknownKeyKind"),
    ('{"target": "ACCOUNT", "force": "yes"}', 400, "InvalidForce"),
])
def test_bad_request_bodies(world, body, status, code):
    response, document = call(world, "request_rotation", "POST", "/api/rotations",
                              body=body.replace("ACCOUNT", world.account))
    assert response.status_code == status
    assert document["error"]["code"] == code
    assert document["error"]["message"]
    assert response.mimetype == "application/json"


def test_requesting_the_live_key_kind_is_a_conflict(world):
    host = world.host()
    host.call_http("request_rotation", "POST", "/api/rotations", body=json.dumps({"target": world.account}))
    host.process_queues()
    response, document = call(world, "request_rotation", "POST", "/api/rotations",
                              body=json.dumps({"target": world.account, "keyKind": "secondary"}))
    assert response.status_code == 409
    assert document["error"]["code"] == "KeyKindIsLive"


@pytest.mark.parametrize("name, method, path, allowed", [
    ("request_rotation", "GET", "/api/rotations", "POST"),
    ("request_rotation", "DELETE", "/api/rotations", "POST"),
    ("rotation_status", "POST", "/api/rotations/abc", "GET"),
    ("targets", "PUT", "/api/targets", "GET"),
])
def test_wrong_method_is_405_with_allow(world, name, method, path, allowed):
    response, document = call(world, name, method, path, route_params={"id": "abc"})
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert document["error"]["code"] == "MethodNotAllowed"


@pytest.mark.parametrize("rotation_id", ["00000000-0000-0000-0000-000000000000", "../etc/passwd", "x"])
def test_unknown_rotation_id_is_404(world, rotation_id):
    response, document = call(world, "rotation_status", "GET", f"/api/rotations/{rotation_id}",
                              route_params={"id": rotation_id})
    assert response.status_code == 404
    assert document["error"]["code"] == "RotationNotFound"


def test_bad_settings_are_a_configuration_error_naming_the_setting(world):
    world.set(SECRET_VALIDITY_DAYS="forever")
    response, document = call(world, "targets", "GET", "/api/targets")
    assert response.status_code == 500
    assert document["error"]["code"] == "ConfigurationError"
    assert "SECRET_VALIDITY_DAYS" in document["error"]["message"]
    assert "Traceback" not in json.dumps(document)


def test_targets_show_live_key_ages_and_compliance(world):
    host = world.host()
    host.call_http("request_rotation", "POST", "/api/rotations", body=json.dumps({"target": world.account}))
    host.process_queues()
    response, document = call(world, "targets", "GET", "/api/targets")
    assert response.status_code == 200
    (target,) = document["targets"]
    assert target["target"] == world.account
    assert target["liveKeyKind"] == "secondary"
    assert target["secretVersion"] == world.live_secret().properties.version
    assert target["lastRotation"]["lastStatus"] == "succeeded"
    assert set(target["keys"]) == {"primaryMasterKey", "secondaryMasterKey", "primaryReadonlyMasterKey",
                                   "secondaryReadonlyMasterKey"}
    assert target["keys"]["secondaryMasterKey"]["ageDays"] < 1
    assert target["compliant"] is True and target["maxKeyAgeDays"] == 60
