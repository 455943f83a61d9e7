"""`Regenerator`: regenerateKey is sent once, its operation followed (or handed back when it outlasts the
wait), and after an unclear answer keysMetadata decides whether it acted; against a scripted Resource
Manager and a fake clock."""

import json
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError

from cosmos_key_rotation.accounts import Accounts
from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.regeneration import POLL_INTERVALS, SEND_ATTEMPTS, Regenerator, StillRegenerating
from cosmos_key_rotation.settings import Target

from .fake_clock import Clock

TARGET = Target("docdb", "11111111-2222-3333-4444-555555555555", "rg", "docdb", "https://kv.vault.azure.cn/", "cs")
BEFORE = datetime(2026, 11, 1, tzinfo=timezone.utc)
STATUS_URL = "https://management.azure.com/subscriptions/s/providers/Microsoft.DocumentDB/locations/x/operationsStatus/1"


class Response:
    def __init__(self, status, body=None, headers=None):
        self.status_code, self.reason, self.headers, self.request = status, "r", headers or {}, None
        self.content_type = "application/json"
        self._body = json.dumps(body) if body is not None else ""

    def text(self, encoding=None):
        return self._body

    def json(self):
        return json.loads(self._body)

    def raise_for_status(self):
        if self.status_code >= 400:
            raise HttpResponseError(response=self)


def http_error(status, code, headers=None):
    return HttpResponseError(response=Response(status, {"error": {"code": code, "message": f"{code} message"}},
                                               headers))


class Arm:
    """A scripted Resource Manager. Each POST follows the next step of `script`: "ok" (accepted; the
    operation then runs for `checks` status reads), ("acted", exc) (done, then the answer is lost as exc),
    ("refused", exc)."""

    def __init__(self, script, checks=0, stale_reads=0, hint=None):
        self.script = list(script)
        self.generated = BEFORE
        self.posts, self.status_reads, self.account_reads = [], 0, 0
        self.running, self.checks, self.hint = 0, checks, hint
        self.stale_reads = stale_reads
        self.database_accounts = self

    def get(self, group, name):
        self.account_reads += 1
        shown = self.generated
        if self.stale_reads and self.generated != BEFORE:
            self.stale_reads -= 1
            shown = BEFORE
        metadata = SimpleNamespace(secondary_master_key=SimpleNamespace(generation_time=shown))
        return SimpleNamespace(properties=SimpleNamespace(document_endpoint="https://docdb.documents.azure.cn/",
                                                          keys_metadata=metadata))

    def begin_regenerate_key(self, group, name, parameters, polling, raw_response_hook, **kwargs):
        assert polling is False
        self.posts.append(kwargs)
        step = self.script.pop(0)
        if step == "ok":
            self.running = self.checks
            if not self.running:
                self.generated += timedelta(minutes=5)
            raw_response_hook(SimpleNamespace(http_response=Response(202, headers={
                "Azure-AsyncOperation": STATUS_URL, "Retry-After": "0"})))
            return SimpleNamespace()
        what, exc = step
        if what == "acted":
            self.generated += timedelta(minutes=5)
        raise exc

    def send_request(self, request):
        assert (request.method, request.url) == ("GET", STATUS_URL)
        self.status_reads += 1
        headers = {"Retry-After": str(self.hint)} if self.hint else {}
        if self.running:
            self.running -= 1
            if not self.running:
                self.generated += timedelta(minutes=5)
            return Response(200, {"status": "InProgress"}, headers)
        return Response(200, {"status": "Succeeded"})


def regenerator(arm, wait=60.0):
    clock = Clock()
    return Regenerator(Accounts(lambda s: arm, confirm_wait_seconds=wait, sleep=clock.sleep, clock=clock),
                       lambda s: arm, sleep=clock.sleep, clock=clock), clock


def regenerate(arm, wait=60.0, wait_seconds=None):
    sends = []
    regen, clock = regenerator(arm, wait)
    account = regen.regenerate(TARGET, "secondary", BEFORE, lambda: sends.append(clock.now), wait_seconds)
    return account, sends, clock


def test_a_clear_success_sends_once_without_automatic_retries():
    arm = Arm(["ok"])
    account, sends, _ = regenerate(arm)
    assert account.key_generated_at["secondary"] > BEFORE
    assert len(arm.posts) == 1 and arm.posts[0]["retry_total"] == 0 and len(sends) == 1


def test_the_operation_is_checked_at_growing_intervals_unless_the_service_names_one():
    arm = Arm(["ok"], checks=5)
    _, _, clock = regenerate(arm)
    # Not at once: nothing is done the instant it is accepted.
    assert clock.sleeps[:5] == list(POLL_INTERVALS[:5]) and arm.status_reads == 6
    arm = Arm(["ok"], checks=3, hint=3)
    _, _, clock = regenerate(arm)
    assert clock.sleeps[:4] == [0.5, 3.0, 3.0, 3.0]  # the first look after the first interval, then as told


def test_a_five_minute_regeneration_costs_at_most_40_status_reads():
    arm = Arm(["ok"], checks=10_000)
    regen, clock = regenerator(arm)
    with pytest.raises(StillRegenerating):
        regen.regenerate(TARGET, "secondary", BEFORE, wait_seconds=300)
    assert arm.status_reads <= 40 and clock.now <= 300


def test_an_operation_that_outlasts_the_wait_is_handed_back_with_its_url():
    arm = Arm(["ok"], checks=100)
    regen, clock = regenerator(arm)
    with pytest.raises(StillRegenerating) as still:
        regen.regenerate(TARGET, "secondary", BEFORE, wait_seconds=10)
    assert still.value.operation_url == STATUS_URL and clock.now <= 10
    # A continuation checks once: still running, then done.
    with pytest.raises(StillRegenerating):
        regen.follow(TARGET, "secondary", BEFORE, STATUS_URL, wait_seconds=0)
    arm.running, arm.generated = 0, BEFORE + timedelta(minutes=5)  # Azure finished meanwhile
    account = regen.follow(TARGET, "secondary", BEFORE, STATUS_URL, wait_seconds=0)
    assert account.key_generated_at["secondary"] > BEFORE and len(arm.posts) == 1


@pytest.mark.parametrize("lost", [http_error(503, "ServiceUnavailable"), http_error(500, "InternalServerError"),
                                  http_error(504, "GatewayTimeout"), ServiceResponseError("connection reset")])
def test_an_answer_lost_after_the_service_acted_resumes_without_a_second_request(lost):
    arm = Arm([("acted", lost)])
    account, _, _ = regenerate(arm)
    assert account.key_generated_at["secondary"] > BEFORE
    assert len(arm.posts) == 1


def test_an_unclear_answer_that_did_not_act_is_sent_again_only_after_the_wait():
    arm = Arm([("lost", http_error(503, "ServiceUnavailable")), "ok"])
    account, sends, _ = regenerate(arm, wait=60.0)
    assert len(arm.posts) == 2
    assert sends[1] - sends[0] >= 60.0  # keysMetadata was watched for the whole wait first
    assert account.key_generated_at["secondary"] > BEFORE


def test_unclear_every_time_ends_transient_without_another_request():
    arm = Arm([("lost", ServiceResponseError("reset"))] * SEND_ATTEMPTS)
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == "RegenerationUnconfirmed" and raised.value.transient
    assert len(arm.posts) == SEND_ATTEMPTS


def test_a_429_that_outlasted_the_budget_policy_is_a_refusal():
    # The client's budget policy (budgets.py) already re-sent it for its whole patience: it never acted.
    arm = Arm([("refused", http_error(429, "TooManyRequests", {"Retry-After": "7"}))])
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == "Throttled" and raised.value.transient and len(arm.posts) == 1
    assert arm.account_reads == 0  # nothing to confirm: no keysMetadata watch


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


def test_an_operation_that_ended_failed_changed_nothing():
    arm = Arm(["ok"])
    arm.send_request = lambda request: Response(200, {"status": "Failed", "error": {"code": "Boom", "message": "x"}})
    with pytest.raises(RotationError) as raised:
        regenerate(arm)
    assert raised.value.code == "RegenerationFailed" and "Boom" in raised.value.message


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
    regen, _ = regenerator(arm, wait=1)

    def lost_lease():
        raise RotationError("LeaseLost", "gone")

    with pytest.raises(RotationError, match="gone"):
        regen.regenerate(TARGET, "secondary", BEFORE, lost_lease)
    assert arm.posts == []
