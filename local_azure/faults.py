"""Fault injection: throttling, server errors, latency and failed long-running operations.

Rules are kept in the order they were added. A request takes the first rule that
matches its service, operation and (optionally) account or vault, and uses up one
of that rule's ``count``. Exhausted rules stay listed (``remaining: 0``) so tests
can see that they fired.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .http import Response

OPERATIONS: dict[str, frozenset[str]] = {
    "arm": frozenset({
        "getAccount", "listKeys", "readonlyKeys", "listConnectionStrings",
        "regenerateKey", "operationStatus", "operationResult",
    }),
    "vault": frozenset({
        "getSecret", "setSecret", "listSecretVersions", "listSecrets", "updateSecret", "deleteSecret",
    }),
    "dataplane": frozenset({"readAccount", "listDatabases", "other"}),
    "identity": frozenset({"token"}),
}
LRO_STATUSES = ("Failed", "Canceled")
UNLIMITED = -1

_FIELDS = {
    "service", "operation", "account", "vault", "status", "retryAfter", "count",
    "delaySeconds", "lroStatus", "errorCode", "errorMessage",
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
            "remaining": self.remaining,
            "matched": self.matched,
        }

    @property
    def message(self) -> str:
        return self.error_message or f"Injected fault #{self.id} ({self.service}/{self.operation})."


def _number(payload: dict[str, Any], name: str, minimum: float) -> float | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise FaultRuleError(f"'{name}' must be a number >= {minimum}.")
    return float(value)


def _check_target(payload: dict[str, Any]) -> tuple[str, str]:
    unknown = sorted(set(payload) - _FIELDS)
    if unknown:
        raise FaultRuleError(f"Unknown fault rule fields: {', '.join(unknown)}.")
    service = payload.get("service")
    if service not in OPERATIONS:
        raise FaultRuleError(f"'service' must be one of {', '.join(sorted(OPERATIONS))}.")
    operation = payload.get("operation", "*")
    if operation != "*" and operation not in OPERATIONS[service]:
        known = ", ".join(sorted(OPERATIONS[service]))
        raise FaultRuleError(f"Unknown operation '{operation}' for service '{service}'; known: {known}, *.")
    return service, operation


def _check_effect(payload: dict[str, Any], service: str, operation: str) -> tuple[int | None, str | None]:
    status = payload.get("status")
    if status is not None and (isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599):
        raise FaultRuleError("'status' must be an HTTP error status (400-599).")
    lro_status = payload.get("lroStatus")
    if lro_status is not None:
        if lro_status not in LRO_STATUSES:
            raise FaultRuleError("'lroStatus' must be 'Failed' or 'Canceled'.")
        if service != "arm" or operation != "regenerateKey":
            raise FaultRuleError("'lroStatus' applies only to service 'arm', operation 'regenerateKey'.")
        if status is not None:
            raise FaultRuleError("Give either 'status' (reject the request) or 'lroStatus' (fail the operation).")
    if status is None and lro_status is None and not payload.get("delaySeconds"):
        raise FaultRuleError("A fault rule needs 'status', 'lroStatus' or 'delaySeconds'.")
    return status, lro_status


def parse_rule(payload: Any, rule_id: int) -> FaultRule:
    """Validate one rule as sent to ``POST /_emulator/faults``."""
    if not isinstance(payload, dict):
        raise FaultRuleError("A fault rule must be a JSON object.")
    service, operation = _check_target(payload)
    status, lro_status = _check_effect(payload, service, operation)
    count = payload.get("count", 1)
    if isinstance(count, bool) or not isinstance(count, int) or (count < 1 and count != UNLIMITED):
        raise FaultRuleError("'count' must be a positive integer, or -1 for every matching request.")
    target = payload.get("account") or payload.get("vault")
    if target is not None and not isinstance(target, str):
        raise FaultRuleError("'account' must be a string.")
    return FaultRule(
        id=rule_id,
        service=service,
        operation=operation,
        account=target,
        status=status,
        retry_after=_number(payload, "retryAfter", 0),
        count=count,
        delay_seconds=_number(payload, "delaySeconds", 0) or 0.0,
        lro_status=lro_status,
        error_code=payload.get("errorCode"),
        error_message=payload.get("errorMessage"),
        remaining=count,
    )


class FaultRegistry:
    """Thread-safe ordered list of fault rules."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []
        self._ids = itertools.count(1)

    def add(self, payload: Any) -> list[FaultRule]:
        """Add one rule (object) or several (array); all are validated before any is added."""
        items = payload if isinstance(payload, list) else [payload]
        with self._lock:
            rules = [parse_rule(item, 0) for item in items]
            for rule in rules:
                rule.id = next(self._ids)
            self._rules.extend(rules)
            return rules

    def take(self, service: str, operation: str, account: str | None = None) -> FaultRule | None:
        """Consume one use of the first matching rule, if any."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(service, operation, account):
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


def apply_fault(fault: FaultRule | None, make_error: Callable[[int, str | None, str], Response]) -> Response | None:
    """Sleep for the rule's delay, then build its error response (None: answer normally).

    ``make_error(status, code_or_None, message)`` renders the service's own error format.
    """
    if fault is None:
        return None
    if fault.delay_seconds:
        time.sleep(fault.delay_seconds)
    if fault.status is None:
        return None
    response = make_error(fault.status, fault.error_code, fault.message)
    if fault.retry_after is not None:
        response.headers["Retry-After"] = retry_after_header(fault.retry_after)
    return response
