"""The rotation protocol of PRODUCT.md §2, one function per step, each safe to run a second time.

A rotation of a target rotates its read-write pair into its secret and, when a read-only secret is
configured, its read-only pair into that one. For each pair:

1. plan        — read the live secret; choose the key kind to regenerate (under `alternate`, never the
                 live one); notice an earlier attempt that regenerated and did not publish.
2. regenerate  — through Resource Manager; skipped when resuming, so a key is never regenerated twice.
3. read        — the new connection string.
4. verify      — against the account's data plane, until it authenticates; until then nothing changes.
5. publish     — a new secret version, tagged, typed and with an expiry.
6. record      — the outcome, in the status record and as events.

The whole rotation runs under the account's lease, so overlapping requests cannot interleave.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .accounts import METADATA_NAMES, READ_ONLY_KINDS, READ_WRITE_KINDS, Accounts, AccountState, key_of, kind_holding
from .errors import LeaseBusy, RotationError
from .events import EventLog
from .settings import Settings, Target
from .times import iso, now_text, parse_iso
from .vault import LiveSecret, Vault
from .verification import Verifier

log = logging.getLogger(__name__)

TRIGGERS = ("timer", "http", "cli")
# A secret published without our keyGeneratedAt tag is compared by its creation time, which Key Vault
# keeps in whole seconds: allow for that rounding.
_CREATED_ON_ROUNDING = timedelta(seconds=1)
_CLOCK_SKEW = timedelta(minutes=1)


@dataclass(frozen=True)
class RotationRequest:
    id: str
    target: str
    trigger: str
    key_kind: str | None = None
    force: bool = False
    dry_run: bool = False
    attempt: int = 1
    retryable: bool = False  # the caller retries a transient failure (the queue worker)

    @staticmethod
    def new(target: str, trigger: str, key_kind: str | None = None, force: bool = False,
            dry_run: bool = False) -> RotationRequest:
        return RotationRequest(str(uuid.uuid4()), target, trigger, key_kind, force, dry_run)


@dataclass(frozen=True)
class Pair:
    """A secret and the two key kinds that alternate into it."""

    secret_name: str
    kinds: tuple[str, str]

    @property
    def read_only(self) -> bool:
        return self.kinds == READ_ONLY_KINDS


@dataclass(frozen=True)
class Plan:
    pair: Pair
    live: LiveSecret | None
    live_kind: str | None
    kind: str
    action: str  # "rotate", "resume" (regenerated earlier, not published), "done" (this id published), "cooldown"
    cooldown_left: timedelta | None = None


@dataclass
class RotationResult:
    id: str
    target: str
    trigger: str
    outcome: str  # succeeded, skipped, failed
    key_kind: str | None = None
    previous_key_kind: str | None = None
    secret_name: str | None = None
    secret_version: str | None = None
    readonly_key_kind: str | None = None
    readonly_secret_version: str | None = None
    reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    transient: bool = False
    duration_ms: int = 0
    key_generated_at: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        document = {_camel(k): v for k, v in asdict(self).items() if v not in (None, {}) and k != "transient"}
        return document


def pairs_of(target: Target) -> list[Pair]:
    pairs = [Pair(target.secret_name, READ_WRITE_KINDS)]
    if target.readonly_secret_name:
        pairs.append(Pair(target.readonly_secret_name, READ_ONLY_KINDS))
    return pairs


class Rotator:
    """Runs rotations. The collaborators are the SDK-backed ones in production, doubles in unit tests."""

    def __init__(self, settings: Settings, accounts: Accounts, vault_for: Callable[[str], Vault],
                 verifier: Verifier, leases: Any = None, records: Any = None,
                 lease_wait_seconds: float = 15.0) -> None:
        self.settings = settings
        self.accounts = accounts
        self.vault_for = vault_for
        self.verifier = verifier
        self.leases = leases
        self.records = records
        self.lease_wait_seconds = lease_wait_seconds

    # -- one rotation, from request to record -------------------------------------------------------

    def rotate(self, request: RotationRequest) -> RotationResult:
        started = time.monotonic()
        result = RotationResult(request.id, request.target, request.trigger, "failed")
        try:
            target = self.settings.target(request.target)
        except KeyError:
            result.error_code, result.error_message = "UnknownTarget", f"no target named {request.target!r}"
            return self._finish(result, request, None, EventLog(), started)
        events = EventLog({
            "rotationId": request.id, "trigger": request.trigger, "target": target.name,
            "subscriptionId": target.subscription_id, "resourceGroup": target.resource_group,
            "account": target.account, "attempt": request.attempt, "secretName": target.secret_name,
        })
        result.secret_name = target.secret_name
        if not request.dry_run:
            self._save(request.id, status="running", target=target.name, trigger=request.trigger,
                       attempt=request.attempt, startedAt=now_text(), secretName=target.secret_name)
        events.emit("RotationStarted", f"RotationStarted {target.name}", keyKind=request.key_kind)
        account: AccountState | None = None
        try:
            if request.dry_run:
                account = self.accounts.get(target)
                self._dry_run(target, account, request, result)
            else:
                with self._lease(target):
                    account = self.accounts.get(target)
                    account = self._run(target, account, request, result, events)
        except LeaseBusy as busy:
            result.outcome, result.reason = "skipped", f"{busy.code}: {busy.message}"
        except RotationError as error:
            result.error_code, result.error_message, result.transient = error.code, error.message, error.transient
        except Exception as exc:  # a bug, not a service answer: keep the type, never the details
            log.error("unexpected %s in rotation %s", type(exc).__name__, request.id)
            result.error_code, result.error_message = "UnexpectedError", f"{type(exc).__name__} (see the logs)"
        return self._finish(result, request, account, events, started)

    def _lease(self, target: Target) -> Any:
        if self.leases is None:
            from contextlib import nullcontext

            return nullcontext()
        return self.leases.hold(target, wait_seconds=self.lease_wait_seconds)

    def _run(self, target: Target, account: AccountState, request: RotationRequest, result: RotationResult,
             events: EventLog) -> AccountState:
        plans = [self.plan(target, pair, account, request) for pair in pairs_of(target)]
        work = [p for p in plans if p.action in ("rotate", "resume")]
        if not work:
            self._describe(result, plans)
            if any(p.action == "done" for p in plans):  # an earlier delivery published it all: only record
                result.outcome = "succeeded"
            else:
                result.outcome, result.reason = "skipped", _cooldown_reason(plans[0], self.settings)
            return account
        published: dict[str, str] = {}
        for plan in work:
            account, published[plan.pair.secret_name] = self._finish_pair(
                target, account, plan, request, events.bind(secretName=plan.pair.secret_name)
            )
        self._describe(result, plans, published)
        result.outcome = "succeeded"
        return account

    def _finish_pair(self, target: Target, account: AccountState, plan: Plan, request: RotationRequest,
                     events: EventLog) -> tuple[AccountState, str]:
        """Steps 2 to 5 for one pair; returns the account as it is now and the published version."""
        if plan.action == "rotate":
            account = self.regenerate(target, plan, request, events)
        connection_string = self.read(target, plan.kind, account)
        self.verify(target, plan, connection_string, account, events)
        version = self.publish(target, plan, connection_string, account, request)
        events.emit("SecretPublished", f"SecretPublished {target.name} {plan.pair.secret_name} {plan.kind}",
                    keyKind=plan.kind, previousKeyKind=plan.live_kind, secretVersion=version)
        return account, version

    # -- the six steps --------------------------------------------------------------------------------

    def plan(self, target: Target, pair: Pair, account: AccountState, request: RotationRequest) -> Plan:
        """Step 1. Reads only. Run again, it sees what the last run left and plans the rest:
        a published secret tagged with this request's id means that pair is done; a key regenerated
        after the live secret was published means an interrupted attempt to finish, not to repeat."""
        live = self.vault_for(target.key_vault_uri).live(pair.secret_name)
        live_kind = self._live_kind(target, pair, live)
        kind = self._choose_kind(target, pair, live_kind, request)
        if live is not None and live.rotation_id == request.id:
            return Plan(pair, live, live_kind, live_kind or kind, "done")
        if _regenerated_since_published(kind, account, live) or self._regenerated_by(request, kind, account):
            return Plan(pair, live, live_kind, kind, "resume")
        left = self._cooldown_left(live)
        if left is not None and not request.force:
            return Plan(pair, live, live_kind, kind, "cooldown", left)
        return Plan(pair, live, live_kind, kind, "rotate")

    def regenerate(self, target: Target, plan: Plan, request: RotationRequest, events: EventLog) -> AccountState:
        """Step 2. Not repeatable by nature, which is why `plan` sends an interrupted attempt to
        `resume` instead: the account's keysMetadata remembers the regeneration, and the record says this
        request asked for it (which matters when no secret was published yet to compare with)."""
        started = time.monotonic()
        self._save(request.id, regeneratingKeyKind=plan.kind, regenerationRequestedAt=now_text())
        self.accounts.regenerate(target, plan.kind)
        account = self.accounts.get(target)
        events.emit("KeyRegenerated", f"KeyRegenerated {target.name} {plan.kind}", keyKind=plan.kind,
                    previousKeyKind=plan.live_kind, durationMs=_ms(started))
        return account

    def read(self, target: Target, kind: str, account: AccountState) -> str:
        """Step 3. A read: repeating it returns the same key until the next regeneration."""
        return self.accounts.connection_string(target, kind, account.document_endpoint)

    def verify(self, target: Target, plan: Plan, connection_string: str, account: AccountState,
               events: EventLog) -> None:
        """Step 4. A read against the data plane: repeatable. Until it passes, nothing is published."""
        if not self.settings.verify_new_key:
            return
        started = time.monotonic()
        attempts = self.verifier.verify(account.document_endpoint, key_of(connection_string) or "")
        events.emit("KeyVerified", f"KeyVerified {target.name} {plan.kind} after {attempts} attempt(s)",
                    keyKind=plan.kind, durationMs=_ms(started))

    def publish(self, target: Target, plan: Plan, connection_string: str, account: AccountState,
                request: RotationRequest) -> str:
        """Step 5. Adds a secret version. Repeated after a crash, it adds one more version holding the
        same key (harmless); `plan` stops even that once a version carries this request's id."""
        tags = {
            "cosmosAccount": target.account_id,
            "keyKind": plan.kind,
            "rotatedAt": now_text(),
            "rotationId": request.id,
            "trigger": request.trigger,
        }
        generated = account.key_generated_at.get(plan.kind)
        if generated is not None:
            tags["keyGeneratedAt"] = iso(generated)
        vault = self.vault_for(target.key_vault_uri)
        return vault.publish(plan.pair.secret_name, connection_string, tags, self.settings.secret_validity_days)

    def _finish(self, result: RotationResult, request: RotationRequest, account: AccountState | None,
                events: EventLog, started: float) -> RotationResult:
        """Step 6. Record the outcome: an upsert of the record and one event, both repeatable."""
        result.duration_ms = _ms(started)
        if account is not None:
            result.key_generated_at = {
                METADATA_NAMES[kind]: iso(value) for kind, value in account.key_generated_at.items() if value
            }
        retrying = result.outcome == "failed" and result.transient and request.retryable
        if not request.dry_run:
            self._save(
                request.id, target=request.target, trigger=request.trigger, attempt=request.attempt,
                status="queued" if retrying else result.outcome, keyKind=result.key_kind,
                previousKeyKind=result.previous_key_kind, secretVersion=result.secret_version,
                readonlyKeyKind=result.readonly_key_kind, readonlySecretVersion=result.readonly_secret_version,
                reason=result.reason, errorCode=result.error_code, errorMessage=result.error_message,
                finishedAt=None if retrying else now_text(), durationMs=result.duration_ms,
            )
        _emit_outcome(events, result, retrying, self.settings.max_key_age_days)
        return result

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _describe(result: RotationResult, plans: list[Plan], published: dict[str, str] | None = None) -> None:
        """Fill the result's key kinds and secret versions from the plans and what was published."""
        published = published or {}
        for plan in plans:
            rotated = plan.pair.secret_name in published
            kind = plan.kind if rotated or plan.action == "done" else plan.live_kind
            version = published.get(plan.pair.secret_name) or (plan.live.version if plan.live else None)
            if plan.pair.read_only:
                result.readonly_key_kind, result.readonly_secret_version = kind, version
            else:
                result.key_kind, result.secret_version = kind, version
                result.previous_key_kind = plan.live_kind if rotated else None

    def _live_kind(self, target: Target, pair: Pair, live: LiveSecret | None) -> str | None:
        """The key kind the live secret holds: from its tag, else by comparing it with the keys."""
        if live is None:
            return None
        if live.key_kind in pair.kinds:
            return live.key_kind
        # A secret we did not publish (onboarding an existing one): find which key it holds, in memory.
        return kind_holding(key_of(live.value), {k: v for k, v in self.accounts.keys(target).items()
                                                 if k in pair.kinds})

    def _choose_kind(self, target: Target, pair: Pair, live_kind: str | None, request: RotationRequest) -> str:
        # A requested key kind picks the read-write key; the read-only pair follows its own secret.
        requested = request.key_kind if request.key_kind and not pair.read_only else None
        if target.strategy == "alternate":
            if requested is not None and requested == live_kind:
                raise RotationError(
                    "KeyKindIsLive",
                    f"{requested} is the key that secret {pair.secret_name} publishes now; under the alternate "
                    "strategy the live key is never regenerated (applications still use it)",
                )
            if requested is not None:
                return requested
            if live_kind is None:
                return pair.kinds[1]  # nothing published yet: start with the secondary, as the original script
            return pair.kinds[0] if live_kind == pair.kinds[1] else pair.kinds[1]
        return requested or _pair_kind(target.strategy, pair)

    def _regenerated_by(self, request: RotationRequest, kind: str, account: AccountState) -> bool:
        """Whether an earlier attempt of this same request regenerated `kind` and did not publish it."""
        record = self.records.get(request.id) if self.records is not None and not request.dry_run else None
        if not record or record.get("regeneratingKeyKind") != kind:
            return False
        asked = parse_iso(record.get("regenerationRequestedAt"))
        generated = account.key_generated_at.get(kind)
        # Two clocks (ours, the account's): allow for skew. Resuming is always safe, since `kind` is not
        # the live key; regenerating twice is what must not happen.
        return asked is not None and generated is not None and generated >= asked - _CLOCK_SKEW

    def _cooldown_left(self, live: LiveSecret | None) -> timedelta | None:
        if live is None or live.created_on is None:
            return None
        interval = timedelta(minutes=self.settings.min_rotation_interval_minutes)
        left = live.created_on + interval - datetime.now(timezone.utc)
        return left if left > timedelta(0) else None

    def _save(self, rotation_id: str, **fields: Any) -> None:
        if self.records is not None:
            self.records.save(rotation_id, **fields)

    def _dry_run(self, target: Target, account: AccountState, request: RotationRequest,
                 result: RotationResult) -> None:
        plans = [self.plan(target, pair, account, request) for pair in pairs_of(target)]
        steps = [f"{p.action} {p.kind} into {p.pair.secret_name}" for p in plans]
        result.outcome, result.reason = "skipped", "dry run: would " + "; ".join(steps)
        self._describe(result, plans)
        for plan in plans:
            if plan.pair.read_only:
                result.readonly_key_kind = plan.kind
            else:
                result.key_kind, result.previous_key_kind = plan.kind, plan.live_kind


def _pair_kind(kind: str, pair: Pair) -> str:
    """Map `primary`/`secondary` onto the pair: the read-only pair uses `primaryReadonly`/..."""
    base = kind.removesuffix("Readonly")
    return f"{base}Readonly" if pair.read_only else base


def _regenerated_since_published(kind: str, account: AccountState, live: LiveSecret | None) -> bool:
    generated = account.key_generated_at.get(kind)
    if live is None or generated is None:
        return False
    tagged = parse_iso(live.tags.get("keyGeneratedAt"))
    if tagged is not None:  # both times come from the account's keysMetadata: one clock
        return generated > tagged
    return live.created_on is not None and generated > live.created_on + _CREATED_ON_ROUNDING


def _cooldown_reason(plan: Plan, settings: Settings) -> str:
    minutes = int((plan.cooldown_left or timedelta(0)).total_seconds() // 60) + 1
    return (f"cooldown: secret {plan.pair.secret_name} was published less than "
            f"{settings.min_rotation_interval_minutes} min ago (MIN_ROTATION_INTERVAL_MINUTES); "
            f"next rotation possible in {minutes} min, or use force")


def _emit_outcome(events: EventLog, result: RotationResult, retrying: bool, max_key_age_days: int) -> None:
    common: dict[str, Any] = {
        "keyKind": result.key_kind, "previousKeyKind": result.previous_key_kind,
        "secretVersion": result.secret_version, "durationMs": result.duration_ms,
        "maxKeyAgeDays": max_key_age_days, **{f"{name}GeneratedAt": value
                                              for name, value in result.key_generated_at.items()},
    }
    if result.outcome == "succeeded":
        events.emit("RotationSucceeded", f"RotationSucceeded {result.target} {result.key_kind}",
                    outcome="succeeded", **common)
    elif result.outcome == "skipped":
        events.emit("RotationSkipped", f"RotationSkipped {result.target}: {result.reason}", outcome="skipped",
                    reason=result.reason, **common)
    else:
        outcome = "retrying" if retrying else "failed"
        level = logging.WARNING if retrying else logging.ERROR
        events.emit("RotationFailed", f"RotationFailed {result.target} {result.error_code}: {result.error_message}",
                    level, outcome=outcome, errorCode=result.error_code, errorMessage=result.error_message,
                    **common)


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)
