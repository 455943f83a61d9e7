"""An incident rotation's decisions (incident.py) and its request on the queue."""

from datetime import datetime, timedelta, timezone

from cosmos_key_rotation.continuation import Continuation
from cosmos_key_rotation.incident import generated_before, grace_until, kinds_to_retire, retired, to_record
from cosmos_key_rotation.plan import Pair, Plan, RotationRequest
from cosmos_key_rotation.rotation_queue import from_message, to_message

RW, RO = Pair("cs", ("primary", "secondary")), Pair("ro", ("primaryReadonly", "secondaryReadonly"))
T0 = datetime(2026, 11, 1, tzinfo=timezone.utc)


def test_the_keys_retired_are_the_ones_the_secrets_no_longer_publish_and_unpublished_read_only_ones():
    plans = [Plan(RW, None, "primary", "secondary", "done")]
    assert kinds_to_retire(plans, readonly_secret=False) == ["primary", "primaryReadonly", "secondaryReadonly"]
    plans.append(Plan(RO, None, "secondaryReadonly", "primaryReadonly", "done"))
    assert kinds_to_retire(plans, readonly_secret=True) == ["primary", "secondaryReadonly"]


def test_generation_times_before_retiring_are_kept_by_the_first_delivery():
    now = {"primary": T0 + timedelta(days=1), "primaryReadonly": T0}
    first = generated_before(None, ["primary", "primaryReadonly"], now)
    assert first == now
    record = {"retireGeneratedBefore": to_record(first)}
    later = {"primary": T0 + timedelta(days=2), "primaryReadonly": T0}  # the primary was retired meanwhile
    assert generated_before(record, ["primary", "primaryReadonly"], later) == first
    assert retired("primary", first, later) and not retired("primaryReadonly", first, later)
    assert not retired("secondary", first, later)  # unknown before: never taken as retired


def test_the_grace_ends_where_the_first_delivery_said():
    assert grace_until(None, T0, 300) == T0 + timedelta(seconds=300)
    assert grace_until({"graceUntil": "2026-11-01T00:01:00Z"}, T0 + timedelta(hours=1), 300) == T0 + timedelta(
        minutes=1)


def test_an_incident_request_survives_the_queue_and_ignores_the_cooldown():
    request = RotationRequest.new("docdb-a", "http", scope="all-keys")
    assert request.force and request.all_keys
    back = from_message(to_message(request), attempt=2)
    assert (back.scope, back.force, back.attempt) == ("all-keys", True, 2)
    assert from_message(to_message(RotationRequest.new("docdb-a", "timer")), 1).scope == "rotation"


def test_a_grace_continuation_wakes_when_the_grace_ends():
    ends = (datetime.now(timezone.utc) + timedelta(seconds=90)).isoformat().replace("+00:00", "Z")
    grace = Continuation("cs", "primary", "grace", "2026-11-01T00:00:00Z", until=ends)
    assert 88 <= grace.delay_seconds <= 90
    assert Continuation.from_json(grace.to_json()) == grace
