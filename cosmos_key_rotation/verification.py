"""Step 4: prove that a new key authenticates against the account's data plane.

Azure documents a propagation delay of a minute to hours after a regeneration, during which the data
plane may still answer 401 to the new key. The SDK does not retry a 401 (it is final for any ordinary
caller), so this module retries it, with back-off, until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import RotationError

# Appended to the user agent of every verification request: key_usage.kql leaves these out (not a use).
VERIFIER_USER_AGENT = "cosmos-key-rotation-verifier"
# 401 is what an unpropagated key gets; 403 can be the account's firewall, which retrying will not fix.
_RETRY_STATUS = {401, 408, 429, 500, 502, 503, 504}


class StillVerifying(Exception):
    """The new key was still refused when the caller's wait ended, before VERIFY_TIMEOUT_SECONDS: check
    again later (continuation.py)."""


@dataclass
class Verifier:
    timeout_seconds: float
    first_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    try_key: Callable[[str, str], tuple[int | None, str]] = field(default=lambda endpoint, key: try_key(endpoint, key))

    def verify(self, endpoint: str, key: str, timeout_seconds: float | None = None,
               wait_seconds: float | None = None) -> int:
        """Return how many attempts it took; raise RotationError when the data plane refuses for good or
        the deadline passes (`timeout_seconds`, by default VERIFY_TIMEOUT_SECONDS), StillVerifying when the
        caller's own wait (`wait_seconds`) ends first."""
        timeout = self.timeout_seconds if timeout_seconds is None else timeout_seconds
        started = self.clock()
        deadline = started + timeout
        delay = self.first_delay
        attempt = 0
        while True:
            attempt += 1
            status, reason = self.try_key(endpoint, key)
            if status is None:
                return attempt
            if status not in _RETRY_STATUS:
                raise RotationError(
                    "VerificationRejected",
                    f"the data plane of {endpoint} refused the new key with {status} ({reason}); "
                    "if the account's firewall blocks this app, allow it or set VERIFY_NEW_KEY=false",
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise RotationError(
                    "VerificationTimedOut",
                    f"the new key was still refused by {endpoint} ({status} {reason}) after {attempt} attempt(s) "
                    f"over {self.timeout_seconds:g} s (VERIFY_TIMEOUT_SECONDS)",
                )
            if wait_seconds is not None and self.clock() - started + min(delay, remaining) > wait_seconds:
                raise StillVerifying()
            self.sleep(min(delay, remaining))
            delay = min(delay * 2, self.max_delay)


def _transport() -> Any:
    """One HTTP session for every verification, owned here rather than by each CosmosClient.

    A CosmosClient reads the account when it is built and then starts a background health check of the
    account's endpoints (azure/cosmos/_global_endpoint_manager.py, `_start_background_refresh`). Closing the
    client closes a transport it owns, and the health check still running on it fails and logs `Health check
    task failed` at ERROR. A transport over a session the client does not own (azure-core
    RequestsTransport(session=..., session_owner=False): its close() leaves the session open) lets the check
    finish quietly, and reuses connections across attempts."""
    from .clients import pooled_transport

    return pooled_transport()


def try_key(endpoint: str, key: str) -> tuple[int | None, str]:
    """Read the database account with the key. None when it authenticates, else (status, reason)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.cosmos import CosmosClient
    from azure.cosmos.exceptions import CosmosHttpResponseError

    try:
        # Constructing the client reads the database account (GET /), a request signed with the key.
        with CosmosClient(endpoint, credential=key, retry_total=0, connection_timeout=10,
                          transport=_transport(), user_agent_suffix=VERIFIER_USER_AGENT) as client:
            next(iter(client.list_databases(max_item_count=1)), None)
        return None, ""
    except CosmosHttpResponseError as exc:
        return exc.status_code or 0, _reason(exc)
    except (ServiceRequestError, ServiceResponseError) as exc:
        return 503, f"unreachable: {type(exc).__name__}"


def _reason(exc: object) -> str:
    sub_status = getattr(exc, "sub_status", None)
    return f"substatus {sub_status}" if sub_status else type(exc).__name__
