"""Lease renewal, loss and release, against a scripted lease client and a fake clock."""

import threading
import time

import pytest
from azure.core.exceptions import HttpResponseError, ServiceResponseError

from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.leases import FENCE_MARGIN_SECONDS, HeldLease


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class LeaseClient:
    def __init__(self, renew_error=None, renew_blocks=None):
        self.renew_error = renew_error
        self.renew_blocks = renew_blocks
        self.renewals, self.releases, self.kwargs = 0, [], []

    def renew(self, **kwargs):
        self.kwargs.append(kwargs)
        if self.renew_blocks is not None:
            self.renew_blocks.wait(30)
        if self.renew_error is not None:
            raise self.renew_error
        self.renewals += 1

    def release(self, **kwargs):
        self.releases.append(kwargs)


def held(client, clock, lease_seconds=60):
    return HeldLease(client, "docdb-test", clock(), lease_seconds=lease_seconds, renew_every=15, clock=clock)


def test_a_fresh_lease_confirms_until_the_margin():
    clock = Clock()
    lease = held(LeaseClient(), clock)
    clock.now += 60 - FENCE_MARGIN_SECONDS - 0.1
    lease.confirm()
    clock.now += 0.2
    with pytest.raises(RotationError) as raised:
        lease.confirm()
    assert raised.value.code == "LeaseLost" and raised.value.transient


def test_a_successful_renewal_moves_the_fence_from_when_it_was_sent():
    clock = Clock()
    client = LeaseClient()
    lease = held(client, clock)
    clock.now += 40
    lease.renew_once()
    clock.now += 40
    lease.confirm()  # 40 s after the renewal: still ours
    assert client.renewals == 1
    # Each renewal is bounded and sent once: a hanging storage front end cannot hold the rotation.
    assert client.kwargs[0]["retry_total"] == 0 and client.kwargs[0]["read_timeout"] <= 15


def test_failed_renewals_are_survived_until_the_fence():
    clock = Clock()
    lease = held(LeaseClient(renew_error=ServiceResponseError("reset")), clock)
    clock.now += 20
    lease.renew_once()
    lease.confirm()  # a failed renewal alone changes nothing: the lease still has 40 s
    clock.now += 25
    lease.renew_once()
    with pytest.raises(RotationError, match="last renewal was 45 s ago"):
        lease.confirm()


def test_a_lease_taken_over_is_lost_at_once():
    class Response:
        status_code, reason, headers, request = 409, "Conflict", {}, None

        def text(self, encoding=None):
            return ""

    clock = Clock()
    lease = held(LeaseClient(renew_error=HttpResponseError(response=Response())), clock)
    lease.renew_once()
    with pytest.raises(RotationError, match="another holder took it"):
        lease.confirm()


def test_a_hanging_renewal_never_blocks_the_end_of_the_rotation():
    block = threading.Event()
    client = LeaseClient(renew_blocks=block)
    lease = HeldLease(client, "docdb-test", time.monotonic(), lease_seconds=60, renew_every=0.05)
    lease.start()
    while not client.kwargs:  # the renewal is now hanging
        time.sleep(0.01)
    started = time.monotonic()
    lease.stop()
    elapsed = time.monotonic() - started
    block.set()
    assert elapsed < 2.0
    assert len(client.releases) == 1 and client.releases[0]["retry_total"] == 0  # the release is bounded too
