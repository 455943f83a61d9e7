"""Request throttling as token buckets, for Resource Manager (per subscription) and Key Vault (per vault).

Resource Manager (Microsoft Learn, "Understand how Azure Resource Manager throttles requests", section
"Regional throttling and token bucket algorithm"): since 2024 a subscription's requests are limited per
region by token buckets, per operation type: reads 250 tokens refilled at 25 a second, writes and deletes
200 refilled at 10 a second. A request takes one token; with none left it is answered 429 and does not
reach the resource provider.

Key Vault (Microsoft Learn, "Azure Key Vault service limits", "Secrets, managed storage account keys, and
vault transactions"): per vault and region, at most 300 "CREATE secret" and 4,000 "all other" transactions
in 10 seconds. The emulator models each as a token bucket of that size refilled at a tenth of it a second
(300 and 30/s, 4,000 and 400/s): from full it lets the same burst through, then the same sustained rate.

A bucket's configuration is ``[size, refillPerSecond]`` or ``None`` (no throttling). Buckets are made
lazily, full, per (service, scope, kind); changing a configuration refills the bucket with the new size.
Refused requests take no token (Key Vault: "Failed requests that return a 429 do not count towards the
throttle limits", "Azure Key Vault throttling guidance").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

BucketSpec = tuple[int, float]
SERVICES = ("arm", "vault")
KINDS = ("reads", "writes")

ARM_WRITE_BUCKET: BucketSpec = (200, 10.0)
ARM_READ_BUCKET: BucketSpec = (250, 25.0)
# "CREATE secret": 300 per 10 s; "All other transactions": 4,000 per 10 s (the service limits page above).
VAULT_WRITE_BUCKET: BucketSpec = (300, 30.0)
VAULT_READ_BUCKET: BucketSpec = (4000, 400.0)


@dataclass(frozen=True)
class Decision:
    """What a bucket said about one request: ``allowed``; ``remaining`` whole tokens left (after this request's,
    when allowed); ``retry_after`` whole seconds until one token is back (only when refused)."""

    allowed: bool
    remaining: int
    retry_after: int = 0


class TokenBucket:
    """``size`` tokens at most, refilled continuously at ``rate`` a second; not thread-safe on its own."""

    def __init__(self, spec: BucketSpec, now: float) -> None:
        self.spec = spec
        self.size, self.rate = spec
        self.tokens = float(self.size)
        self.updated = now
        self.refused = 0
        self.taken = 0
        self.lowest = self.tokens  # the fewest tokens left after a request: the margin before throttling

    def _refill(self, now: float) -> None:
        self.tokens = min(float(self.size), self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def take(self, now: float) -> Decision:
        self._refill(now)
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            self.taken += 1
            self.lowest = min(self.lowest, self.tokens)
            return Decision(True, int(self.tokens))
        self.refused += 1
        self.lowest = 0.0
        # Whole seconds, rounded up, until one token is back: never 0, so a client that honours it is served.
        wait = (1.0 - self.tokens) / self.rate
        return Decision(False, 0, max(1, math.ceil(wait - 1e-9)))

    def to_json(self, now: float) -> dict[str, Any]:
        self._refill(now)
        return {"size": self.size, "refillPerSecond": self.rate, "tokens": round(self.tokens, 3),
                "lowest": int(self.lowest), "taken": self.taken, "refused": self.refused}


class Throttler:
    """Every bucket of every service, behind one small lock of its own (never the state lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], TokenBucket] = {}
        # Refusals per (service, kind), kept when a bucket is rebuilt; zeroed by to_json(reset_counts=True).
        self._refused: dict[tuple[str, str], int] = {}

    def take(self, service: str, scope: str, kind: str, spec: BucketSpec | None) -> Decision | None:
        """One token from the (service, scope, kind) bucket; ``None`` when that kind is not throttled."""
        if spec is None:
            return None
        key = (service, scope.lower(), kind)
        with self._lock:
            now = self._clock()
            bucket = self._buckets.get(key)
            if bucket is None or bucket.spec != spec:
                bucket = self._buckets[key] = TokenBucket(spec, now)
            decision = bucket.take(now)
            if not decision.allowed:
                self._refused[(service, kind)] = self._refused.get((service, kind), 0) + 1
            return decision

    def reset(self) -> None:
        """Forget every bucket (the next request finds a full one) and every count."""
        with self._lock:
            self._buckets.clear()
            self._refused.clear()

    def to_json(self, reset_counts: bool = False) -> dict[str, Any]:
        """``{service: {"refused": {kind: n}, "buckets": [{"scope", "kind", "size", ...}]}}`` for ``arm`` and
        ``vault`` (kinds ``reads`` and ``writes``), every count present even when 0. ``reset_counts`` zeroes the
        counts in the same step; the buckets keep their tokens (a metrics window must not change throttling)."""
        with self._lock:
            now = self._clock()
            view: dict[str, Any] = {
                service: {"refused": {kind: 0 for kind in KINDS}, "buckets": []} for service in SERVICES}
            for (service, kind), refused in self._refused.items():
                view.setdefault(service, {"refused": {}, "buckets": []})["refused"][kind] = refused
            for (service, scope, kind), bucket in sorted(self._buckets.items()):
                entry = view.setdefault(service, {"refused": {}, "buckets": []})
                entry["buckets"].append({"scope": scope, "kind": kind, **bucket.to_json(now)})
            if reset_counts:
                self._refused.clear()
                for bucket in self._buckets.values():
                    bucket.refused = bucket.taken = 0
                    bucket.lowest = bucket.tokens
            return view


def parse_bucket(wire: str, value: Any) -> BucketSpec | None:
    """``[size, refillPerSecond]`` (size a whole number >= 1, refill > 0) or ``None``."""
    if value is None:
        return None
    if (not isinstance(value, (list, tuple)) or len(value) != 2
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in value)):
        raise ValueError(f"'{wire}' must be [size, refillPerSecond] or null (no throttling).")
    size, rate = value
    if size < 1 or not float(size).is_integer() or rate <= 0 or not math.isfinite(rate):
        raise ValueError(f"'{wire}': the size must be a whole number >= 1 and the refill rate a number > 0.")
    return int(size), float(rate)
