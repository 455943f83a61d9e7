"""Who asks over HTTP (caller.py), and the audit trail surviving the queue."""

import base64
import json
from dataclasses import replace

import pytest

from cosmos_key_rotation.caller import Denied, authorize, cli_caller, principal, token_name
from cosmos_key_rotation.continuation import Continuation
from cosmos_key_rotation.plan import RotationRequest
from cosmos_key_rotation.rotation_queue import from_message, to_message

REQUESTERS = frozenset({"Rotations.Request"})


def header(document):
    return base64.b64encode(json.dumps(document).encode()).decode()


def claims(*pairs, auth_typ="aad", role_typ="roles"):
    return {"auth_typ": auth_typ, "role_typ": role_typ, "claims": [{"typ": t, "val": v} for t, v in pairs]}


def test_an_entra_caller_with_the_role_is_named_by_object_id_and_name():
    who = authorize("entra", True, {"X-MS-CLIENT-PRINCIPAL": header(claims(
        ("oid", "o-1"), ("preferred_username", "ops@contoso.example"), ("roles", "Rotations.Request")))},
        REQUESTERS)
    assert who == "o-1 (ops@contoso.example)"
    # A managed identity has an app id and no user name; roles may come under the long claim type.
    caller = principal(header(claims(("http://schemas.microsoft.com/identity/claims/objectidentifier", "o-2"),
                                     ("appid", "a-2"), ("http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                                                        "Rotations.Read"))))
    assert (caller.requested_by, caller.roles) == ("o-2 (a-2)", frozenset({"Rotations.Read"}))


@pytest.mark.parametrize("enabled, headers, status, code", [
    (False, {}, 500, "ConfigurationError"),
    (True, {}, 401, "Unauthenticated"),
    (True, {"x-ms-client-principal": "not base64 json"}, 401, "InvalidPrincipal"),
    (True, {"x-ms-client-principal": header(claims(("oid", "o"), auth_typ="google"))}, 401, "InvalidPrincipal"),
    (True, {"x-ms-client-principal": header(claims(("name", "x")))}, 401, "InvalidPrincipal"),
    (True, {"x-ms-client-principal": header(claims(("oid", "o"), ("roles", "Rotations.Read")))}, 403, "MissingRole"),
])
def test_refusals_name_what_is_missing(enabled, headers, status, code):
    with pytest.raises(Denied) as denied:
        authorize("entra", enabled, headers, REQUESTERS)
    assert (denied.value.status, denied.value.code) == (status, code)


def test_function_key_mode_asks_nothing_of_the_request():
    assert authorize("function-key", False, {}, REQUESTERS) == "function key"


def test_the_cli_names_the_signed_in_identity_else_the_os_user(monkeypatch):
    payload = base64.urlsafe_b64encode(json.dumps({"upn": "ops@contoso.example"}).encode()).decode().rstrip("=")
    assert token_name(f"h.{payload}.s") == "ops@contoso.example"
    assert token_name("opaque-token") is None
    monkeypatch.setattr("getpass.getuser", lambda: "alice")
    assert cli_caller(lambda: "opaque-token") == "cli:alice"
    assert cli_caller(lambda: f"h.{payload}.s") == "cli:ops@contoso.example"

    def no_credential():
        raise RuntimeError("no credential")

    assert cli_caller(no_credential) == "cli:alice"


def test_who_asked_survives_the_queue_and_its_continuations():
    request = RotationRequest.new("docdb-a", "http", requested_by="o-1 (ops@contoso.example)")
    waiting = replace(request, continuation=Continuation("cs", "secondary", "regenerating", "2026-11-29T00:00:00Z"))
    for message in (request, waiting):
        assert from_message(to_message(message), attempt=3).requested_by == "o-1 (ops@contoso.example)"
    assert RotationRequest.new("docdb-a", "timer").requested_by == "timer"
