"""Request counts per emulated service, for benchmarks ("Resource Manager requests per rotation").

Every answered request of the identity, Resource Manager, Key Vault and data-plane endpoints is counted
once, whatever its status, by service, class (``reads``/``writes``) and operation (the fault-rule operation
names, ``unknown`` for a path no operation serves). ``throttled`` counts the answers with status 429,
whether a token bucket or a fault rule refused the request; ``throttling`` in the admin view says what each
bucket refused. The admin API (``/_emulator/*``) is not counted. Dropped connections are not answers and
are not counted.
"""

from __future__ import annotations

import datetime
import threading
from collections import Counter
from typing import Any

SERVICES = ("identity", "arm", "vault", "dataplane")
THROTTLED = 429


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Metrics:
    """Thread-safe counters with their own lock (never the state lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since = _utc_now()
        # (service, kind, operation, status) -> answers
        self._counts: Counter[tuple[str, str, str, int]] = Counter()

    def record(self, service: str, kind: str, operation: str, status: int) -> None:
        with self._lock:
            self._counts[(service, kind, operation, status)] += 1

    def snapshot(self, reset: bool = False) -> dict[str, Any]:
        """The counts, and (``reset``) zero them in the same step so no request falls between two windows."""
        with self._lock:
            counts, since = Counter(self._counts), self._since
            if reset:
                self._counts.clear()
                self._since = _utc_now()
        view: dict[str, Any] = {"since": since}
        for service in SERVICES:
            view[service] = _service_view(service, counts)
        return view


def _empty() -> dict[str, int]:
    return {"requests": 0, "throttled": 0}


def _add(entry: dict[str, int], status: int, n: int) -> None:
    entry["requests"] += n
    if status == THROTTLED:
        entry["throttled"] += n


def _service_view(service: str, counts: Counter[tuple[str, str, str, int]]) -> dict[str, Any]:
    view: dict[str, Any] = {**_empty(), "reads": _empty(), "writes": _empty(), "operations": {}, "statuses": {}}
    for (svc, kind, operation, status), n in sorted(counts.items()):
        if svc != service:
            continue
        _add(view, status, n)
        _add(view[kind], status, n)
        _add(view["operations"].setdefault(operation, _empty()), status, n)
        view["statuses"][str(status)] = view["statuses"].get(str(status), 0) + n
    return view
