"""Step 4: prove that a new key authenticates against the account's data plane before publishing it.

Azure documents a propagation delay of a minute to hours after a regeneration, during which the data
plane may still answer 401 to the new key. The SDK does not retry a 401 (it is final for any ordinary
caller), so this module retries it, with back-off, until the deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import RotationError

# 401 is what an unpropagated key gets; 403 can be the account's firewall, which retrying will not fix.
_RETRY_STATUS = {401, 408, 429, 500, 502, 503, 504}


@dataclass
class Verifier:
    timeout_seconds: float
    first_delay: float = 1.0
    max_delay: float = 30.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic

    def verify(self, endpoint: str, key: str) -> int:
        """Return how many attempts it took; raise RotationError when the deadline passes."""
        deadline = self.clock() + self.timeout_seconds
        delay = self.first_delay
        attempt = 0
        while True:
            attempt += 1
            status, reason = _try_key(endpoint, key)
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
                    f"the new key was still refused by {endpoint} ({status} {reason}) after {attempt} attempts "
                    f"over {self.timeout_seconds:g} s; nothing was published and the old secret stays live",
                    transient=True,
                )
            self.sleep(min(delay, remaining))
            delay = min(delay * 2, self.max_delay)


def _try_key(endpoint: str, key: str) -> tuple[int | None, str]:
    """Read the database account with the key. None when it authenticates, else (status, reason)."""
    from azure.core.exceptions import ServiceRequestError, ServiceResponseError
    from azure.cosmos import CosmosClient
    from azure.cosmos.exceptions import CosmosHttpResponseError

    try:
        # Constructing the client reads the database account (GET /), a request signed with the key.
        with CosmosClient(endpoint, credential=key, retry_total=0, connection_timeout=10) as client:
            next(iter(client.list_databases(max_item_count=1)), None)
        return None, ""
    except CosmosHttpResponseError as exc:
        return exc.status_code or 0, _reason(exc)
    except (ServiceRequestError, ServiceResponseError) as exc:
        return 503, f"unreachable: {type(exc).__name__}"


def _reason(exc: object) -> str:
    sub_status = getattr(exc, "sub_status", None)
    return f"substatus {sub_status}" if sub_status else type(exc).__name__
