"""The verifier's retries, deadline and rejections, against a scripted data plane and a fake clock."""

import pytest

from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.verification import Verifier

from .fake_clock import Clock


def verifier(answers, timeout=60.0):
    """A verifier whose data plane answers `answers` in turn (None: authenticated)."""
    clock = Clock()
    script = iter(answers)
    calls = []

    def try_key(endpoint, key):
        calls.append((endpoint, key))
        status = next(script)
        return (None, "") if status is None else (status, f"status {status}")

    check = Verifier(timeout, first_delay=1.0, max_delay=8.0, sleep=clock.sleep, clock=clock, try_key=try_key)
    return check, clock, calls


def test_a_key_accepted_at_once_takes_one_attempt():
    check, clock, calls = verifier([None])
    assert check.verify("https://a/", "k") == 1
    assert clock.sleeps == [] and calls == [("https://a/", "k")]


def test_propagation_401s_are_retried_with_growing_delays():
    check, clock, _ = verifier([401, 401, 503, 429, 401, None])
    assert check.verify("https://a/", "k") == 6
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0, 8.0]


def test_the_deadline_ends_with_a_transient_timeout_naming_the_setting():
    check, clock, calls = verifier([401] * 100, timeout=10.0)
    with pytest.raises(RotationError) as raised:
        check.verify("https://a/", "k")
    assert raised.value.code == "VerificationTimedOut" and raised.value.transient
    assert "VERIFY_TIMEOUT_SECONDS" in raised.value.message and "401" in raised.value.message
    assert clock.now == pytest.approx(10.0)  # the last wait is cut to the deadline
    assert len(calls) == 5  # at 0, 1, 3, 7 and 10 s


@pytest.mark.parametrize("status", [403, 404, 400])
def test_a_refusal_retrying_cannot_fix_is_permanent_at_once(status):
    check, _clock, calls = verifier([401, status, None])
    with pytest.raises(RotationError) as raised:
        check.verify("https://a/", "k")
    assert raised.value.code == "VerificationRejected" and not raised.value.transient
    assert "VERIFY_NEW_KEY=false" in raised.value.message
    assert len(calls) == 2
