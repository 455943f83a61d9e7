"""`plan.decide`, the pure decision of step 1, as a table of cases."""

from datetime import datetime, timedelta, timezone

import pytest

from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.plan import Pair, RotationRequest, decide
from cosmos_key_rotation.times import iso
from cosmos_key_rotation.vault import LiveSecret

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=20)
RW = Pair("cs", ("primary", "secondary"))
RO = Pair("cs-ro", ("primaryReadonly", "secondaryReadonly"))
REQUEST = RotationRequest("r1", "docdb", "timer")
COOLDOWN = timedelta(minutes=60)


def live(kind, published=OLD, generated=OLD, rotation="r0"):
    tags = {"keyKind": kind, "keyGeneratedAt": iso(generated), "rotationId": rotation}
    return LiveSecret("cs", "v1", published, tags, "AccountEndpoint=x;AccountKey=k;")


def generated(**moments):
    return {"primary": OLD, "secondary": OLD, "primaryReadonly": OLD, "secondaryReadonly": OLD, **moments}


def adopted(kind, **moments):
    """A version published by `adopt`: its key may be older than the other one of the pair."""
    secret = live(kind, generated=moments[kind])
    secret.tags["newestKeyGeneratedAt"] = iso(max(generated(**moments)[k] for k in ("primary", "secondary")))
    return secret


CASES = [
    # (why, pair, strategy, live secret, keysMetadata, record, request, expected (action, kind))
    ("alternate regenerates the key the secret does not hold", RW, "alternate", live("primary"), generated(), None,
     REQUEST, ("rotate", "secondary")),
    ("and the other way round", RW, "alternate", live("secondary"), generated(), None, REQUEST, ("rotate", "primary")),
    ("read-only pair alternates on its own", RO, "alternate", live("secondaryReadonly"), generated(), None, REQUEST,
     ("rotate", "primaryReadonly")),
    ("fixed strategy regenerates the live key", RW, "primary", live("primary"), generated(), None, REQUEST,
     ("rotate", "primary")),
    ("fixed strategy on the read-only pair", RO, "secondary", live("primaryReadonly"), generated(), None, REQUEST,
     ("rotate", "secondaryReadonly")),
    ("a key regenerated after publication is finished, not repeated", RW, "alternate", live("primary"),
     generated(secondary=NOW - timedelta(minutes=5)), None, REQUEST, ("resume", "secondary")),
    ("resuming ignores the cooldown", RW, "alternate", live("primary", published=NOW - timedelta(minutes=1)),
     generated(secondary=NOW), None, REQUEST, ("resume", "secondary")),
    ("this request published already: only record", RW, "alternate", live("secondary", rotation="r1"), generated(),
     None, REQUEST, ("done", "secondary")),
    ("inside the cooldown", RW, "alternate", live("primary", published=NOW - timedelta(minutes=10)), generated(), None,
     REQUEST, ("cooldown", "secondary")),
    ("force overrides the cooldown", RW, "alternate", live("primary", published=NOW - timedelta(minutes=10)),
     generated(), None, RotationRequest("r1", "docdb", "http", force=True), ("rotate", "secondary")),
    ("a requested kind picks the read-write key", RW, "alternate", live("secondary"), generated(), None,
     RotationRequest("r1", "docdb", "http", key_kind="primary"), ("rotate", "primary")),
    ("the read-only pair ignores a requested kind", RO, "alternate", live("primaryReadonly"), generated(), None,
     RotationRequest("r1", "docdb", "http", key_kind="primary"), ("rotate", "secondaryReadonly")),
    ("the record says this request regenerated", RW, "alternate", live("primary", generated=OLD - timedelta(days=1)),
     generated(primary=OLD - timedelta(days=1), secondary=OLD),
     {"regeneratingKeyKind": "secondary", "keyGeneratedBefore": iso(OLD - timedelta(days=2))}, REQUEST,
     ("resume", "secondary")),
    ("a regeneration that failed left the time as it was: regenerate", RW, "alternate",
     live("primary", generated=OLD + timedelta(days=1)), generated(primary=OLD + timedelta(days=1)),
     {"regeneratingKeyKind": "secondary", "keyGeneratedBefore": iso(OLD)}, REQUEST, ("rotate", "secondary")),
    ("an adopted key older than the other one: that one is regenerated, not resumed", RW, "alternate",
     adopted("primary", primary=OLD - timedelta(days=9)), generated(primary=OLD - timedelta(days=9)), None, REQUEST,
     ("rotate", "secondary")),
    ("under a fixed strategy a live key newer than its secret is an interrupted rotation", RW, "primary",
     live("primary"), generated(primary=NOW - timedelta(minutes=2)), None, REQUEST, ("resume", "primary")),
]



@pytest.mark.parametrize("why, pair, strategy, secret, metadata, record, asked, expected", CASES,
                         ids=[case[0] for case in CASES])
def test_decide(why, pair, strategy, secret, metadata, record, asked, expected):
    plan = decide(pair, strategy, secret, secret.key_kind if secret else None, metadata, record, asked, NOW,
                  COOLDOWN)
    assert (plan.action, plan.kind) == expected
    assert plan.generated_before == (None if plan.action == "done" else metadata[plan.kind])


def test_publish_first_exactly_when_the_regenerated_key_is_the_live_one():
    fixed = decide(RW, "primary", live("primary"), "primary", generated(), None, REQUEST, NOW, COOLDOWN)
    alternate = decide(RW, "alternate", live("primary"), "primary", generated(), None, REQUEST, NOW, COOLDOWN)
    assert fixed.publish_first and not alternate.publish_first


@pytest.mark.parametrize("force", [False, True])
def test_the_live_key_is_never_requested_under_alternate_even_with_force(force):
    request = RotationRequest("r1", "docdb", "http", key_kind="primary", force=force)
    with pytest.raises(RotationError) as raised:
        decide(RW, "alternate", live("primary"), "primary", generated(), None, request, NOW, COOLDOWN)
    assert raised.value.code == "KeyKindIsLive" and not raised.value.transient


def test_without_a_secret_nothing_is_regenerated():
    with pytest.raises(RotationError) as raised:
        decide(RW, "alternate", None, None, generated(), None, REQUEST, NOW, COOLDOWN)
    assert raised.value.code == "NoLiveSecret" and not raised.value.transient
    assert "adopt --target" in raised.value.message
    with pytest.raises(RotationError, match="does not exist"):  # not under a fixed strategy either
        decide(RW, "secondary", None, None, generated(), None, REQUEST, NOW, COOLDOWN)


@pytest.mark.parametrize("pair, declared, kind", [(RW, "secondary", "secondary"), (RO, "primary", "primaryReadonly")])
def test_a_declared_live_key_is_adopted(pair, declared, kind):
    plan = decide(pair, "alternate", None, None, generated(), None, REQUEST, NOW, COOLDOWN, declared=declared)
    assert (plan.action, plan.kind) == ("adopt", kind)


def test_a_live_key_regenerated_outside_the_product_is_reported():
    changed = generated(primary=NOW - timedelta(hours=1))
    with pytest.raises(RotationError) as raised:
        decide(RW, "alternate", live("primary"), "primary", changed, None, REQUEST, NOW, COOLDOWN)
    assert raised.value.code == "KeyChangedOutside" and "adopt --force --key-kind primary" in raised.value.message


def test_a_secret_holding_no_current_key_is_reported():
    untagged = LiveSecret("cs", "v1", OLD, {}, "AccountEndpoint=x;AccountKey=gone;")
    with pytest.raises(RotationError) as raised:
        decide(RW, "alternate", untagged, None, generated(), None, REQUEST, NOW, COOLDOWN)
    assert raised.value.code == "KeyChangedOutside"
