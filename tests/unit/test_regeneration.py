"""`Accounts.regenerate`: regenerateKey is sent once, and after an unclear answer keysMetadata decides
whether it acted, against a scripted Resource Manager and a fake clock."""

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from cosmos_key_rotation.accounts import SEND_ATTEMPTS, Accounts
from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.settings import Target

TARGET = Target("docdb", "11111111-2222-3333-4444-555555555555", "rg", "docdb", "https://kv.vault.azure.cn/", "cs")
BEFORE = datetime(2026, 11, 1, tzinfo=timezone.utc)


class Response:
    def __init__(self, status, code, headers=None):
        self.status_code, self.reason, self.headers, self.request = status, "r", headers or {}, None
        self.content_type = "application/json"
        self._body = json.dumps({"error": {"code": code, "message": f"{code} message"}})

    def text(self, encoding=None):
        return self._body


def http_error(status, code, headers=None):
    return HttpResponseError(response=Response(status, code, headers))


class Arm:
    """database_accounts of a CosmosDBManagementClient. Each POST follows the next step of `script`:
    "ok" (accepted and done), ("acted", exc) (done, then the answer is lost as exc), ("refused", exc)."""

    def __init__(self, script, stale_reads=0):
        self.script = list(script)
        self.generated = BEFORE
        self.posts = []
        self.stale_reads = stale_reads

    def get(self, group, name):
        shown = self.generated
        if self.stale_reads and self.generated != BEFORE:
            self.stale_reads -= 1
            shown = BEFORE
        metadata = SimpleNamespace(secondary_master_key=SimpleNamespace(generation_time=shown))
        return SimpleNamespace(properties=SimpleNamespace(document_endpoint="https://docdb.documents.azure.cn/",
                                                          keys_metadata=metadata))

    def begin_regenerate_key(self, group, name, parameters, polling, **kwargs):
        self.posts.append(kwargs)
        step = self.script.pop(0)
        if step == "ok":
            self.generated += timedelta(minutes=5)
            return SimpleNamespace(result=lambda: None)
        what, exc = step
        if what == "acted":
            self.generated += timedelta(minutes=5)
        raise exc


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def regenerate(arm, wait=60.0):
    clock = Clock()
    sends = []
    accounts = Accounts(lambda subscription: SimpleNamespace(database_accounts=arm), polling_interval=0,
                        confirm_wait_seconds=wait, sleep=clock.sleep, clock=clock)
    account = accounts.regenerate(TARGET, "secondary", BEFORE, lambda: sends.append(clock.now))
    return account, sends, clock


def test_a_clear_success_sends_once_without_automatic_retries():
    arm = Arm(["ok"])
    account, sends, _ = regenerate(arm)
    assert account.key_generated_at["secondary"] > BEFORE
    assert len(arm.posts) == 1 and arm.posts[0]["retry_total"] == 0 and len(sends) == 1


@pytest.mark.parametrize("lost", [http_error(503, "ServiceUnavailable"), http_error(500, "InternalServerError"),
                                  http_error(504, "GatewayTimeout"), ServiceResponseError("connection reset")])
def test_an_answer_lost_after_the_service_acted_resumes_without_a_second_request(lost):
    arm = Arm([("acted", lost)])
    account, _sends, _clock = regenerate(arm)
    assert account.key_generated_at["secondary"] > BEFORE
    assert len(arm.posts) == 1


def test_an_unclear_answer_that_did_not_act_is_sent_again_only_after_the_wait():
    arm = Arm([("lost", http_error(503, "ServiceUnavailable")), "ok"])
    account, sends, _clock = regenerate(arm, wait=60.0)
    assert len(arm.posts) == 2
    assert sends[1] - sends[0] >= 60.0  # keysMetadata was watched for the whole wait first
    assert account.key_generated_at["secondary"] > BEFORE


def test_unclear_every_time_ends_transient_without_a_third_request():
    arm = Arm([("lost", ServiceResponseError("reset"))] * SEND_ATTEMPTS)
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == "RegenerationUnconfirmed" and raised.value.transient
    assert len(arm.posts) == SEND_ATTEMPTS


@pytest.mark.parametrize("refusal, code", [
    (http_error(403, "AuthorizationFailed"), "AuthorizationFailed"),
    (http_error(409, "ScopeLocked"), "ScopeLocked"),
    (http_error(404, "ResourceNotFound"), "AccountNotFound"),
    (http_error(412, "PreconditionFailed"), "AccountBusy"),
    (ServiceRequestError("connection refused"), "ServiceUnreachable"),
])
def test_a_clear_refusal_is_raised_at_once(refusal, code):
    arm = Arm([("refused", refusal)])
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == code and len(arm.posts) == 1


def test_a_read_that_lags_behind_the_regeneration_is_read_again():
    arm = Arm(["ok"], stale_reads=3)
    account, _, _ = regenerate(arm)
    assert account.key_generated_at["secondary"] > BEFORE and arm.stale_reads == 0


def test_a_read_that_never_shows_the_new_key_is_not_used():
    arm = Arm(["ok"], stale_reads=10_000)
    with pytest.raises(RotationError) as raised:
        regenerate(arm, wait=30.0)
    assert raised.value.code == "KeyNotUpdated" and raised.value.transient
    assert len(arm.posts) == 1


def test_the_caller_fences_before_each_request():
    arm = Arm(["ok"])
    clock = Clock()
    accounts = Accounts(lambda subscription: SimpleNamespace(database_accounts=arm), confirm_wait_seconds=1,
                        sleep=clock.sleep, clock=clock)

    def lost_lease():
        raise RotationError("LeaseLost", "gone")

    with pytest.raises(RotationError, match="gone"):
        accounts.regenerate(TARGET, "secondary", BEFORE, lost_lease)
    assert arm.posts == []


def test_a_throttled_request_did_not_act_and_is_sent_again_after_retry_after():
    arm = Arm([("refused", http_error(429, "TooManyRequests", {"Retry-After": "7"})), "ok"])
    account, sends, _ = regenerate(arm, wait=60.0)
    assert len(arm.posts) == 2 and sends[1] - sends[0] == 7.0  # no keysMetadata watch in between
    assert account.key_generated_at["secondary"] > BEFORE


def test_throttled_every_time_ends_throttled():
    arm = Arm([("refused", http_error(429, "TooManyRequests", {"Retry-After": "1"}))] * SEND_ATTEMPTS)
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == "Throttled" and raised.value.transient and len(arm.posts) == SEND_ATTEMPTS
