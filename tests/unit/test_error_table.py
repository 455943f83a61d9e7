"""The error table: every service answer maps to one product code, transient or permanent, with a
message an operator can act on; the product's codes are a closed set."""

import json

import pytest
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from cosmos_key_rotation.error_codes import CODES
from cosmos_key_rotation.error_table import ROWS, from_sdk
from cosmos_key_rotation.errors import RotationError


class Response:
    """Just enough of an azure-core HTTP response for HttpResponseError to parse."""

    def __init__(self, status, body, headers=None):
        self.status_code, self._body, self.headers = status, body, headers or {}
        self.reason, self.request, self.content_type = "reason", None, "application/json"

    def text(self, encoding=None):
        return self._body

    def body(self):
        return self._body.encode()


def answered(status, code="", message="", inner=None, kind=HttpResponseError, storage_code=None):
    error = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    exc = kind(response=Response(status, json.dumps({"error": error}) if code or message else ""))
    if storage_code:
        exc.error_code = storage_code
    return exc


ARM_403 = ("The client 'a1' with object id 'o1' does not have authorization to perform action "
           "'Microsoft.DocumentDB/databaseAccounts/regenerateKey/action' over scope "
           "'/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/docdb' or the scope "
           "is invalid. If access was recently granted, please refresh your credentials.")
LOCKED = ("The scope '/subscriptions/s1/resourceGroups/rg/providers/Microsoft.DocumentDB/databaseAccounts/docdb' "
          "cannot perform write operation because following scope(s) are locked: "
          "'/subscriptions/s1/resourceGroups/rg'. Please remove the lock and try again.")
KV_403 = ("Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role "
          "definitions were changed recently, please observe propagation time.\r\nCaller: appid=a;oid=o\r\n"
          "Action: 'Microsoft.KeyVault/vaults/secrets/setSecret/action'\r\nResource: 'kv'\r\n")

# (service, exception, product code, transient, words the message must hold): one case per row, in order.
CASES = [
    ("vault", answered(403, "Forbidden", "Operation get is not allowed on a disabled secret.", "SecretDisabled"),
     "SecretDisabled", False, ["403 Forbidden SecretDisabled"]),
    ("vault", answered(409, "Conflict", "Secret cs is currently in a deleted but recoverable state, and its name "
                       "cannot be reused; in this state, the secret can only be recovered or purged.",
                       "ObjectIsDeletedButRecoverable"), "SecretDeleted", False, ["recovered or purged"]),
    ("vault", answered(409, "Conflict", "Secret cs is currently being recovered and cannot be re-created; retry later.",
                       "ObjectIsBeingRecovered"), "SecretRecovering", True, ["being recovered"]),
    ("arm", answered(409, "ScopeLocked", LOCKED), "ScopeLocked", False,
     ["locked scope(s): '/subscriptions/s1/resourceGroups/rg'"]),
    ("arm", answered(412, "PreconditionFailed", "There is another user operation in progress"), "AccountBusy", True,
     ["412 PreconditionFailed"]),
    ("arm", answered(409, "AnotherOperationInProgress", "busy"), "AccountBusy", True, ["busy"]),
    ("arm", answered(404, "ResourceNotFound", "The Resource 'x' was not found.", kind=ResourceNotFoundError),
     "AccountNotFound", False, ["404 ResourceNotFound"]),
    ("arm", answered(403, "AuthorizationFailed", ARM_403), "AuthorizationFailed", False,
     ["lacks permission Microsoft.DocumentDB/databaseAccounts/regenerateKey/action", "on scope /subscriptions/s1"]),
    ("arm", answered(401, "InvalidAuthenticationTokenTenant", "wrong tenant"), "AuthenticationFailed", False,
     ["wrong tenant"]),
    ("arm", answered(429, "TooManyRequests", "slow down"), "Throttled", True, ["429"]),
    ("storage", answered(503, storage_code="ServerBusy"), "ServiceUnavailable", True, ["503 ServerBusy"]),
    ("vault", answered(400, "BadParameter", "bad"), "BadRequest", False, ["400 BadParameter"]),
]


def test_one_case_per_row_in_the_table():
    assert len(CASES) == len(ROWS)


@pytest.mark.parametrize("service, exc, code, transient, words", CASES, ids=[case[2] + "-" + case[0] for case in CASES])
def test_each_row_maps_an_answer_to_its_product_code(service, exc, code, transient, words):
    error = from_sdk(exc, service, "do the thing")
    assert (error.code, error.transient) == (code, transient)
    assert "while trying to do the thing" in error.message
    for word in words:
        assert word in error.message


def test_key_vault_rbac_refusal_names_the_missing_action():
    error = from_sdk(answered(403, "Forbidden", KV_403, "ForbiddenByRbac"), "vault", "publish secret cs")
    assert error.code == "AuthorizationFailed" and not error.transient
    assert "Microsoft.KeyVault/vaults/secrets/setSecret/action" in error.message


@pytest.mark.parametrize("status, code, transient", [
    (500, "ServiceUnavailable", True), (502, "ServiceUnavailable", True), (504, "ServiceUnavailable", True),
    (507, "ServiceUnavailable", True), (408, "ServiceUnavailable", True),
    (409, "UnexpectedServiceAnswer", False), (410, "UnexpectedServiceAnswer", False),
    (423, "UnexpectedServiceAnswer", False), (405, "UnexpectedServiceAnswer", False),
])
def test_answers_no_row_knows_are_never_passed_through(status, code, transient):
    error = from_sdk(answered(status, "SomethingNew", "new"), "arm", "read account docdb")
    assert (error.code, error.transient) == (code, transient)
    assert "SomethingNew" in error.message  # quoted for the operator, not used as the code


def test_no_answer_at_all():
    assert from_sdk(ServiceRequestError("refused"), "arm", "x").code == "ServiceUnreachable"
    assert from_sdk(ServiceResponseError("reset"), "storage", "x").code == "ServiceUnreachable"
    assert from_sdk(ClientAuthenticationError("no identity"), "vault", "x").code == "CredentialUnavailable"
    assert from_sdk(ValueError("bug"), "vault", "x").code == "UnexpectedError"


def test_every_code_the_table_can_produce_is_a_product_code():
    produced = {row.product_code for row in ROWS} | {"ServiceUnavailable", "UnexpectedServiceAnswer",
                                                     "ServiceUnreachable", "CredentialUnavailable", "UnexpectedError"}
    assert produced <= set(CODES)


def test_the_set_of_codes_is_closed():
    with pytest.raises(ValueError, match="not a product error code"):
        RotationError("Conflict", "a service's own code")


def test_messages_never_carry_a_key():
    key = "A" * 86 + "=="
    error = from_sdk(answered(400, "BadRequest", f"AccountKey={key}; is bad"), "arm", "x")
    assert key not in error.message and key not in str(error)
