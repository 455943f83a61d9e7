"""The operator's own operations on a target, beside rotation: adopt (publish the key applications use
today, regenerating nothing) and rollback (publish the previous version again while its key is valid).
Both run like a rotation (`Rotator.run`): under the account's lease, recorded, with events."""

from __future__ import annotations

from datetime import datetime, timezone

from .accounts import key_of, kind_holding
from .errors import RotationError
from .plan import Plan, RotationRequest, pair_kind
from .rotation import Context, Operation, RotationResult, Rotator, pairs_of
from .vault import LiveSecret, Vault

ADOPT = Operation("adopt", "AccountAdopted")
ROLLBACK = Operation("rollback", "RotationRolledBack")


def adopt(rotator: Rotator, request: RotationRequest, key_kind: str, force: bool = False) -> RotationResult:
    """Publish the connection string of `key_kind` (and of its read-only twin into the read-only secret)
    for every secret of the target that has no live version yet, or every secret with `force`."""
    return rotator.run(request, ADOPT, lambda context: _adopt(rotator, context, key_kind, force))


def _adopt(rotator: Rotator, context: Context, key_kind: str, force: bool) -> None:
    target, result = context.target, context.result
    vault = rotator.vault_for(target.key_vault_uri)
    assert context.account is not None
    skipped = []
    for pair in pairs_of(target):
        # Without force, a live secret (or a disabled or deleted one: vault.live says which) is left alone.
        live = None if force else vault.live(pair.secret_name)
        if live is not None:
            skipped.append(f"{pair.secret_name} already has a live version ({live.key_kind or 'untagged'}); "
                           "use --force to publish over it")
            continue
        kind = pair_kind(key_kind, pair)
        plan = Plan(pair, None, None, kind, "adopt", context.account.key_generated_at.get(kind))
        context.plans.append(plan)
        rotator.adopt(context, plan, context.events.bind(secretName=pair.secret_name))
    _published(result, context)
    result.outcome = "succeeded" if context.published else "skipped"
    result.reason = "; ".join(skipped) or None


def rollback(rotator: Rotator, request: RotationRequest) -> RotationResult:
    """Publish again, for each secret of the target, the version before the live one, when the key it holds
    is still one of the account's keys: under `alternate` the key that was live before the last rotation is
    untouched until the next one. Every secret is checked before any is published."""
    return rotator.run(request, ROLLBACK, lambda context: _rollback(rotator, context))


def _rollback(rotator: Rotator, context: Context) -> None:
    target = context.target
    vault = rotator.vault_for(target.key_vault_uri)
    assert context.account is not None
    keys = rotator.accounts.keys(target)
    chosen: list[tuple[Plan, LiveSecret]] = []
    for pair in pairs_of(target):
        live, previous = _live_and_previous(vault, pair.secret_name)
        previous = vault.version(pair.secret_name, previous.version)
        kind = kind_holding(key_of(previous.value), {k: v for k, v in keys.items() if k in pair.kinds})
        if kind is None:
            raise RotationError(
                "PreviousKeyInvalid",
                f"version {previous.version} of secret {pair.secret_name} ({previous.key_kind or 'untagged'}) holds a "
                "key the account no longer has: it was regenerated since, so rolling back would publish a dead key")
        chosen.append((Plan(pair, live, live.key_kind, kind, "rollback", context.account.key_generated_at.get(kind)),
                       previous))
    for plan, previous in chosen:
        events = context.events.bind(secretName=plan.pair.secret_name)
        context.lease.confirm()
        version = rotator.publish(target, plan, previous.value, context.account, context.request,
                                  rolledBackFrom=plan.live.version if plan.live else "")
        context.plans.append(plan)
        context.published[plan.pair.secret_name] = version
        events.emit("SecretPublished", f"SecretPublished {target.name} {plan.pair.secret_name} {plan.kind}",
                    keyKind=plan.kind, previousKeyKind=plan.live_kind, secretVersion=version,
                    reason=f"rollback to the key of version {previous.version}")
    _published(context.result, context)
    context.result.outcome = "succeeded"


def _live_and_previous(vault: Vault, name: str) -> tuple[LiveSecret, LiveSecret]:
    """The live (latest) version and the newest enabled one before it, by creation time then by our own
    rotatedAt tag (Key Vault keeps creation times in whole seconds)."""
    versions = vault.versions(name)
    oldest = datetime.min.replace(tzinfo=timezone.utc)
    versions.sort(key=lambda v: (v.created_on or oldest, v.tags.get("rotatedAt", "")))
    if not versions:
        raise RotationError("NoLiveSecret", f"secret {name} does not exist: there is nothing to roll back")
    live = versions[-1]
    earlier = [v for v in versions[:-1] if v.enabled]
    if not earlier:
        raise RotationError("NoPreviousVersion", f"secret {name} has no enabled version before {live.version}")
    return live, earlier[-1]


def _published(result: RotationResult, context: Context) -> None:
    for plan in context.plans:
        version = context.published.get(plan.pair.secret_name)
        if plan.pair.read_only:
            result.readonly_key_kind, result.readonly_secret_version = plan.kind, version
        else:
            result.key_kind, result.secret_version, result.previous_key_kind = plan.kind, version, plan.live_kind
