"""Step 2: regenerate one key through Resource Manager. Sent once, followed to its end, confirmed from the
account's keysMetadata; and, when it outlasts the caller's wait, handed back to be checked later.

- regenerateKey goes out without automatic retries: azure-core's RetryPolicy re-sends a POST answered 500,
  503, 504 or carrying Retry-After (azure/core/pipeline/policies/_retry.py), and a service that acted
  before answering so would regenerate twice. After an unclear answer nothing is sent at once: keysMetadata
  moves only when a regeneration completes, so the account is read until the key's generationTime passes
  the value read before the request (the lost request acted) or the wait ends; only then is one new request
  sent. A 429 did not act: Resource Manager throttles before the request reaches the resource provider
  (docs: "Understand how Azure Resource Manager throttles requests"); the client's budget policy sends it
  again after its Retry-After (budgets.py), and one that still comes back is a refusal.
- The operation is followed through its Azure-AsyncOperation URL, here rather than with azure-core's
  ARMPolling, because a regeneration can take hours (Azure documents minutes to hours on a large account):
  a queue worker checks it, and when it is still running hands the URL to a continuation message that
  checks it once more later. Between checks in one process it waits the service's Retry-After when there is
  one, else an interval that starts short and grows, so a short regeneration costs little more than its
  own time and a long one few reads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .accounts import Accounts, AccountState
from .budgets import retry_after
from .error_table import from_sdk
from .errors import RotationError
from .settings import Target

# Waits between two checks of a running operation when the service names none, then the last one repeated:
# a 3 s regeneration is seen done at 3.5 s; a 5-minute one costs 34 checks.
POLL_INTERVALS = (0.5, 1.0, 2.0, 4.0, 8.0, 10.0)
# How many regenerateKey requests with an unclear answer one rotation sends at most.
SEND_ATTEMPTS = 3
# Answers to the POST that prove it did not act: Resource Manager or Cosmos DB refused it, or no token.
# (A dropped connection, a 5xx or a 429 may come after the service acted: those are unclear.)
_REFUSED = ("BadRequest", "AuthenticationFailed", "AuthorizationFailed", "AccountNotFound", "ScopeLocked",
            "CredentialUnavailable", "UnexpectedServiceAnswer", "Throttled")
_FINAL = {"succeeded": "Succeeded", "failed": "Failed", "canceled": "Canceled", "cancelled": "Canceled"}


class StillRegenerating(Exception):
    """The operation was still running when the caller's wait ended: check `operation_url` again later."""

    def __init__(self, operation_url: str | None) -> None:
        super().__init__("the regeneration is still running")
        self.operation_url = operation_url


@dataclass(frozen=True)
class _Accepted:
    operation_url: str | None  # None: Resource Manager named none; keysMetadata alone tells when it is done
    retry_after: float | None  # when the 202 says to look first


class Regenerator:
    def __init__(self, accounts: Accounts, management_client_for: Any, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.accounts = accounts
        self._client_for = management_client_for
        self._sleep, self._clock = sleep, clock

    @property
    def confirm_wait_seconds(self) -> float:
        """How long keysMetadata is watched: the accounts' wait for a read that lags behind a regeneration."""
        return self.accounts.confirm_wait_seconds

    def regenerate(self, target: Target, kind: str, before: datetime | None,
                   before_send: Callable[[], None] = lambda: None, wait_seconds: float | None = None,
                   on_wait: Callable[[float], None] | None = None) -> AccountState:
        """Regenerate `kind` and return the account once keysMetadata shows the new key. `before` is that
        kind's generationTime as read before; `before_send` runs before each request (the caller fences its
        lease and notes the request in its record there). Raises StillRegenerating when the operation outlasts
        `wait_seconds` (None: wait as long as it takes)."""
        started = self._clock()
        last: RotationError | None = None
        for attempt in range(1, SEND_ATTEMPTS + 1):
            before_send()
            answer = self._send(target, kind, resent=attempt > 1)
            if isinstance(answer, _Accepted):
                # Nothing is done the instant it is accepted: the first look waits the 202's Retry-After, or
                # the first interval.
                first = max(answer.retry_after or 0.0, POLL_INTERVALS[0])
                if wait_seconds is None or first <= wait_seconds:
                    self._sleep(first)
                remaining = None if wait_seconds is None else max(0.0, wait_seconds - (self._clock() - started))
                return self.follow(target, kind, before, answer.operation_url, remaining, on_wait, checks=1)
            last = answer
            account = self.watch(target, kind, before)
            if account is not None:  # the unclear request did act
                return account
        assert last is not None
        if last.code == "AccountBusy":  # still refused after our last request: nothing acted
            raise RotationError(last.code, last.message)
        raise RotationError("RegenerationUnconfirmed", f"{last.message}; keysMetadata showed no new {kind} key "
                            f"within {self.confirm_wait_seconds:g} s of any of {SEND_ATTEMPTS} requests (the next "
                            "attempt reads it again before sending anything)")

    def follow(self, target: Target, kind: str, before: datetime | None, operation_url: str | None,
               wait_seconds: float | None, on_wait: Callable[[float], None] | None = None,
               checks: int = 0) -> AccountState:
        """Check the accepted operation until it ends, then read keysMetadata until it shows the new key.
        With `wait_seconds` 0 it checks once (a continuation). Raises StillRegenerating while it runs past
        the wait, RegenerationFailed when it ended Failed or Canceled (the key did not change). `checks`
        says how far along the growing intervals the waiting already is."""
        started = self._clock()
        while operation_url is not None:
            status, hint, error = self._check(target, operation_url)
            if status == "Succeeded":
                break
            if status in ("Failed", "Canceled"):
                raise RotationError("RegenerationFailed", f"Resource Manager could not regenerate the {kind} key of "
                                    f"{target.account}: the operation ended {status}: {error}")
            # The service's Retry-After when it names one (never under the first interval: `0` must not spin).
            grown = POLL_INTERVALS[min(checks, len(POLL_INTERVALS) - 1)]
            delay = grown if hint is None else max(hint, POLL_INTERVALS[0])
            checks += 1
            elapsed = self._clock() - started
            if wait_seconds is not None and elapsed + delay > wait_seconds:
                raise StillRegenerating(operation_url)
            if on_wait is not None:
                on_wait(elapsed)
            self._sleep(delay)
        account = self.watch(target, kind, before)
        if account is None:
            if operation_url is None and wait_seconds is not None:
                raise StillRegenerating(None)
            raise RotationError("KeyNotUpdated", f"the regeneration of the {kind} key of {target.account} succeeded, "
                                f"but the account still showed the old key after {self.confirm_wait_seconds:g} s")
        return account

    def watch(self, target: Target, kind: str, before: datetime | None) -> AccountState | None:
        """Read the account until `kind`'s generationTime is newer than `before`; None if the wait passes.
        A read that still shows the old time is read again, never used: its key would be the old one."""
        deadline = self._clock() + self.confirm_wait_seconds
        delay = 0.5
        while True:
            try:
                account = self.accounts.get(target)
            except RotationError as error:
                if not error.transient:
                    raise
            else:
                generated = account.key_generated_at.get(kind)
                if generated is not None and (before is None or generated > before):
                    return account
            remaining = deadline - self._clock()
            if remaining <= 0:
                return None
            self._sleep(min(delay, remaining))
            delay = min(delay * 2, 10.0)

    def _send(self, target: Target, kind: str, resent: bool) -> _Accepted | RotationError:
        """Send regenerateKey once: accepted (with its operation URL), or an unclear answer to read
        keysMetadata about, or a throttled one to send again; a clear refusal is raised."""
        from azure.core.exceptions import ServiceRequestError
        from azure.mgmt.cosmosdb.models import DatabaseAccountRegenerateKeyParameters

        action = f"regenerate the {kind} key of {target.account}"
        headers: dict[str, str] = {}

        def keep_headers(pipeline_response: Any) -> None:
            headers.update(pipeline_response.http_response.headers)

        try:
            # polling=False: the operation is followed by follow(), which a continuation can resume.
            self._client_for(target.subscription_id).database_accounts.begin_regenerate_key(
                target.resource_group, target.account, DatabaseAccountRegenerateKeyParameters(key_kind=kind),
                polling=False, retry_total=0, raw_response_hook=keep_headers)
        except ServiceRequestError as exc:  # never reached the service
            raise from_sdk(exc, "arm", action) from None
        except Exception as exc:
            error = from_sdk(exc, "arm", action)
            # A first 412 is someone else's operation; after a resend it may be ours, still running.
            if error.code in _REFUSED or (error.code == "AccountBusy" and not resent):
                raise error from None
            return error
        lowered = {name.lower(): value for name, value in headers.items()}
        return _Accepted(lowered.get("azure-asyncoperation") or lowered.get("location"),
                         retry_after(headers))

    def _check(self, target: Target, url: str) -> tuple[str, float | None, str]:
        """One GET of the operation (a read: azure-core's retries apply). Its status, the service's
        Retry-After, and its error when it failed. An Azure-AsyncOperation URL answers a status document; a
        Location URL answers 202 while the operation runs."""
        from azure.core.rest import HttpRequest

        try:
            response = self._client_for(target.subscription_id).send_request(HttpRequest("GET", url))
            response.raise_for_status()
        except Exception as exc:
            raise from_sdk(exc, "arm", f"check the regeneration of {target.account}") from None
        hint = retry_after(response.headers)
        if response.status_code == 202:
            return "InProgress", hint, ""
        try:
            document = response.json() if response.text() else {}
        except ValueError:
            document = {}
        status = str(document.get("status") or ("Succeeded" if response.status_code in (200, 204) else "InProgress"))
        error = document.get("error") or {}
        detail = f"{error.get('code', 'OperationFailed')}: {error.get('message', '')}".strip(": ")
        return _FINAL.get(status.lower(), "InProgress"), hint, detail
