"""Step 1 of a rotation, as a pure function: given what was read (the live secret, the account's
keysMetadata, the rotation record, the request), decide what happens to one secret. No I/O here, so every
decision can be read, and tested with a table of cases, on its own.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from .accounts import READ_ONLY_KINDS, READ_WRITE_KINDS
from .continuation import Continuation
from .errors import RotationError
from .times import parse_iso
from .vault import LiveSecret

TRIGGERS = ("timer", "http", "cli", "event")  # event: Key Vault's expiry events (expiry_events.py)
# What a request replaces: one key per pair as usual, or (an incident) every key of the account.
SCOPES = ("rotation", "all-keys")
# A secret published without our keyGeneratedAt tag is compared by its creation time, which Key Vault
# keeps in whole seconds: allow for that rounding.
_CREATED_ON_ROUNDING = timedelta(seconds=1)


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
    continuation: Continuation | None = None  # where a rotation waiting for Azure stands
    scope: str = "rotation"  # or "all-keys": an incident rotation (incident.py)
    # Who asked (the audit trail): an Entra ID caller's object id and name, "function key", "timer", "cli:<user>",
    # "event <id>". Kept by continuations and redeliveries; never a token.
    requested_by: str = ""

    @property
    def all_keys(self) -> bool:
        return self.scope == "all-keys"

    @staticmethod
    def new(target: str, trigger: str, key_kind: str | None = None, force: bool = False,
            dry_run: bool = False, scope: str = "rotation", requested_by: str = "") -> RotationRequest:
        # An incident rotation is never held back by the cooldown.
        return RotationRequest(str(uuid.uuid4()), target, trigger, key_kind, force or scope == "all-keys", dry_run,
                               scope=scope, requested_by=requested_by or trigger)


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
    # "rotate" (regenerate, then finish), "resume" (regenerated earlier, not published: finish it),
    # "done" (this request already published this pair), "cooldown" (skip), "adopt" (no secret yet: publish
    # the key the operator declared applications use, regenerating nothing), "continue" (a continuation:
    # this request's own regeneration or verification, waiting for Azure)
    action: str
    # kind's generationTime as read before regenerating: the regeneration is seen when it moves past this
    generated_before: datetime | None = None
    cooldown_left: timedelta | None = None

    @property
    def publish_first(self) -> bool:
        """Whether the new key replaces the one the secret holds (a fixed strategy): that key is dead the
        moment the regeneration completes, so the new one is published before it is verified."""
        return self.live_kind is not None and self.kind == self.live_kind


def decide(pair: Pair, strategy: str, live: LiveSecret | None, live_kind: str | None,
           generated: dict[str, datetime | None], record: dict[str, Any] | None, request: RotationRequest,
           now: datetime, cooldown: timedelta, declared: str | None = None) -> Plan:
    """What to do with one secret. Run again after any interruption, it sees what the last run left and
    plans the rest: a version tagged with this request's id means the pair is done; a key regenerated
    after the live secret was published (or after this request's record says it asked) means an
    interrupted attempt to finish, never to repeat.

    It never guesses which key applications use: with no secret it regenerates nothing (NoLiveSecret),
    unless the operator declared that key (`declared`, liveKeyKind), which is then adopted; with a secret
    whose key the account no longer has, it stops (KeyChangedOutside)."""
    if live is not None and live.rotation_id == request.id:
        return Plan(pair, live, live_kind, live_kind or pair.kinds[0], "done", None)
    if live is None:
        if declared is None:
            raise RotationError("NoLiveSecret", f"secret {pair.secret_name} does not exist, so which key applications "
                                "use is unknown and nothing is regenerated: adopt the account first with "
                                f"`python -m cosmos_key_rotation adopt --target {request.target} --key-kind "
                                "primary|secondary` (the key applications use today), or declare it as liveKeyKind")
        kind = pair_kind(declared, pair)
        return Plan(pair, live, None, kind, "adopt", generated.get(kind))
    _refuse_changed_outside(pair, strategy, live, live_kind, generated)
    kind = choose_kind(pair, strategy, live_kind, request.key_kind)
    before = generated.get(kind)
    if regenerated_since_published(kind, generated, live) or regenerated_by_request(record, kind, generated):
        return Plan(pair, live, live_kind, kind, "resume", before)
    left = cooldown_left(live, now, cooldown)
    if left is not None and not request.force:
        return Plan(pair, live, live_kind, kind, "cooldown", before, left)
    return Plan(pair, live, live_kind, kind, "rotate", before)


def _refuse_changed_outside(pair: Pair, strategy: str, live: LiveSecret, live_kind: str | None,
                            generated: dict[str, datetime | None]) -> None:
    """The live key regenerated outside the product (the portal, a script): the published key is dead.
    Under a fixed strategy the live key is the one this product regenerates, so a newer time there is an
    interrupted attempt of ours, finished by the resume rule instead."""
    fix = "publish the account's key as it is now with `adopt --force --key-kind {kind}` (it regenerates nothing)"
    if live_kind is None:
        raise RotationError("KeyChangedOutside", f"secret {pair.secret_name} holds none of the account's current "
                            f"{' or '.join(pair.kinds)} keys: a key was regenerated outside the product; "
                            + fix.format(kind="<the kind applications should use>"))
    tagged = parse_iso(live.tags.get("keyGeneratedAt"))
    moment = generated.get(live_kind)
    if strategy == "alternate" and tagged is not None and moment is not None and moment > tagged:
        raise RotationError("KeyChangedOutside", f"the {live_kind} key that secret {pair.secret_name} publishes was "
                            f"regenerated at {moment.isoformat()}, after it was published: applications reading the "
                            "secret hold a dead key; " + fix.format(kind=live_kind.removesuffix("Readonly")))


def choose_kind(pair: Pair, strategy: str, live_kind: str | None, requested: str | None) -> str:
    """The key kind to regenerate. A requested kind picks the read-write key; the read-only pair follows
    its own secret. Under `alternate` the live key is never chosen."""
    requested = requested if requested and not pair.read_only else None
    if strategy != "alternate":
        return requested or pair_kind(strategy, pair)
    if requested is not None and requested == live_kind:
        raise RotationError(
            "KeyKindIsLive",
            f"{requested} is the key that secret {pair.secret_name} publishes now; under the alternate "
            "strategy the live key is never regenerated (applications still use it)",
        )
    if requested is not None:
        return requested
    return pair.kinds[0] if live_kind == pair.kinds[1] else pair.kinds[1]


def pair_kind(kind: str, pair: Pair) -> str:
    """Map `primary`/`secondary` onto the pair: the read-only pair uses `primaryReadonly`/..."""
    base = kind.removesuffix("Readonly")
    return f"{base}Readonly" if pair.read_only else base


def regenerated_since_published(kind: str, generated: dict[str, datetime | None], live: LiveSecret | None) -> bool:
    """Whether `kind` was regenerated after the live secret was published. The secret's
    newestKeyGeneratedAt tag is the newest generationTime of its pair when it was published, the account's
    clock like keysMetadata (an adopted or rolled-back key may be older than the other one); older versions
    carry keyGeneratedAt only; a secret put there by hand has Key Vault's creation time, in whole seconds."""
    moment = generated.get(kind)
    if live is None or moment is None:
        return False
    tagged = parse_iso(live.tags.get("newestKeyGeneratedAt") or live.tags.get("keyGeneratedAt"))
    if tagged is not None:
        return moment > tagged
    return live.created_on is not None and moment > live.created_on + _CREATED_ON_ROUNDING


def regenerated_by_request(record: dict[str, Any] | None, kind: str, generated: dict[str, datetime | None]) -> bool:
    """Whether an earlier attempt of this same request regenerated `kind` and did not publish it. Its record
    notes, before asking, the kind and its generationTime as read then (`keyGeneratedBefore`, the account's
    clock like keysMetadata): only a newer time is that regeneration. This matters when no secret exists
    yet to compare with; a regeneration that failed leaves the time as it was."""
    if not record or record.get("regeneratingKeyKind") != kind:
        return False
    moment = generated.get(kind)
    before = parse_iso(record.get("keyGeneratedBefore"))
    return moment is not None and (before is None or moment > before)


def cooldown_left(live: LiveSecret | None, now: datetime, cooldown: timedelta) -> timedelta | None:
    """How long until the cooldown after the live version ends. An adopted version starts none: the
    cooldown keeps the two keys from being regenerated back to back, and adopting regenerated nothing."""
    if live is None or live.created_on is None or live.tags.get("adopted") == "true":
        return None
    left = live.created_on + cooldown - now
    return left if left > timedelta(0) else None


def pairs_of(secret_name: str, readonly_secret_name: str | None) -> list[Pair]:
    pairs = [Pair(secret_name, READ_WRITE_KINDS)]
    if readonly_secret_name:
        pairs.append(Pair(readonly_secret_name, READ_ONLY_KINDS))
    return pairs
