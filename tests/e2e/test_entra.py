"""Entra ID in front of the HTTP API (HTTP_AUTH=entra) and the audit trail of who asked, through the real
HTTP handlers: the local host injects the caller as App Service authentication would
(X-MS-CLIENT-PRINCIPAL)."""

from __future__ import annotations

import getpass
import json
import logging
import subprocess
import sys

from cosmos_key_rotation.runtime import get_runtime
from tests.e2e.openapi_document import answer_problems

OPERATOR = "7f3e1c2a-0000-4000-8000-0000000000aa"


def caller(*roles, provider="aad", object_id=OPERATOR, name="ops@contoso.example"):
    claims = [{"typ": "http://schemas.microsoft.com/identity/claims/objectidentifier", "val": object_id},
              {"typ": "preferred_username", "val": name}] + [{"typ": "roles", "val": role} for role in roles]
    return {"auth_typ": provider, "name_typ": "name", "role_typ": "roles", "claims": claims}


def entra(world):
    world.set(HTTP_AUTH="entra", WEBSITE_AUTH_ENABLED="True")


def post(host, world, principal, **body):
    return host.call_http("request_rotation", "POST", "/api/rotations",
                          body=json.dumps({"target": world.account, **body}), principal=principal)


def error_of(response):
    return json.loads(response.get_body())["error"]["code"]


def test_a_caller_with_the_request_role_is_recorded_everywhere_as_who_asked(world, caplog):
    entra(world)
    host = world.host()
    with caplog.at_level(logging.INFO):
        response = post(host, world, caller("Rotations.Request"))
        assert response.status_code == 202
        rotation = json.loads(response.get_body())["id"]
        host.process_queues()
    who = f"{OPERATOR} (ops@contoso.example)"
    assert get_runtime().records.get(rotation)["requestedBy"] == who
    answer = host.call_http("rotation_status", "GET", f"/api/rotations/{rotation}", route_params={"id": rotation},
                            principal=caller("Rotations.Read"))
    shown = json.loads(answer.get_body())
    assert answer.status_code == 200 and shown["requestedBy"] == who and shown["status"] == "succeeded"
    assert answer_problems("rotation_status", 200, dict(answer.headers), shown) == []
    events = [r for r in caplog.records if getattr(r, "rotationId", None) == rotation]
    assert {r.event for r in events} >= {"RotationRequested", "RotationStarted", "KeyRegenerated", "RotationSucceeded"}
    assert {r.requestedBy for r in events} == {who}  # every event of the rotation, the worker's too


def test_no_caller_is_401_and_a_missing_role_is_403_each_naming_what_is_missing(world):
    entra(world)
    host = world.host()
    missing = post(host, world, None)
    assert (missing.status_code, error_of(missing)) == (401, "Unauthenticated")
    assert missing.headers.get("WWW-Authenticate") == "Bearer"
    reader = post(host, world, caller("Rotations.Read"))
    assert (reader.status_code, error_of(reader)) == (403, "MissingRole")
    assert b"lacks the app role Rotations.Request" in reader.get_body()
    nobody = host.call_http("targets", "GET", "/api/targets", principal=caller())
    assert (nobody.status_code, error_of(nobody)) == (403, "MissingRole")
    assert b"Rotations.Read or Rotations.Request" in nobody.get_body()
    listed = host.call_http("targets", "GET", "/api/targets", principal=caller("Rotations.Read"))
    assert listed.status_code == 200
    for response in (missing, reader, nobody):
        assert answer_problems("request_rotation" if response is not nobody else "targets", response.status_code,
                               dict(response.headers), json.loads(response.get_body())) == []


def test_a_forged_header_is_refused_when_the_platform_does_not_report_authentication(world):
    world.set(HTTP_AUTH="entra", WEBSITE_AUTH_ENABLED="")
    response = post(world.host(), world, caller("Rotations.Request"))
    assert (response.status_code, error_of(response)) == (500, "ConfigurationError")
    assert b"WEBSITE_AUTH_ENABLED" in response.get_body()


def test_only_entra_id_principals_are_accepted(world):
    entra(world)
    response = post(world.host(), world, caller("Rotations.Request", provider="github"))
    assert (response.status_code, error_of(response)) == (401, "InvalidPrincipal")


def test_function_key_mode_is_unchanged_and_says_so_in_the_record(world):
    host = world.host()
    response = post(host, world, None)
    assert response.status_code == 202
    rotation = json.loads(response.get_body())["id"]
    assert get_runtime().records.get(rotation)["requestedBy"] == "function key"


def test_the_timer_and_the_cli_say_who_they_are(world, subprocess_env):
    host = world.host()
    host.run_timer("scheduled_rotation")
    host.process_queues()
    timer = get_runtime().records.latest(world.account)["lastRotationId"]
    assert get_runtime().records.get(timer)["requestedBy"] == "timer"
    run = subprocess.run([sys.executable, "-m", "cosmos_key_rotation", "rotate", "--force", "--json"],
                         env={**subprocess_env, **world.env}, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    (result,) = json.loads(run.stdout)["results"]
    assert result["requestedBy"] == f"cli:{getpass.getuser()}"
    record = get_runtime().records.get(result["id"])
    assert record["requestedBy"] == f"cli:{getpass.getuser()}"  # the emulator's tokens name nobody


def test_under_entra_the_routes_need_no_function_key(subprocess_env):
    """Read at start-up, as the host does: a process of its own."""
    script = ("import function_app, json\n"
              "levels = set()\n"
              "for f in function_app.app.get_functions():\n"
              "    for b in f.get_bindings_dict()['bindings']:\n"
              "        if b['type'] == 'httpTrigger':\n"
              "            levels.add(str(getattr(b['authLevel'], 'value', b['authLevel'])).lower())\n"
              "print(json.dumps(sorted(levels)))")
    levels = {}
    for mode in ("entra", "function-key"):
        run = subprocess.run([sys.executable, "-c", script], env={**subprocess_env, "HTTP_AUTH": mode},
                             capture_output=True, text=True, timeout=120, check=False)
        assert run.returncode == 0, run.stderr
        levels[mode] = json.loads(run.stdout)
    assert levels == {"entra": ["anonymous"], "function-key": ["function"]}
