"""The rotation protocol of PRODUCT.md §2, one function per step, each safe to run a second time.

A rotation of a target rotates its read-write pair into its secret and, when a read-only secret is
configured, its read-only pair into that one. For each pair:

1. plan        — read the live secret and the account; `plan.decide` (pure) chooses the key kind to
                 regenerate (under `alternate`, never the live one) and notices an earlier attempt that
                 regenerated and did not publish. It never guesses which key applications use: with no
                 secret nothing is regenerated, unless the target declares that key, which is adopted.
   guard       — with a workspace (IN_USE_GUARD), read who used that key recently from the account's
                 diagnostic logs; `in_use_guard.judge` (pure) refuses a key something still uses.
2. regenerate  — through Resource Manager, sent once; skipped when resuming, so a key is never
                 regenerated twice.
3. read        — the new connection string.
4. verify      — against the account's data plane, until it authenticates.
5. publish     — a new secret version, tagged, typed and with an expiry; then the earlier versions whose
                 key has been regenerated since are disabled (hygiene.py).
6. record      — the outcome, in the status record and as events.

An incident rotation (scope all-keys, incident.py) then waits INCIDENT_GRACE_SECONDS for applications to
re-read and regenerates the keys that were live: `retire`.

Under `alternate` the key regenerated is one applications do not hold, so it is verified before it is
published: until it verifies, nothing changes. Under a fixed strategy (`primary`, `secondary`) the key
regenerated is the live one, dead the moment the regeneration completes: the new key is published as soon
as it is read, then verified. The whole rotation runs under the account's lease, which is confirmed before
each step that changes Azure (regenerate, publish). `Rotator.run` is that frame (target, record, lease,
outcome); onboarding.py runs the operator's adopt and rollback in it too.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from .accounts import Accounts, AccountState, key_of, kind_holding
from .continuation import Continuation
from .errors import LeaseBusy, RotationError
from .events import EventLog
from .hygiene import dead_versions
from .in_use_guard import judge
from .incident import generated_before, grace_until, kinds_to_retire, retired, to_record
from .key_usage import KeyUsageReader
from .leases import Marker, NoLease
from .plan import TRIGGERS, Pair, Plan, RotationRequest, decide
from .plan import pairs_of as _pairs_of
from .regeneration import Regenerator, StillRegenerating
from .settings import Settings, Target
from .times import iso, now_text, parse_iso
from .vault import LiveSecret, Vault
from .verification import StillVerifying, Verifier

__all__ = ["TRIGGERS", "RotationRequest", "RotationResult", "Rotator", "pairs_of"]

log = logging.getLogger(__name__)
INCIDENT = ("grace", "retiring")  # the continuation phases of an incident rotation


@dataclass
class RotationResult:
    id: str
    target: str
    trigger: str
    outcome: str  # succeeded, skipped, failed; running: handed to a continuation while Azure works
    key_kind: str | None = None
    previous_key_kind: str | None = None
    secret_name: str | None = None
    secret_version: str | None = None
    readonly_key_kind: str | None = None
    readonly_secret_version: str | None = None
    reason: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    phase: str | None = None  # of a running rotation: regenerating or verifying
    transient: bool = False
    duration_ms: int = 0
    key_generated_at: dict[str, str] = field(default_factory=dict)
    requested_by: str | None = None  # who asked: the CLI's --json results show it too

    def to_dict(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items() if v not in (None, {}) and k != "transient"}


@dataclass(frozen=True)
class Operation:
    """What a run on a target does: a rotation, or an operator's adopt or rollback."""

    name: str
    succeeded_event: str


ROTATE = Operation("rotate", "RotationSucceeded")


@dataclass
class Context:
    """One run on one target: what it reads and holds, and what it has planned and published so far (so
    that a failure still reports what was published)."""

    target: Target
    request: RotationRequest
    result: RotationResult
    events: EventLog
    lease: Any
    account: AccountState | None = None
    plans: list[Plan] = field(default_factory=list)
    published: dict[str, str] = field(default_factory=dict)  # secret name -> version
    marker: Marker | None = None  # the account's marker as found when the lease was taken


def pairs_of(target: Target) -> list[Pair]:
    return _pairs_of(target.secret_name, target.readonly_secret_name)


class _HandOver(Exception):
    """The rest of the rotation waits for Azure: continue it from a queue message."""

    def __init__(self, continuation: Continuation) -> None:
        super().__init__(continuation.phase)
        self.continuation = continuation


class Rotator:
    """Runs rotations. The collaborators are the SDK-backed ones in production, doubles in unit tests."""

    def __init__(self, settings: Settings, accounts: Accounts, vault_for: Callable[[str], Vault],
                 verifier: Verifier, leases: Any = None, records: Any = None, lease_wait_seconds: float = 15.0,
                 regenerator: Regenerator | None = None,
                 hand_over: Callable[[RotationRequest, int], None] | None = None, wait_seconds: float = 60.0,
                 progress: Callable[[str], None] | None = None,
                 find_target: Callable[[str], Target] | None = None,
                 key_usage: KeyUsageReader | None = None) -> None:
        """`hand_over` puts a continuation on the queue (the worker); without it (the CLI) a rotation waits
        for Azure in-process however long it takes, reporting to `progress`. With it, the first delivery
        waits up to `wait_seconds` in-process, and each continuation checks once."""
        self.settings = settings
        self.accounts = accounts
        self.vault_for = vault_for
        self.verifier = verifier
        self.leases = leases
        self.records = records
        self.lease_wait_seconds = lease_wait_seconds
        self.regenerator = regenerator
        self.hand_over = hand_over
        self.wait_seconds = wait_seconds
        self.progress = progress
        self.find_target = find_target or settings.target  # configured targets, and discovered ones
        self.key_usage = key_usage

    # -- one rotation, from request to record -------------------------------------------------------

    def rotate(self, request: RotationRequest) -> RotationResult:
        """Run one rotation and return its outcome. Never raises: every failure is in the result, the
        record and the events."""
        return self.run(request, ROTATE, self._rotate)

    def run(self, request: RotationRequest, operation: Operation, body: Callable[[Context], None]) -> RotationResult:
        """What every operation on a target shares: find it, record it, hold its account's lease, run `body`,
        and record the outcome. A dry run neither records nor takes the lease."""
        started = time.monotonic()
        result = RotationResult(request.id, request.target, request.trigger, "failed",
                                requested_by=request.requested_by or None)
        try:
            target = self.find_target(request.target)
        except KeyError:
            result.error_code, result.error_message = "UnknownTarget", f"no target named {request.target!r}"
            return self._finish(result, request, operation, None, EventLog(), started)
        events = EventLog({
            "rotationId": request.id, "trigger": request.trigger, "requestedBy": request.requested_by or None,
            "target": target.name,
            "subscriptionId": target.subscription_id, "resourceGroup": target.resource_group,
            "account": target.account, "attempt": request.attempt, "secretName": target.secret_name,
            "origin": target.origin,
        })
        result.secret_name = target.secret_name
        if operation is ROTATE and self.settings.paused(target.name):
            result.outcome, result.reason = "skipped", f"paused: {target.name} is listed in PAUSED_TARGETS"
            return self._finish(result, request, operation, None, events, started)
        if not request.dry_run:
            # Informational: a failure here is retried with the final save, and never stops the rotation.
            self._try_save(request.id, status="running", target=target.name, trigger=request.trigger,
                           requestedBy=request.requested_by or None,
                           operation=operation.name, attempt=request.attempt, startedAt=now_text(),
                           secretName=target.secret_name)
        events.emit("RotationStarted", f"RotationStarted {target.name}", keyKind=request.key_kind)
        context = Context(target, request, result, events, NoLease())
        try:
            if request.dry_run:
                context.account = self.accounts.get(target)
                body(context)
            else:
                with self._lease(target) as lease:
                    context.lease = lease
                    self._refuse_if_waiting(context)
                    context.account = self.accounts.get(target)
                    try:
                        body(context)
                    except _HandOver as handing:
                        self._hand_over(context, handing.continuation)
                    else:
                        self._unmark(context)
        except LeaseBusy as busy:
            if request.retryable and request.attempt > 1:
                # A redelivery: the lease may still be held by this very request's earlier attempt, killed
                # mid-way (a timeout, a crash). Try again once the lease expires rather than skip its work.
                result.error_code, result.error_message, result.transient = busy.code, busy.message, True
            else:
                result.outcome, result.reason = "skipped", f"{busy.code}: {busy.message}"
        except RotationError as error:
            result.error_code, result.error_message, result.transient = error.code, error.message, error.transient
            _describe(result, context, published_only=True)
            if not error.transient:
                self._unmark(context)
        except Exception as exc:  # a bug, not a service answer: keep the type, never the details
            log.error("unexpected %s in rotation %s", type(exc).__name__, request.id)
            result.error_code, result.error_message = "UnexpectedError", f"{type(exc).__name__} (see the logs)"
        return self._finish(result, request, operation, context.account, events, started)

    def _refuse_if_waiting(self, context: Context) -> None:
        """Another rotation of the account waits for Azure between two messages: it holds the account."""
        marker = context.lease.marker()
        context.marker = marker
        if marker is not None and marker.active() and marker.rotationid != context.request.id:
            raise LeaseBusy(context.target.account, marker.describe())

    def _hand_over(self, context: Context, continuation: Continuation) -> None:
        """Mark the account, put the continuation on the queue, and report the rotation running."""
        request, result = context.request, context.result
        assert self.hand_over is not None
        timeout = {"regenerating": self.settings.regeneration_timeout_minutes * 60,
                   "verifying": self.settings.verify_timeout_seconds}.get(
            continuation.phase, self.settings.incident_grace_seconds + self.settings.regeneration_timeout_minutes * 60)
        until = (parse_iso(continuation.since) or datetime.now(timezone.utc)) + timedelta(seconds=timeout)
        context.lease.mark(Marker(request.id, continuation.key_kind, continuation.since, iso(until)))
        delay = continuation.delay_seconds
        self.hand_over(replace(request, continuation=continuation, attempt=1), delay)
        _describe(result, context, published_only=True)
        result.outcome, result.phase = "running", continuation.phase
        if continuation.phase == "grace":
            result.reason = (f"incident: every key replaced; applications have until {continuation.until} to re-read "
                             f"the secrets (INCIDENT_GRACE_SECONDS), then the keys that were live are regenerated")
        else:
            result.reason = (f"{continuation.phase} the {continuation.key_kind} key into {continuation.secret_name}: "
                             f"Azure is still working; next check in {delay} s (check {continuation.checks + 1})")

    def _unmark(self, context: Context) -> None:
        """The rotation ended: lift its marker, if it set one."""
        if context.marker is not None and context.marker.rotationid == context.request.id:
            context.lease.mark(None)

    def _lease(self, target: Target) -> AbstractContextManager[Any]:
        if self.leases is None:
            return nullcontext(NoLease())
        return self.leases.hold(target, wait_seconds=self.lease_wait_seconds)

    def _rotate(self, context: Context) -> None:
        target, request, result = context.target, context.request, context.result
        assert context.account is not None
        context.plans = [self._plan_or_continue(target, pair, context.account, request) for pair in pairs_of(target)]
        self._warn_expired(context)
        if request.dry_run:
            self.guard(context, [p for p in context.plans if p.action == "rotate"])  # fails where a run would
            steps = [f"{p.action} {p.kind} into {p.pair.secret_name}" for p in context.plans]
            result.outcome, result.reason = "skipped", "dry run: would " + "; ".join(steps)
            _describe(result, context, planned=True)
            return
        adopting = [p for p in context.plans if p.action == "adopt"]
        # A declared live key is adopted on the first run, which then rotates nothing else; an interrupted
        # rotation is still finished.
        work = adopting + [p for p in context.plans
                           if p.action in ("resume", "continue") or (p.action == "rotate" and not adopting)]
        if not work:
            _describe(result, context)
            if any(p.action == "done" for p in context.plans):  # an earlier delivery published it all
                if request.all_keys:  # and the incident's next phases are left
                    self.retire(context)
                result.outcome = "succeeded"
            else:
                result.outcome, result.reason = "skipped", _cooldown_reason(context.plans[0], self.settings)
            return
        # Every pair's key is judged before any is regenerated: a refusal changes nothing at all.
        self.guard(context, [p for p in work if p.action == "rotate"])
        for plan in work:
            events = context.events.bind(secretName=plan.pair.secret_name)
            if plan.action == "adopt":
                self.adopt(context, plan, events)
            else:
                self._finish_pair(context, plan, events)
        _describe(result, context)
        if request.all_keys and not adopting:
            self.retire(context)
        result.outcome = "succeeded"
        if adopting:
            result.reason = ("adopted the declared live key (liveKeyKind): " + ", ".join(
                f"{p.kind} into {p.pair.secret_name}" for p in adopting) + "; rotations start with the next run")
            context.events.emit("AccountAdopted", f"AccountAdopted {target.name} {result.reason}",
                                keyKind=result.key_kind, secretVersion=result.secret_version, reason=result.reason)

    def _warn_expired(self, context: Context) -> None:
        for plan in context.plans:
            if plan.live is not None and plan.live.expired:
                context.events.emit(
                    "LiveSecretExpired", f"LiveSecretExpired {context.target.name} {plan.pair.secret_name}: its "
                    "live version is past its expiry date (it still holds a valid key); rotating publishes a new "
                    "version", logging.WARNING, secretName=plan.pair.secret_name, secretVersion=plan.live.version)

    def _finish_pair(self, context: Context, plan: Plan, events: EventLog) -> None:
        """Steps 2 to 5 for one pair. Waiting for Azure (a regeneration, a propagation) past this run's wait
        hands the rest to a continuation (_HandOver)."""
        target, request, lease = context.target, context.request, context.lease
        assert context.account is not None
        continuing = request.continuation if plan.action == "continue" else None
        if plan.action == "rotate" or (continuing is not None and continuing.phase == "regenerating"):
            context.account = self.regenerate(context, plan, events, continuing)
        account = context.account
        connection_string = self.read(target, plan, account)
        if not plan.publish_first:
            self.verify(context, plan, connection_string, events, continuing)
        lease.confirm()
        self._phase(request, "publishing")
        version = self.publish(target, plan, connection_string, account, request)
        context.published[plan.pair.secret_name] = version
        events.emit("SecretPublished", f"SecretPublished {target.name} {plan.pair.secret_name} {plan.kind}",
                    keyKind=plan.kind, previousKeyKind=plan.live_kind, secretVersion=version)
        self.disable_dead_versions(target, plan, version, account, events)
        if plan.publish_first:
            try:
                self.verify(context, plan, connection_string, events, None, hand_over=False)
            except RotationError as error:
                raise RotationError(
                    "PublishedKeyUnverified",
                    f"the new {plan.kind} key of {target.account} was published as version {version} (under the "
                    f"{target.strategy} strategy the old key died with the regeneration) but did not verify: "
                    f"{error.message}") from None

    def disable_dead_versions(self, target: Target, plan: Plan, live_version: str, account: AccountState,
                              events: EventLog) -> None:
        """After step 5: versions whose key has been regenerated since can only hand out a dead key. Best
        effort: the rotation has succeeded, and what fails here is caught after the next rotation."""
        vault = self.vault_for(target.key_vault_uri)
        try:
            dead = dead_versions(vault.versions(plan.pair.secret_name), account.key_generated_at, live_version)
            for version in dead:
                vault.disable(plan.pair.secret_name, version)
        except RotationError as error:
            events.emit("OldVersionsNotDisabled", f"OldVersionsNotDisabled {target.name} {plan.pair.secret_name}: "
                        f"{error.message}; tried again after the next rotation", logging.WARNING, keyKind=plan.kind,
                        errorCode=error.code, errorMessage=error.message)
            return
        if dead:
            events.emit("OldVersionsDisabled", f"OldVersionsDisabled {target.name} {plan.pair.secret_name}: "
                        f"{len(dead)} version(s) holding a regenerated key", keyKind=plan.kind,
                        disabledVersions=",".join(dead))

    def _plan_or_continue(self, target: Target, pair: Pair, account: AccountState, request: RotationRequest) -> Plan:
        """A continuation never plans its pair again: it finishes the key kind its first delivery chose."""
        continuation = request.continuation
        if continuation is None or continuation.secret_name != pair.secret_name or continuation.phase in INCIDENT:
            return self.plan(target, pair, account, request)
        live = self.vault_for(target.key_vault_uri).live(pair.secret_name)
        if live is not None and live.rotation_id == request.id:  # an earlier delivery published it
            return Plan(pair, live, live.key_kind, continuation.key_kind, "done")
        return Plan(pair, live, self._live_kind(target, pair, live), continuation.key_kind, "continue",
                    parse_iso(continuation.key_generated_before))

    def _wait_budget(self, request: RotationRequest) -> float | None:
        """How long this run waits for Azure in-process: all it takes (CLI), a while on a first delivery, one
        check on a continuation."""
        if self.hand_over is None:
            return None
        # A continuation checks once; the grace's end starts the retiring regenerations afresh.
        waiting = request.continuation is not None and request.continuation.phase != "grace"
        return 0.0 if waiting else self.wait_seconds

    def _phase(self, request: RotationRequest, phase: str) -> None:
        if not request.dry_run:
            self._try_save(request.id, phase=phase)

    # -- the six steps --------------------------------------------------------------------------------

    def plan(self, target: Target, pair: Pair, account: AccountState, request: RotationRequest) -> Plan:
        """Step 1. Reads only (the live secret, and the rotation record), then `plan.decide`."""
        live = self.vault_for(target.key_vault_uri).live(pair.secret_name)
        record = self.records.get(request.id) if self.records is not None and not request.dry_run else None
        cooldown = timedelta(minutes=self.settings.min_rotation_interval_minutes)
        return decide(pair, target.strategy, live, self._live_kind(target, pair, live), account.key_generated_at,
                      record, request, datetime.now(timezone.utc), cooldown, target.live_key_kind)

    def guard(self, context: Context, plans: list[Plan]) -> None:
        """Between steps 1 and 2: refuse to regenerate a key something used in the window (in_use_guard.py).
        Reads only, so a retry simply asks again."""
        target, request = context.target, context.request
        workspace = self.settings.workspace_for(target)
        if not plans or workspace is None or self.key_usage is None:
            return
        mode = self.settings.in_use_guard
        try:
            usage = self.key_usage.read(workspace, target)
        except RotationError as error:
            if mode == "enforce" and not request.force:
                raise  # KeyUsageQueryFailed: transient, never a silent pass
            context.events.emit("KeyUsageUnknown", f"KeyUsageUnknown {target.name}: {error.message}; rotating anyway",
                                logging.WARNING, guard=mode, forced=request.force, errorCode=error.code,
                                errorMessage=error.message)
            return
        refusals = []
        for plan in plans:
            verdict = judge(usage, mode, target.account, plan.kind, plan.publish_first, request.force,
                            "an incident rotation (all keys)" if request.all_keys else "the request says force")
            if verdict.code is None:
                continue
            context.events.emit(
                verdict.event, f"{verdict.event} {target.name}: {verdict.message}",
                logging.WARNING if verdict.allowed else logging.ERROR, keyKind=plan.kind,
                secretName=plan.pair.secret_name, guard=mode, forced=request.force, windowHours=usage.window_hours,
                clients=json.dumps([c.to_json() for c in verdict.clients]))
            if not verdict.allowed:
                refusals.append(verdict)
        if refusals:
            raise RotationError(refusals[0].code or "KeyStillInUse", "; ".join(v.message for v in refusals))

    # -- an incident rotation's last phases (incident.py) -------------------------------------------------

    def retire(self, context: Context) -> None:
        """After every pair was rotated: give applications INCIDENT_GRACE_SECONDS to re-read, then regenerate
        the keys that were live (and both read-only ones when no read-only secret holds them)."""
        target, request = context.target, context.request
        assert context.account is not None
        record = self.records.get(request.id) if self.records is not None else None
        kinds = kinds_to_retire(context.plans, bool(target.readonly_secret_name))
        before = generated_before(record, kinds, context.account.key_generated_at)
        until = grace_until(record, datetime.now(timezone.utc), self.settings.incident_grace_seconds)
        self._save(request.id, incidentPhase="grace", graceUntil=iso(until), retireGeneratedBefore=to_record(before))
        self._wait_for_grace(context, until, kinds)
        self.guard_report(context, kinds)
        self._save(request.id, incidentPhase="retiring")
        account = self.accounts.get(target)
        for kind in kinds:
            if not retired(kind, before, account.key_generated_at):
                account = self._retire_key(context, kind, before[kind])
        context.account = account
        for plan in context.plans:
            live = context.published.get(plan.pair.secret_name) or (plan.live.version if plan.live else "")
            events = context.events.bind(secretName=plan.pair.secret_name)
            self.disable_dead_versions(target, plan, live, account, events)
        self._save(request.id, incidentPhase="done", retiredKeyKinds=",".join(kinds))
        context.result.reason = ("incident: every key replaced; the keys that were live regenerated "
                                 f"({', '.join(kinds)})")

    def _wait_for_grace(self, context: Context, until: datetime, kinds: list[str]) -> None:
        """In-process when the wait fits this run (the CLI always); else a continuation that wakes at `until`."""
        target, request = context.target, context.request
        left = (until - datetime.now(timezone.utc)).total_seconds()
        if left <= 0:
            return
        context.events.emit("KeysRetiring", f"KeysRetiring {target.name}: every key replaced; applications have "
                            f"{left:.0f} s to re-read the secrets, then {', '.join(kinds)} are regenerated",
                            phase="grace", reason=f"until {iso(until)}")
        budget = self._wait_budget(request)
        if budget is not None and left > budget:
            raise _HandOver(Continuation(target.secret_name, ",".join(kinds), "grace", now_text(), until=iso(until)))
        report = self._reporter(target, "waiting for applications to re-read before retiring the old keys")
        while (left := (until - datetime.now(timezone.utc)).total_seconds()) > 0:
            if report is not None:
                report(self.settings.incident_grace_seconds - left)
            context.lease.confirm()
            time.sleep(min(left, 5.0))

    def guard_report(self, context: Context, kinds: list[str]) -> None:
        """The incident overrides the in-use guard: it names who still used a key about to be retired."""
        workspace = self.settings.workspace_for(context.target)
        if workspace is None or self.key_usage is None:
            return
        try:
            usage = self.key_usage.read(workspace, context.target)
        except RotationError:
            return  # a report only: the incident goes on
        for kind in kinds:
            verdict = judge(usage, self.settings.in_use_guard, context.target.account, kind, False, True,
                            "an incident rotation (all keys): the old key is retired now")
            if verdict.clients:
                context.events.emit(verdict.event, f"{verdict.event} {context.target.name}: {verdict.message}",
                                    logging.WARNING, keyKind=kind, guard=self.settings.in_use_guard, forced=True,
                                    windowHours=usage.window_hours,
                                    clients=json.dumps([c.to_json() for c in verdict.clients]))

    def _retire_key(self, context: Context, kind: str, before: datetime | None) -> AccountState:
        """Regenerate one key that was live; a continuation follows a regeneration that outlasts this run."""
        target, request, lease = context.target, context.request, context.lease
        continuing = request.continuation
        asked_at = now_text()

        def before_send() -> None:
            lease.confirm()
            self._save(request.id, phase="regenerating", regeneratingKeyKind=kind, regenerationRequestedAt=now_text(),
                       keyGeneratedBefore=iso(before) if before else None)

        wait = self._wait_budget(request)
        try:
            if continuing is not None and continuing.phase == "retiring" and continuing.key_kind == kind:
                account = self.regenerator.follow(target, kind, before, continuing.operation_url, wait)
            else:
                account = self.regenerator.regenerate(target, kind, before, before_send, wait,
                                                      self._reporter(target, f"retiring the {kind} key"))
        except StillRegenerating as still:
            raise _HandOver(Continuation(target.secret_name, kind, "retiring", asked_at,
                                         iso(before) if before else None, still.operation_url)) from None
        context.events.emit("KeyRetired", f"KeyRetired {target.name} {kind}: the key that was live is regenerated",
                            keyKind=kind, phase="retiring")
        return account

    def regenerate(self, context: Context, plan: Plan, events: EventLog,
                   continuing: Continuation | None) -> AccountState:
        """Step 2. Not repeatable by nature, which is why `plan` sends an interrupted attempt to `resume`
        instead: keysMetadata remembers the regeneration, and the record notes that this request asked
        for it (written before each request, after the lease is confirmed). A continuation follows the
        operation its first delivery started, until REGENERATION_TIMEOUT_MINUTES."""
        target, request, lease = context.target, context.request, context.lease
        started = time.monotonic()
        asked_at = continuing.since if continuing is not None else now_text()
        url = continuing.operation_url if continuing is not None else None

        def before_send() -> None:
            nonlocal asked_at
            lease.confirm()
            asked_at = now_text()
            self._save(request.id, phase="regenerating", regeneratingKeyKind=plan.kind,
                       regenerationRequestedAt=asked_at,
                       keyGeneratedBefore=iso(plan.generated_before) if plan.generated_before else None)

        wait = self._wait_budget(request)
        on_wait = self._reporter(target, f"regenerating the {plan.kind} key")
        try:
            if continuing is None:
                account = self.regenerator.regenerate(target, plan.kind, plan.generated_before, before_send, wait,
                                                      on_wait)
            else:
                self._refuse_timed_out(target, plan, continuing)
                account = self.regenerator.follow(target, plan.kind, plan.generated_before, url, wait, on_wait)
        except StillRegenerating as still:
            before = iso(plan.generated_before) if plan.generated_before else None
            raise _HandOver(continuing.next(operation_url=still.operation_url) if continuing is not None else
                            Continuation(plan.pair.secret_name, plan.kind, "regenerating", asked_at, before,
                                         still.operation_url)) from None
        events.emit("KeyRegenerated", f"KeyRegenerated {target.name} {plan.kind}", keyKind=plan.kind,
                    previousKeyKind=plan.live_kind, durationMs=_ms(started), phase="regenerating")
        return account

    def _refuse_timed_out(self, target: Target, plan: Plan, continuing: Continuation) -> None:
        since = parse_iso(continuing.since) or datetime.now(timezone.utc)
        limit = timedelta(minutes=self.settings.regeneration_timeout_minutes)
        if datetime.now(timezone.utc) - since > limit:
            raise RotationError("RegenerationTimedOut", f"the regeneration of the {plan.kind} key of {target.account} "
                                f"asked at {continuing.since} has not ended after "
                                f"{self.settings.regeneration_timeout_minutes} min (REGENERATION_TIMEOUT_MINUTES)")

    def _reporter(self, target: Target, doing: str) -> Callable[[float], None] | None:
        """Progress lines for a long wait in-process (the CLI), at most one every 10 s."""
        if self.progress is None:
            return None
        last = [-10.0]

        def report(elapsed: float) -> None:
            if elapsed - last[0] >= 10.0:
                last[0] = elapsed
                assert self.progress is not None
                self.progress(f"{target.name}: {doing}, {elapsed:.0f} s so far")

        return report

    def read(self, target: Target, plan: Plan, account: AccountState) -> str:
        """Step 3. A read: repeating it returns the same key until the next regeneration. When the key
        replaces the live one, a read still showing the live key is stale and is read again."""
        old_key = key_of(plan.live.value) if plan.publish_first and plan.live is not None else None
        return self.accounts.connection_string(target, plan.kind, account.document_endpoint, not_key=old_key)

    def verify(self, context: Context, plan: Plan, connection_string: str, events: EventLog,
               continuing: Continuation | None, hand_over: bool = True) -> None:
        """Step 4. A read against the data plane: repeatable. It waits for the new key to propagate up to
        VERIFY_TIMEOUT_SECONDS, counted from the first attempt, across continuations."""
        if not self.settings.verify_new_key:
            return
        assert context.account is not None
        target, request = context.target, context.request
        self._phase(request, "verifying")
        since = continuing.since if continuing is not None and continuing.phase == "verifying" else now_text()
        spent = (datetime.now(timezone.utc) - (parse_iso(since) or datetime.now(timezone.utc))).total_seconds()
        started = time.monotonic()
        try:
            attempts = self.verifier.verify(context.account.document_endpoint, key_of(connection_string) or "",
                                            timeout_seconds=max(0.0, self.settings.verify_timeout_seconds - spent),
                                            wait_seconds=self._wait_budget(request) if hand_over else None)
        except StillVerifying:
            raise _HandOver(continuing.next() if continuing is not None and continuing.phase == "verifying" else
                            Continuation(plan.pair.secret_name, plan.kind, "verifying", since)) from None
        events.emit("KeyVerified", f"KeyVerified {target.name} {plan.kind} after {attempts} attempt(s)",
                    keyKind=plan.kind, durationMs=_ms(started), phase="verifying")

    def publish(self, target: Target, plan: Plan, connection_string: str, account: AccountState,
                request: RotationRequest, **extra_tags: str) -> str:
        """Step 5. Adds a secret version. Repeated after a crash, it adds one more version holding the
        same key (harmless); `plan` stops even that once a version carries this request's id.

        keyGeneratedAt is this key's generationTime; newestKeyGeneratedAt the newest of its pair's two, both
        the account's clock: the resume rule compares keysMetadata with the second, the detection of a key
        regenerated outside the product with the first (an adopted key may be older than the other one)."""
        tags = {
            "cosmosAccount": target.account_id,
            "keyKind": plan.kind,
            "rotatedAt": now_text(),
            "rotationId": request.id,
            "trigger": request.trigger,
            **extra_tags,
        }
        generated = account.key_generated_at.get(plan.kind)
        if generated is not None:
            tags["keyGeneratedAt"] = iso(generated)
        pair_times = [t for kind in plan.pair.kinds if (t := account.key_generated_at.get(kind)) is not None]
        if pair_times:
            tags["newestKeyGeneratedAt"] = iso(max(pair_times))
        vault = self.vault_for(target.key_vault_uri)
        return vault.publish(plan.pair.secret_name, connection_string, tags, self.settings.secret_validity_days)

    def adopt(self, context: Context, plan: Plan, events: EventLog) -> None:
        """Publish the key applications use today, as it is: no regeneration, so nothing can break. Repeated,
        it publishes the same key again (harmless)."""
        assert context.account is not None
        target = context.target
        connection_string = self.read(target, plan, context.account)
        context.lease.confirm()
        version = self.publish(target, plan, connection_string, context.account, context.request, adopted="true")
        context.published[plan.pair.secret_name] = version
        events.emit("SecretPublished", f"SecretPublished {target.name} {plan.pair.secret_name} {plan.kind} (adopted)",
                    keyKind=plan.kind, previousKeyKind=plan.live_kind, secretVersion=version,
                    reason="adopted: the key applications use, published as it is")

    def _finish(self, result: RotationResult, request: RotationRequest, operation: Operation,
                account: AccountState | None, events: EventLog, started: float) -> RotationResult:
        """Step 6. Record the outcome: an upsert of the record and one event, both repeatable. A record
        that cannot be saved (tried twice) never hides the outcome: the event and the result carry it."""
        result.duration_ms = _ms(started)
        if account is not None:
            result.key_generated_at = account.generated_by_name()
        retrying = result.outcome == "failed" and result.transient and request.retryable
        ongoing = retrying or result.outcome == "running"
        if not request.dry_run:
            fields = dict(
                target=request.target, trigger=request.trigger, operation=operation.name, attempt=request.attempt,
                status="queued" if retrying else result.outcome, phase=result.phase, keyKind=result.key_kind,
                previousKeyKind=result.previous_key_kind, secretName=result.secret_name,
                secretVersion=result.secret_version, readonlyKeyKind=result.readonly_key_kind,
                readonlySecretVersion=result.readonly_secret_version, reason=result.reason,
                errorCode=result.error_code, errorMessage=result.error_message,
                finishedAt=None if ongoing else now_text(), durationMs=result.duration_ms,
            )
            if not self._try_save(request.id, **fields):
                self._try_save(request.id, **fields)
        _emit_outcome(events, result, retrying, self.settings.max_key_age_days, operation)
        return result

    # -- helpers ------------------------------------------------------------------------------------

    def _live_kind(self, target: Target, pair: Pair, live: LiveSecret | None) -> str | None:
        """The key kind the live secret holds: from its tag, else by comparing it with the keys."""
        if live is None:
            return None
        if live.key_kind in pair.kinds:
            return live.key_kind
        # A secret we did not publish (a connection string or a bare key put there by hand): find which
        # key it holds, in memory.
        return kind_holding(key_of(live.value), {k: v for k, v in self.accounts.keys(target).items()
                                                 if k in pair.kinds})

    def _save(self, rotation_id: str, **fields: Any) -> None:
        if self.records is not None:
            self.records.save(rotation_id, **fields)

    def _try_save(self, rotation_id: str, **fields: Any) -> bool:
        """Save a record that is not part of the protocol; a storage failure is logged, not raised."""
        try:
            self._save(rotation_id, **fields)
            return True
        except RotationError as error:
            log.warning("could not save the record of rotation %s: %s: %s", rotation_id, error.code,
                        error.message)
            return False


def _describe(result: RotationResult, context: Context, published_only: bool = False,
              planned: bool = False) -> None:
    """Fill the result's key kinds and secret versions from the plans and what was published (or, for a
    dry run, what would be)."""
    for plan in context.plans:
        published = context.published.get(plan.pair.secret_name)
        if published_only and not published:
            continue
        kind = plan.kind if published or planned or plan.action == "done" else plan.live_kind
        version = published or (plan.live.version if plan.live else None)
        if plan.pair.read_only:
            result.readonly_key_kind, result.readonly_secret_version = kind, version
        else:
            result.key_kind, result.secret_version = kind, version
            result.previous_key_kind = plan.live_kind if published or planned else None


def _cooldown_reason(plan: Plan, settings: Settings) -> str:
    minutes = int((plan.cooldown_left or timedelta(0)).total_seconds() // 60) + 1
    return (f"cooldown: secret {plan.pair.secret_name} was published less than "
            f"{settings.min_rotation_interval_minutes} min ago (MIN_ROTATION_INTERVAL_MINUTES); "
            f"next rotation possible in {minutes} min, or use force")


def _emit_outcome(events: EventLog, result: RotationResult, retrying: bool, max_key_age_days: int,
                  operation: Operation) -> None:
    common: dict[str, Any] = {
        "keyKind": result.key_kind, "previousKeyKind": result.previous_key_kind,
        "secretVersion": result.secret_version, "durationMs": result.duration_ms,
        "maxKeyAgeDays": max_key_age_days, **{f"{name}GeneratedAt": value
                                              for name, value in result.key_generated_at.items()},
    }
    if result.outcome == "succeeded":
        events.emit(operation.succeeded_event, f"{operation.succeeded_event} {result.target} {result.key_kind}",
                    outcome="succeeded", reason=result.reason, **common)
    elif result.outcome == "skipped":
        events.emit("RotationSkipped", f"RotationSkipped {result.target}: {result.reason}", outcome="skipped",
                    reason=result.reason, **common)
    elif result.outcome == "running":
        events.emit("RotationWaiting", f"RotationWaiting {result.target}: {result.reason}", outcome="running",
                    phase=result.phase, reason=result.reason, **common)
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
