"""Request budgets: rotate as many accounts at once as Azure's own limits allow, not a fixed number.

Resource Manager limits requests per subscription (and principal) with token buckets (docs: "Understand
how Azure Resource Manager throttles requests"): writes, which include POST actions such as listKeys and
regenerateKey, and reads, each a bucket of a size refilled at a rate. Key Vault limits transactions per
vault (docs: "Azure Key Vault service limits"). Each budget here is the same kind of bucket, kept in this
process: a request waits for a token instead of being answered 429. `budget_policy` sits in each client's
pipeline, so every request the SDKs send counts, retries and pages included.

Several processes (the CLI beside the function app, several Flex Consumption instances) share Azure's
buckets, so a 429 can still come. It did not act (Resource Manager and Key Vault throttle before the
request reaches the service), so the policy sends it again after its Retry-After, for up to
THROTTLED_PATIENCE_SECONDS: azure-core's RetryPolicy would allow only three (it counts 429s against
retry_status, default 3: azure/core/pipeline/policies/_retry.py), and a fleet sharing a bucket meets more.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# How long one request waits out 429s before the answer goes back to the caller (a Throttled error).
THROTTLED_PATIENCE_SECONDS = 600.0
# The longest Retry-After believed; a longer one is waited in steps of this.
MAX_RETRY_AFTER_SECONDS = 60.0
# The wait after a 429 that names none, and the least wait after one (`Retry-After: 0` must not spin).
DEFAULT_RETRY_AFTER_SECONDS = 5.0
MIN_RETRY_AFTER_SECONDS = 0.5


@dataclass(frozen=True)
class Budget:
    size: float  # tokens when full: a burst of that many requests goes at once
    per_second: float  # tokens added each second

    @staticmethod
    def parse(text: str) -> Budget:
        """`size,per_second`, e.g. `200,10`."""
        size, per_second = (float(part) for part in text.split(","))
        if size < 1 or per_second <= 0:
            raise ValueError("the size must be at least 1 and the rate above 0")
        return Budget(size, per_second)

    def __str__(self) -> str:
        return f"{self.size:g},{self.per_second:g}"


# Azure's numbers (the docs above, and the product's fleet issue): ARM writes 200 refilled 10 per second,
# reads 250 refilled 25 per second, per subscription; Key Vault secret writes 300 per 10 seconds per vault.
DEFAULT_BUDGETS = {
    "ARM_WRITE_BUDGET": Budget(200, 10),
    "ARM_READ_BUDGET": Budget(250, 25),
    "KEY_VAULT_WRITE_BUDGET": Budget(300, 30),
}


class TokenBucket:
    def __init__(self, budget: Budget, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.budget = budget
        self._tokens = budget.size
        self._clock, self._sleep = clock, sleep
        self._updated = clock()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0  # how long requests waited for a token, in all

    def observe(self, remaining: float) -> None:
        """Azure said how many requests are left in its bucket: never believe there are more here."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self.budget.size, self._tokens + (now - self._updated) * self.budget.per_second)
            self._updated = now
            self._tokens = min(self._tokens, max(0.0, remaining))

    def take(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.budget.size, self._tokens + (now - self._updated) * self.budget.per_second)
                self._updated = now
                if self._tokens >= 1 - 1e-9:  # float dust must not leave a caller waiting forever
                    self._tokens = max(0.0, self._tokens - 1)
                    return
                wait = (1 - self._tokens) / self.budget.per_second
                self.waited_seconds += wait
            self._sleep(wait)


class Budgets:
    """One bucket per budget and scope (a subscription, a vault), made on first use."""

    def __init__(self, budgets: dict[str, Budget] | None = None) -> None:
        self._budgets = {**DEFAULT_BUDGETS, **(budgets or {})}
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def spend(self, name: str, scope: str) -> None:
        """Wait for a token of budget `name` (a setting's name) for `scope`."""
        self._bucket(name, scope).take()

    def observe(self, name: str, scope: str, remaining: float) -> None:
        """What Azure says is left of that budget (0 after a 429)."""
        self._bucket(name, scope).observe(remaining)

    def _bucket(self, name: str, scope: str) -> TokenBucket:
        key = (name, scope.lower())
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self._budgets[name])
            return bucket

    def waited_seconds(self) -> float:
        with self._lock:
            return sum(bucket.waited_seconds for bucket in self._buckets.values())


# Resource Manager reports, on every answer, what is left of the subscription's buckets (docs: "Understand how
# Azure Resource Manager throttles requests", "Remaining requests").
_ARM_REMAINING = (("x-ms-ratelimit-remaining-subscription-reads", "ARM_READ_BUDGET"),
                  ("x-ms-ratelimit-remaining-subscription-writes", "ARM_WRITE_BUDGET"))


def budget_of(service: str, method: str) -> str | None:
    """The budget a request spends: Resource Manager reads are GETs, every other method (POST actions such
    as listKeys and regenerateKey included) a write; Key Vault's budget counts its writes only. A Logs query
    (the in-use guard, one per rotation) spends none: its 429s are still waited out."""
    if service == "arm":
        return "ARM_READ_BUDGET" if method in ("GET", "HEAD") else "ARM_WRITE_BUDGET"
    if service == "logs":
        return None
    return None if method in ("GET", "HEAD") else "KEY_VAULT_WRITE_BUDGET"


def retry_after(headers: Any) -> float | None:
    """The wait an answer names: retry-after-ms (Azure's milliseconds), else Retry-After in seconds."""
    lowered = {name.lower(): value for name, value in (headers or {}).items()}
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            seconds = float(lowered[name]) * scale
        except (KeyError, ValueError):
            continue
        if seconds >= 0:
            return min(seconds, MAX_RETRY_AFTER_SECONDS)
    return None


def budget_policy(budgets: Budgets, scope: str, service: str, sleep: Callable[[float], None] = time.sleep,
                  patience_seconds: float | None = None) -> Any:
    """An azure-core policy, placed after the RetryPolicy (`per_retry_policies`) so that it sees every
    attempt: each request sent first takes a token of its budget; each answer keeps the budget in step with
    Azure's own buckets (Resource Manager's remaining-requests headers; a 429 empties it); a 429 is sent
    again after its Retry-After and a token, for up to `patience_seconds` (THROTTLED_PATIENCE_SECONDS)."""
    from azure.core.pipeline.policies import HTTPPolicy

    class BudgetPolicy(HTTPPolicy):  # type: ignore[type-arg]
        def send(self, request: Any) -> Any:
            name = budget_of(service, request.http_request.method)
            # Kept on the request: the RetryPolicy before this one re-sends the same request, and the
            # patience is the request's, not each attempt's.
            throttled = request.context.setdefault("throttled_seconds", 0.0)
            while True:
                if name is not None:
                    budgets.spend(name, scope)
                response = self.next.send(request)
                answer = response.http_response
                for header, remaining in _ARM_REMAINING if service == "arm" else ():
                    value = answer.headers.get(header)
                    if value is not None and value.isdigit():
                        budgets.observe(remaining, scope, float(value))
                if answer.status_code != 429:
                    return response
                if name is not None:
                    budgets.observe(name, scope, 0)
                named = retry_after(answer.headers)
                delay = max(DEFAULT_RETRY_AFTER_SECONDS if named is None else named, MIN_RETRY_AFTER_SECONDS)
                patience = THROTTLED_PATIENCE_SECONDS if patience_seconds is None else patience_seconds
                if throttled + delay > patience:
                    return response
                sleep(delay)
                throttled = request.context["throttled_seconds"] = throttled + delay

    return BudgetPolicy()
