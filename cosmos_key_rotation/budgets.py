"""Request budgets: rotate as many accounts at once as Azure's own limits allow, not a fixed number.

Resource Manager limits requests per subscription (and principal) with token buckets (docs: "Understand
how Azure Resource Manager throttles requests"): writes, which include POST actions such as listKeys and
regenerateKey, and reads, each a bucket of a size refilled at a rate. Key Vault limits transactions per
vault (docs: "Azure Key Vault service limits"). Each budget here is the same kind of bucket, kept in this
process: a request waits for a token instead of being answered 429. Several processes (the CLI beside the
function app, or several Flex Consumption instances) share Azure's buckets, so a 429 can still come: the
SDKs' retries honour its Retry-After, and regenerateKey sends again after it (regeneration.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


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
        key = (name, scope.lower())
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = TokenBucket(self._budgets[name])
        bucket.take()

    def waited_seconds(self) -> float:
        with self._lock:
            return sum(bucket.waited_seconds for bucket in self._buckets.values())


UNLIMITED = Budgets({name: Budget(1e9, 1e9) for name in DEFAULT_BUDGETS})
