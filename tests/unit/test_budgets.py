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


# -- the pipeline policy, in a real azure-core pipeline ------------------------------------------------------

class Transport:
    """An azure-core transport answering a script of (status, headers)."""

    def __init__(self, answers, sleep):
        self.answers, self.sent, self.sleep = list(answers), [], sleep

    def __enter__(self):
        return self

    def __exit__(self, *args):
        pass

    def open(self):
        pass

    def close(self):
        pass

    def send(self, request, **kwargs):
        from azure.core.rest._http_response_impl import HttpResponseImpl

        self.sent.append(request.method)
        status, headers = self.answers.pop(0)
        return HttpResponseImpl(request=request, internal_response=None, status_code=status, headers=headers,
                                reason="", content_type=None, stream_download_generator=None)


def pipeline(answers, budgets, clock, retries=0, patience=600.0, service="arm"):
    from azure.core.pipeline import Pipeline
    from azure.core.pipeline.policies import RetryPolicy

    from cosmos_key_rotation.budgets import budget_policy

    transport = Transport(answers, clock.sleep)
    policies = [RetryPolicy(retry_total=retries, retry_backoff_factor=0),
                budget_policy(budgets, "sub-a", service, sleep=clock.sleep, patience_seconds=patience)]
    return Pipeline(transport, policies), transport


def run(pipe, method="GET"):
    from azure.core.rest import HttpRequest

    return pipe.run(HttpRequest(method, "https://management.example/x")).http_response.status_code


def test_429s_are_sent_again_after_their_retry_after_however_many_come():
    clock = Clock()
    budgets = Budgets()
    pipe, transport = pipeline([(429, {"Retry-After": "2"})] * 20 + [(200, {})], budgets, clock)
    assert run(pipe, "POST") == 200
    assert len(transport.sent) == 21 and clock.now >= 40.0  # azure-core alone would have stopped after 3


def test_a_429_past_the_patience_goes_back_to_the_caller_and_the_retry_policy_does_not_renew_it():
    clock = Clock()
    pipe, transport = pipeline([(429, {"Retry-After": "30"})] * 30, Budgets(), clock, retries=3, patience=90.0)
    assert run(pipe) == 429
    # 4 sends within the patience (0, 30, 60, 90 s), then each of the RetryPolicy's 3 retries once.
    assert len(transport.sent) == 4 + 3


def test_every_attempt_spends_a_token_and_a_429_empties_the_budget():
    clock = Clock()
    budgets = Budgets({"ARM_READ_BUDGET": Budget(5, 1)})
    pipe, _ = pipeline([(200, {})] * 2 + [(429, {"Retry-After": "1"}), (200, {})], budgets, clock)
    run(pipe), run(pipe)  # 2 of the 5 tokens
    run(pipe)  # a 429 after 1 token: the budget is empty, so the resend waits for a refill as well
    assert budgets.waited_seconds() > 0


def test_remaining_requests_headers_bring_the_budget_down_to_azures():
    clock = Clock()
    budgets = Budgets()
    pipe, _ = pipeline([(200, {"x-ms-ratelimit-remaining-subscription-writes": "0"}), (200, {})], budgets, clock)
    run(pipe, "POST")  # Azure says its write bucket is empty (another process spent it)
    run(pipe, "POST")
    assert budgets.waited_seconds() == pytest.approx(0.1, abs=0.01)  # one token at 10 per second


def test_key_vault_reads_spend_nothing():
    clock = Clock()
    budgets = Budgets({"KEY_VAULT_WRITE_BUDGET": Budget(1, 1)})
    pipe, _ = pipeline([(200, {})] * 3, budgets, clock, service="vault")
    run(pipe), run(pipe)
    assert budgets.waited_seconds() == 0
    run(pipe, "PUT")
    assert budgets.waited_seconds() == 0


def test_a_logs_query_spends_no_budget():
    from cosmos_key_rotation.budgets import budget_of

    assert budget_of("logs", "POST") is None
    assert (budget_of("arm", "POST"), budget_of("vault", "PUT")) == ("ARM_WRITE_BUDGET", "KEY_VAULT_WRITE_BUDGET")
