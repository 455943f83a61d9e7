"""Fault injection: throttling, server errors, latency, dropped connections, lost answers, stale reads and
failed long-running operations.

Rules are kept in the order they were added. A request takes the first rule that
matches its service, operation and (optionally) account, vault or container, and uses
up one of that rule's ``count``. Exhausted rules stay listed (``remaining: 0``) so tests
can see that they fired.
"""

from __future__ import annotations

import contextlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .http import DropConnection, Response, ServiceError

OPERATIONS: dict[str, frozenset[str]] = {
    "arm": frozenset({
        "getAccount", "listAccounts", "listAccountsByResourceGroup", "listKeys", "readonlyKeys",
        "listConnectionStrings", "regenerateKey", "operationStatus", "operationResult",
    }),
    "vault": frozenset({
        "getSecret", "setSecret", "listSecretVersions", "listSecrets", "updateSecret", "deleteSecret",
        "getDeletedSecret", "listDeletedSecrets", "recoverDeletedSecret", "purgeDeletedSecret",
    }),
    "dataplane": frozenset({"readAccount", "listDatabases", "other"}),
    "identity": frozenset({"token"}),
    "logs": frozenset({"query"}),
    "storage": frozenset({
        "putBlob", "getBlobProperties", "acquireLease", "renewLease", "releaseLease", "breakLease",
        "createContainer", "other",
    }),
}
LRO_STATUSES = ("Failed", "Canceled")
UNLIMITED = -1
# The one operation whose answer can lag behind a finished regeneration.
STALE_OPERATION = ("arm", "getAccount")

_FIELDS = {
    "service", "operation", "account", "vault", "container", "status", "retryAfter", "count",
    "delaySeconds", "lroStatus", "errorCode", "errorMessage", "drop", "acted", "stale", "skip",
}


class FaultRuleError(ValueError):
    """The fault rule sent to the admin API is not valid."""


@dataclass
class FaultRule:
    """One rule; see the module docstring for how rules are matched."""

    id: int
    service: str
    operation: str = "*"
    account: str | None = None
    status: int | None = None
    retry_after: float | None = None
    count: int = 1
    delay_seconds: float = 0.0
    lro_status: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    drop: bool = False
    acted: bool = False
    stale: bool = False
    skip: int = 0  # matching requests let through untouched before the rule applies
    remaining: int = 1
    matched: int = 0

    def matches(self, service: str, operation: str, account: str | None) -> bool:
        if self.remaining == 0 or self.service != service:
            return False
        if self.operation not in ("*", operation):
            return False
        return self.account is None or (account or "").lower() == self.account.lower()

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "service": self.service,
            "operation": self.operation,
            "account": self.account,
            "status": self.status,
            "retryAfter": self.retry_after,
            "count": self.count,
            "delaySeconds": self.delay_seconds,
            "lroStatus": self.lro_status,
            "errorCode": self.error_code,
            "errorMessage": self.error_message,
            "drop": self.drop,
            "acted": self.acted,
            "stale": self.stale,
            "skip": self.skip,
            "remaining": self.remaining,
            "matched": self.matched,
        }

    @property
    def message(self) -> str:
        return self.error_message or f"Injected fault #{self.id} ({self.service}/{self.operation})."


@dataclass(frozen=True)
class _Effects:
    status: int | None
    lro_status: str | None
    drop: bool
    acted: bool
    stale: bool


def _number(payload: dict[str, Any], name: str, minimum: float) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise FaultRuleError(f"'{name}' must be a number >= {minimum}.")
    return float(value)


def _flag(payload: dict[str, Any], name: str) -> bool:
    value = payload.get(name, False)
    if not isinstance(value, bool):
        raise FaultRuleError(f"'{name}' must be true or false.")
    return value


def _check_target(payload: dict[str, Any], services: frozenset[str]) -> tuple[str, str]:
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise FaultRuleError(f"Unknown fault rule fields: {', '.join(unknown)}.")
    service = payload.get("service")
    if service not in services:
        raise FaultRuleError(f"'service' must be one of {', '.join(sorted(services))}.")
    operation = payload.get("operation", "*")
    if operation != "*" and operation not in OPERATIONS[service]:
        known = ", ".join(sorted(OPERATIONS[service]))
        raise FaultRuleError(f"Unknown operation '{operation}' for service '{service}'; known: {known}, *.")
    return service, operation


def _check_effect(payload: dict[str, Any], service: str, operation: str) -> _Effects:
    status = payload.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultRuleError("'status' must be an HTTP error status (400-599).")
    drop, acted, stale = _flag(payload, "drop"), _flag(payload, "acted"), _flag(payload, "stale")
    lro_status = payload.get("lroStatus")
    if lro_status is not None:
        if lro_status not in LRO_STATUSES:
            raise FaultRuleError("'lroStatus' must be 'Failed' or 'Canceled'.")
        if service != "arm" or operation != "regenerateKey":
            raise FaultRuleError("'lroStatus' applies only to service 'arm', operation 'regenerateKey'.")
        if status is not None or drop or acted or stale:
            raise FaultRuleError("Give either 'status', 'drop' or 'acted' (the request fails) or 'lroStatus' "
                                 "(the operation fails).")
    if drop and status is not None:
        raise FaultRuleError("Give either 'status' (answer an error) or 'drop' (close the connection), not both.")
    if acted and status is None and not drop:
        raise FaultRuleError("'acted' needs 'status' or 'drop': the answer that replaces the operation's own.")
    if stale:
        if (service, operation) != STALE_OPERATION:
            raise FaultRuleError("'stale' applies only to service 'arm', operation 'getAccount'.")
        if status is not None or drop or acted:
            raise FaultRuleError("'stale' answers successfully: it cannot be combined with 'status', 'drop' or "
                                 "'acted'.")
    if status is None and lro_status is None and not (drop or stale or payload.get("delaySeconds")):
        raise FaultRuleError("A fault rule needs 'status', 'drop', 'stale', 'lroStatus' or 'delaySeconds'.")
    return _Effects(status, lro_status, drop, acted, stale)


def parse_rule(payload: Any, rule_id: int, services: frozenset[str] = frozenset(OPERATIONS)) -> FaultRule:
    """Validate one rule as sent to ``POST /_emulator/faults``."""
    if not isinstance(payload, dict):
        raise FaultRuleError("A fault rule must be a JSON object.")
    service, operation = _check_target(payload, services)
    effects = _check_effect(payload, service, operation)
    count = payload.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != UNLIMITED):
        raise FaultRuleError("'count' must be a positive integer, or -1 for every matching request.")
    target = payload.get("account") or payload.get("vault") or payload.get("container")
    if target is not None and not isinstance(target, str):
        raise FaultRuleError("'account' must be a string.")
    return FaultRule(
        id=rule_id,
        service=service,
        operation=operation,
        account=target,
        status=effects.status,
        retry_after=_number(payload, "retryAfter", 0),
        count=count,
        delay_seconds=_number(payload, "delaySeconds", 0) or 0.0,
        lro_status=effects.lro_status,
        error_code=payload.get("errorCode"),
        error_message=payload.get("errorMessage"),
        drop=effects.drop,
        acted=effects.acted,
        stale=effects.stale,
        skip=_skip(payload),
        remaining=count,
    )


def _skip(payload: dict[str, Any]) -> int:
    skip = payload.get("skip", 0)
    if isinstance(skip, bool) or not isinstance(skip, int) or skip < 0:
        raise FaultRuleError("'skip' must be a whole number >= 0.")
    return skip


class FaultRegistry:
    """Thread-safe ordered list of fault rules, for the services given (default: all). The emulator's registry
    takes every service but ``storage``; the storage front (``Azurite.faults``) has its own, for ``storage``."""

    def __init__(self, services: Iterable[str] | None = None) -> None:
        self.services = frozenset(OPERATIONS if services is None else services)
        unknown = self.services - set(OPERATIONS)
        if unknown:
            raise ValueError(f"Unknown fault services: {', '.join(sorted(unknown))}.")
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, payload: Any) -> list[FaultRule]:
        """Add one rule (object) or several (array); all are validated before any is added."""
        items = payload if isinstance(payload, list) else [payload]
        with self._lock:
            rules = [parse_rule(item, 0, self.services) for item in items]
            for rule in rules:
                rule.id = next(self._ids)
            self._rules.extend(rules)
            return rules

    def take(self, service: str, operation: str, account: str | None = None) -> FaultRule | None:
        """Consume one use of the first matching rule, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, operation, account):
                    if rule.skip:
                        rule.skip -= 1
                        return None
                    rule.matched += 1
                    if rule.remaining != UNLIMITED:
                        rule.remaining -= 1
                    return rule
        return None

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [rule.to_json() for rule in self._rules]

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` value: an integer when whole, else a decimal (azure-core parses both)."""
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"


def answer(fault: FaultRule | None, make_error: Callable[[int, str | None, str], Response],
           operation: Callable[[], Response]) -> Response:
    """Run ``operation`` under ``fault`` and return what the client sees.

    No rule: the operation's own answer. Otherwise wait ``delaySeconds`` first; with ``acted`` the operation
    runs and its answer, success or error, is thrown away; then ``drop`` closes the connection with no answer
    (raises :class:`DropConnection`), ``status`` answers that error in the service's own format
    (``make_error(status, code_or_None, message)``), and otherwise the operation runs and answers (a slow
    success, a stale read or a failing long-running operation: ``operation`` reads those from the rule).
    """
    if fault is None:
        return operation()
    if fault.delay_seconds:
        time.sleep(fault.delay_seconds)
    if fault.acted:
        with contextlib.suppress(ServiceError):  # the service acted (or refused); either way its answer is lost
            operation()
    if fault.drop:
        raise DropConnection
    if fault.status is None:
        return operation()
    response = make_error(fault.status, fault.error_code, fault.message)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = retry_after_header(fault.retry_after)
    return response
