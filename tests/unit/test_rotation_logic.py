"""The rotation protocol against in-memory doubles: the decisions, step by step. The end-to-end tests
prove the same behaviour through the real entry points, SDKs and emulator."""

import base64
import secrets
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest

from cosmos_key_rotation.accounts import KEY_KINDS, AccountState, connection_string
from cosmos_key_rotation.errors import RotationError
from cosmos_key_rotation.onboarding import adopt
from cosmos_key_rotation.rotation import RotationRequest, Rotator
from cosmos_key_rotation.settings import Settings, Target
from cosmos_key_rotation.vault import LiveSecret

ENDPOINT = "https://docdb-test.documents.azure.cn:443/"


def new_key() -> str:
    return base64.b64encode(secrets.token_bytes(64)).decode()


class FakeAccounts:
    def __init__(self) -> None:
        self.keys_ = {kind: new_key() for kind in KEY_KINDS}
        old = datetime.now(timezone.utc) - timedelta(days=40)
        self.generated = {kind: old for kind in KEY_KINDS}
        self.regenerated: list[str] = []
        self.fail_regeneration = False

    def get(self, target):
        return AccountState(ENDPOINT, dict(self.generated))

    def regenerate(self, target, kind, before=None, before_send=lambda: None, wait_seconds=None, on_wait=None):
        before_send()
        if self.fail_regeneration:
            raise RotationError("RegenerationFailed", "operation failed")
        self.regenerated.append(kind)
        self.keys_[kind] = new_key()
        self.generated[kind] = datetime.now(timezone.utc)
        return self.get(target)

    def keys(self, target):
        return dict(self.keys_)

    def connection_string(self, target, kind, endpoint, not_key=None):
        return connection_string(endpoint, self.keys_[kind])


class FakeVault:
    def __init__(self) -> None:
        self.stored: dict[str, list[LiveSecret]] = {}

    def live(self, name):
        versions = self.stored.get(name)
        return versions[-1] if versions else None

    def publish(self, name, value, tags, validity_days):
        version = secrets.token_hex(16)
        self.stored.setdefault(name, []).append(
            LiveSecret(name, version, datetime.now(timezone.utc), dict(tags), value))
        return version

    def versions(self, name):
        return list(self.stored.get(name, []))

    def disable(self, name, version):
        self.stored[name] = [replace(v, enabled=False) if v.version == version else v for v in self.stored[name]]


class FakeVerifier:
    def __init__(self) -> None:
        self.verified: list[str] = []

    def verify(self, endpoint, key, timeout_seconds=None, wait_seconds=None):
        self.verified.append(key)
        return 1


class FakeRecords:
    def __init__(self) -> None:
        self.rows: dict[str, dict] = {}

    def save(self, rotation_id, **fields):
        self.rows.setdefault(rotation_id, {}).update({k: v for k, v in fields.items() if v is not None})

    def get(self, rotation_id):
        return self.rows.get(rotation_id)


def make(strategy="alternate", readonly=None, cooldown=60, adopted="primary"):
    """A rotator over doubles; the target is adopted (its `adopted` key published as it is) unless None."""
    target = Target("docdb-test", "11111111-2222-3333-4444-555555555555", "rg", "docdb-test",
                    "https://kv.vault.azure.cn/", "cs", readonly, strategy)
    settings = Settings(targets=(target,), min_rotation_interval_minutes=cooldown)
    accounts, vault, verifier = FakeAccounts(), FakeVault(), FakeVerifier()
    rotator = Rotator(settings, accounts, lambda uri: vault, verifier, records=FakeRecords(), regenerator=accounts)
    if adopted:
        assert adopt(rotator, RotationRequest.new("docdb-test", "cli"), adopted).outcome == "succeeded"
    return rotator, accounts, vault, verifier


def rotate(rotator, **kwargs):
    return rotator.rotate(RotationRequest.new("docdb-test", "cli", **kwargs))


def test_alternate_regenerates_the_key_the_secret_does_not_use():
    rotator, accounts, vault, _ = make(cooldown=0)
    first = rotate(rotator)
    assert (first.outcome, first.key_kind) == ("succeeded", "secondary")
    second = rotate(rotator)
    assert (second.outcome, second.key_kind, second.previous_key_kind) == ("succeeded", "primary", "secondary")
    assert accounts.regenerated == ["secondary", "primary"]
    assert [v.tags["keyKind"] for v in vault.stored["cs"]] == ["primary", "secondary", "primary"]


def test_published_secret_carries_the_tags_and_the_new_key():
    rotator, accounts, vault, verifier = make()
    result = rotate(rotator)
    live = vault.live("cs")
    assert live.value == connection_string(ENDPOINT, accounts.keys_["secondary"])
    assert set(live.tags) >= {"cosmosAccount", "keyKind", "rotatedAt", "rotationId", "trigger", "keyGeneratedAt"}
    assert live.tags["rotationId"] == result.id and live.tags["trigger"] == "cli"
    assert verifier.verified == [accounts.keys_["secondary"]]


def test_fixed_strategy_always_regenerates_that_kind():
    rotator, accounts, _, _ = make(strategy="primary", cooldown=0)
    rotate(rotator)
    rotate(rotator)
    assert accounts.regenerated == ["primary", "primary"]


def test_cooldown_skips_unless_forced():
    rotator, accounts, _, _ = make()
    rotate(rotator)
    skipped = rotate(rotator)
    assert skipped.outcome == "skipped" and "MIN_ROTATION_INTERVAL_MINUTES" in skipped.reason
    forced = rotate(rotator, force=True)
    assert forced.outcome == "succeeded"
    assert accounts.regenerated == ["secondary", "primary"]


def test_retry_after_crash_does_not_regenerate_twice():
    rotator, accounts, vault, _ = make()
    rotate(rotator)
    # Crash after step 2: primary regenerated, never published.
    accounts.regenerate(None, "primary")
    result = rotate(rotator)  # inside the cooldown, still finishes the interrupted attempt
    assert result.outcome == "succeeded" and result.key_kind == "primary"
    assert accounts.regenerated == ["secondary", "primary"]
    assert vault.live("cs").value == connection_string(ENDPOINT, accounts.keys_["primary"])


def test_first_rotation_interrupted_before_any_secret_resumes_on_redelivery():
    rotator, accounts, vault, _ = make()
    request = RotationRequest.new("docdb-test", "timer")
    vault.publish = lambda *args: (_ for _ in ()).throw(RotationError("Throttled", "busy"))
    failed = rotator.rotate(request)
    assert (failed.outcome, failed.transient) == ("failed", True)
    del vault.publish  # Key Vault answers again
    resumed = rotator.rotate(request)
    assert resumed.outcome == "succeeded"
    assert accounts.regenerated == ["secondary"]
    assert vault.live("cs").value == connection_string(ENDPOINT, accounts.keys_["secondary"])


def test_redelivered_request_after_publication_only_records():
    rotator, accounts, vault, _ = make()
    request = RotationRequest.new("docdb-test", "timer")
    assert rotator.rotate(request).outcome == "succeeded"
    again = rotator.rotate(request)
    assert again.outcome == "succeeded" and again.key_kind == "secondary"
    assert accounts.regenerated == ["secondary"] and len(vault.stored["cs"]) == 2  # adopted, then rotated


def test_failed_regeneration_leaves_the_secret_untouched():
    rotator, accounts, vault, _ = make()
    rotate(rotator)
    before = vault.live("cs")
    accounts.fail_regeneration = True
    result = rotate(rotator, force=True)
    assert (result.outcome, result.error_code, result.transient) == ("failed", "RegenerationFailed", True)
    assert vault.live("cs") == before


def test_requesting_the_live_key_under_alternate_is_refused():
    rotator, accounts, _, _ = make()
    rotate(rotator)
    result = rotate(rotator, key_kind="secondary", force=True)
    assert (result.outcome, result.error_code) == ("failed", "KeyKindIsLive")
    assert accounts.regenerated == ["secondary"]


def test_an_untagged_secret_is_recognised_by_its_key():
    rotator, accounts, vault, _ = make()
    vault.stored["cs"] = [LiveSecret("cs", "v0", datetime.now(timezone.utc) - timedelta(days=30), {},
                                       connection_string(ENDPOINT, accounts.keys_["secondary"]))]
    result = rotate(rotator)
    assert (result.key_kind, result.previous_key_kind) == ("primary", "secondary")


def test_read_only_pair_alternates_into_its_own_secret():
    rotator, accounts, vault, _ = make(readonly="cs-ro", cooldown=0)
    first = rotate(rotator)
    second = rotate(rotator)
    assert (first.readonly_key_kind, second.readonly_key_kind) == ("secondaryReadonly", "primaryReadonly")
    assert accounts.regenerated == ["secondary", "secondaryReadonly", "primary", "primaryReadonly"]
    assert vault.live("cs-ro").value == connection_string(ENDPOINT, accounts.keys_["primaryReadonly"])


def test_a_requested_key_kind_picks_the_read_write_key_only():
    rotator, _, vault, _ = make(readonly="cs-ro", cooldown=0)
    rotate(rotator)  # secondary + secondaryReadonly live
    vault.stored["cs"].pop()  # the read-write secret back to nothing: the pairs are out of step
    result = rotate(rotator, key_kind="secondary")
    assert (result.key_kind, result.readonly_key_kind) == ("secondary", "primaryReadonly")
    assert result.outcome == "succeeded"


def test_dry_run_changes_nothing():
    rotator, accounts, vault, _ = make()
    before = {name: list(versions) for name, versions in vault.stored.items()}
    result = rotate(rotator, dry_run=True)
    assert result.outcome == "skipped" and "would rotate secondary" in result.reason
    assert accounts.regenerated == [] and vault.stored == before


@pytest.mark.parametrize("name", ["nope"])
def test_unknown_target_fails_with_a_code(name):
    rotator, *_ = make()
    result = rotator.rotate(RotationRequest.new(name, "cli"))
    assert (result.outcome, result.error_code) == ("failed", "UnknownTarget")


class Order:
    """Shared log of what the doubles did, in order."""

    def __init__(self, rotator, accounts, vault, verifier):
        self.steps = []
        publish, verify, regenerate = vault.publish, verifier.verify, accounts.regenerate
        vault.publish = lambda *a: self.steps.append("publish") or publish(*a)
        verifier.verify = lambda *a, **k: self.steps.append("verify") or verify(*a, **k)
        accounts.regenerate = lambda *a, **k: self.steps.append("regenerate") or regenerate(*a, **k)


def test_alternate_verifies_before_publishing():
    rotator, accounts, vault, verifier = make()
    order = Order(rotator, accounts, vault, verifier)
    rotate(rotator)
    assert order.steps == ["regenerate", "verify", "publish"]


def test_a_fixed_strategy_publishes_the_new_live_key_before_verifying_it():
    rotator, accounts, vault, verifier = make(strategy="primary", cooldown=0)
    rotate(rotator)
    order = Order(rotator, accounts, vault, verifier)
    rotate(rotator)
    assert order.steps == ["regenerate", "publish", "verify"]


def test_a_fixed_strategy_whose_published_key_does_not_verify_fails_for_good_at_error():
    rotator, accounts, vault, verifier = make(strategy="primary", cooldown=0)
    rotate(rotator)
    verifier.verify = lambda endpoint, key, **_: (_ for _ in ()).throw(RotationError("VerificationTimedOut", "401s"))
    result = rotate(rotator)
    assert (result.outcome, result.error_code, result.transient) == ("failed", "PublishedKeyUnverified", False)
    live = vault.live("cs")
    assert live.value == connection_string(ENDPOINT, accounts.keys_["primary"])  # the only valid key is published
    assert result.secret_version == live.version and result.key_kind == "primary"


def test_alternate_publishes_nothing_when_the_new_key_does_not_verify():
    rotator, _accounts, vault, verifier = make(cooldown=0)
    rotate(rotator)
    before = vault.live("cs")
    verifier.verify = lambda endpoint, key, **_: (_ for _ in ()).throw(RotationError("VerificationTimedOut", "401s"))
    result = rotate(rotator)
    assert (result.outcome, result.error_code, result.transient) == ("failed", "VerificationTimedOut", True)
    assert vault.live("cs") == before and result.secret_version is None


class FailingRecords(FakeRecords):
    def __init__(self, fail_times):
        super().__init__()
        self.fail_times = fail_times

    def save(self, rotation_id, **fields):
        if self.fail_times and "status" in fields:  # the start and the final save, not the protocol's own
            self.fail_times -= 1
            raise RotationError("ServiceUnavailable", "Storage answered 503")
        super().save(rotation_id, **fields)


@pytest.mark.parametrize("fail_times", [1, 2, 3])
def test_a_record_that_cannot_be_saved_never_hides_the_outcome(fail_times, caplog):
    rotator, _accounts, vault, _ = make()
    rotator.records = FailingRecords(fail_times)
    with caplog.at_level("INFO"):
        result = rotate(rotator)
    assert result.outcome == "succeeded" and vault.live("cs") is not None
    assert [r.event for r in caplog.records if getattr(r, "event", None) == "RotationSucceeded"]
    saved = rotator.records.rows.get(result.id, {})
    # start fails (1), start and first final save fail (2): the retried final save lands; all three fail: none.
    assert saved.get("status") == ("succeeded" if fail_times < 3 else None)


def test_the_lease_is_confirmed_before_regenerating_and_before_publishing():
    rotator, accounts, vault, _ = make()

    class Lease:
        def __init__(self, good):
            self.good = good

        def confirm(self):
            if self.good == 0:
                raise RotationError("LeaseLost", "renewal failed")
            self.good -= 1

        def marker(self):
            return None

        def mark(self, marker):
            return None

    class Leases:
        def __init__(self, good):
            self.good = good

        def hold(self, target, wait_seconds):
            from contextlib import nullcontext

            return nullcontext(Lease(self.good))

    rotate(rotator)  # secondary published
    published = vault.live("cs")
    rotator.leases = Leases(0)
    first = rotate(rotator, force=True)
    assert (first.error_code, first.transient) == ("LeaseLost", True) and accounts.regenerated == ["secondary"]
    rotator.leases = Leases(1)  # still ours when regenerating, lost before publishing
    second = rotate(rotator, force=True)
    assert second.error_code == "LeaseLost" and accounts.regenerated == ["secondary", "primary"]
    assert vault.live("cs") == published
    rotator.leases = Leases(5)
    third = rotate(rotator)  # resumes, inside the cooldown: no second regeneration
    assert (third.outcome, third.key_kind) == ("succeeded", "primary")
    assert accounts.regenerated == ["secondary", "primary"]


def test_a_secret_holding_a_bare_key_is_recognised_by_comparison():
    rotator, accounts, vault, _ = make()
    vault.stored["cs"] = [LiveSecret("cs", "v0", datetime.now(timezone.utc) - timedelta(days=30), {},
                                       accounts.keys_["primary"])]
    result = rotate(rotator)
    assert (result.key_kind, result.previous_key_kind) == ("secondary", "primary")
    assert accounts.regenerated == ["secondary"]
