"""Token buckets: a burst up to the bucket's size goes at once, then requests wait for the refill."""

import threading

import pytest

from cosmos_key_rotation.budgets import Budget, Budgets, TokenBucket
from cosmos_key_rotation.settings import load_settings


class Clock:
    def __init__(self):
        self.now = 0.0
        self.lock = threading.Lock()

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        with self.lock:
            self.now += seconds


def test_a_burst_up_to_the_size_then_the_refill_rate():
    clock = Clock()
    bucket = TokenBucket(Budget(200, 10), clock=clock, sleep=clock.sleep)
    for _ in range(200):
        bucket.take()
    assert clock.now == 0
    for _ in range(50):
        bucket.take()
    assert clock.now == pytest.approx(5.0) and bucket.waited_seconds == pytest.approx(5.0)


def test_buckets_are_per_budget_and_scope():
    budgets = Budgets({"ARM_WRITE_BUDGET": Budget(1, 1000)})
    budgets.spend("ARM_WRITE_BUDGET", "sub-a")
    budgets.spend("ARM_WRITE_BUDGET", "SUB-B")  # another subscription: its own bucket, no wait
    assert budgets.waited_seconds() == 0
    budgets.spend("ARM_WRITE_BUDGET", "sub-A")  # the same subscription, any case: waits 1 ms
    assert budgets.waited_seconds() > 0


def test_budgets_are_settings_with_azure_defaults():
    env = {"COSMOS_SUBSCRIPTION_ID": "11111111-2222-3333-4444-555555555555", "COSMOS_RESOURCE_GROUP": "rg",
           "COSMOS_ACCOUNT_NAME": "docdb", "KEY_VAULT_URI": "https://kv.vault.azure.net/"}
    assert dict(load_settings(env).budgets) == {"ARM_WRITE_BUDGET": Budget(200, 10), "ARM_READ_BUDGET": Budget(250, 25),
                                               "KEY_VAULT_WRITE_BUDGET": Budget(300, 30)}
    assert dict(load_settings({**env, "ARM_WRITE_BUDGET": "100,5"}).budgets)["ARM_WRITE_BUDGET"] == Budget(100, 5)
    with pytest.raises(ValueError, match="ARM_READ_BUDGET is 'lots'"):
        load_settings({**env, "ARM_READ_BUDGET": "lots"})
