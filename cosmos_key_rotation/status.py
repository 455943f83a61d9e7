"""What `GET /api/targets` and `status` show per target: the live secret, the last rotation, and the
age of all four keys against MAX_KEY_AGE_DAYS (Azure Policy's key-age audit looks at all four)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

from .accounts import METADATA_NAMES
from .errors import RotationError
from .runtime import Runtime
from .settings import Target
from .times import iso, utc


def all_targets(runtime: Runtime, max_workers: int = 8) -> list[dict[str, Any]]:
    targets = runtime.settings.targets
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(targets)))) as pool:
        return list(pool.map(lambda target: target_status(runtime, target), targets))


def target_status(runtime: Runtime, target: Target) -> dict[str, Any]:
    document: dict[str, Any] = {
        "target": target.name,
        "account": target.account_id,
        "strategy": target.strategy,
        "secretName": target.secret_name,
    }
    if target.readonly_secret_name:
        document["readonlySecretName"] = target.readonly_secret_name
    try:
        document.update(_live(runtime, target))
        document.update(_key_ages(runtime, target))
        document["lastRotation"] = runtime.records.latest(target.name) if runtime.settings.storage else None
    except RotationError as error:
        document["error"] = {"code": error.code, "message": error.message}
    except Exception as exc:  # a bug: keep the type, never the details
        document["error"] = {"code": "UnexpectedError",
                             "message": f"{type(exc).__name__} while reading the status of {target.name}"}
    return document


def _live(runtime: Runtime, target: Target) -> dict[str, Any]:
    live = runtime.vault(target.key_vault_uri).live(target.secret_name)
    if live is None:
        return {"liveKeyKind": None, "secretVersion": None, "secretPublishedAt": None}
    return {
        "liveKeyKind": live.key_kind,
        "secretVersion": live.version,
        "secretPublishedAt": iso(live.created_on) if live.created_on else None,
    }


def _key_ages(runtime: Runtime, target: Target) -> dict[str, Any]:
    account = runtime.accounts.get(target)
    limit = runtime.settings.max_key_age_days
    now = datetime.now(timezone.utc)
    keys = {}
    for kind, generated in account.key_generated_at.items():
        age = (now - utc(generated)).total_seconds() / 86400 if generated else None
        keys[METADATA_NAMES[kind]] = {
            "generatedAt": iso(generated) if generated else None,
            "ageDays": round(age, 1) if age is not None else None,
            "compliant": age is not None and age < limit,
        }
    return {
        "keys": keys,
        "maxKeyAgeDays": limit,
        "compliant": all(entry["compliant"] for entry in keys.values()),
    }


