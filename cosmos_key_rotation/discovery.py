"""Targets found by tag: the Cosmos DB accounts of DISCOVERY_SUBSCRIPTIONS that carry DISCOVERY_TAG.

An account describes itself with tags (names below): the vault and secret names, the strategy, and the
key applications use today (so that its first run adopts it). What it does not say comes from the settings
(DISCOVERY_KEY_VAULT_URI, KEY_STRATEGY) and the defaults (secret `cosmos-<account>-connection-string`, no
read-only secret). A configured target wins over a discovered account of the same identity. Listing reads
the accounts of each subscription, paged (azure-mgmt-cosmosdb `database_accounts.list`), and needs
`Microsoft.DocumentDB/databaseAccounts/read` there: the custom role at subscription or resource-group scope.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from .error_table import from_sdk
from .errors import RotationError
from .settings import LIVE_KEY_KINDS, STRATEGIES, Discovery, Settings, Target

TAG_VAULT = "cosmos-key-rotation-vault"
TAG_SECRET = "cosmos-key-rotation-secret"
TAG_READONLY_SECRET = "cosmos-key-rotation-readonly-secret"
TAG_STRATEGY = "cosmos-key-rotation-strategy"
TAG_LIVE_KEY = "cosmos-key-rotation-live-key"
TAG_WORKSPACE = "cosmos-key-rotation-workspace"  # the in-use guard's workspace id, else KEY_USAGE_WORKSPACE_ID
_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_SECRET = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_RESOURCE_ID = re.compile(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.DocumentDB/"
                          r"databaseAccounts/([^/]+)$", re.IGNORECASE)


@dataclass
class Found:
    """What one discovery found: the targets, and the tagged accounts it could not use, with why."""

    targets: list[Target] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    errors: list[RotationError] = field(default_factory=list)  # a subscription that could not be listed


def discover(settings: Settings, list_accounts: Callable[[str], Iterable[Any]]) -> Found:
    """Every account of the discovery subscriptions that carries the tag, as a target."""
    found = Found()
    discovery = settings.discovery
    if discovery is None:
        return found
    for subscription in discovery.subscriptions:
        try:
            accounts = list(list_accounts(subscription))
        except Exception as exc:
            found.errors.append(from_sdk(exc, "arm", f"list the Cosmos DB accounts of subscription {subscription}"))
            continue
        for account in accounts:
            tags = dict(getattr(account, "tags", None) or {})
            if tags.get(discovery.tag) != discovery.value:
                continue
            target, problem = _target(account, tags, discovery, settings)
            if target is not None:
                found.targets.append(target)
            else:
                found.problems.append(problem)
    return found


def merged(configured: Iterable[Target], discovered: Iterable[Target]) -> list[Target]:
    """The configured targets, then the discovered ones: an account found twice is one target, and a
    configured target wins."""
    targets = list(configured)
    seen = {_identity(target) for target in targets}
    names = {target.name for target in targets}
    for target in discovered:
        if _identity(target) in seen:
            continue
        if target.name in names:  # another account of the same name elsewhere: keep both, named apart
            target = replace(target, name=f"{target.name}.{target.resource_group}")
        seen.add(_identity(target))
        names.add(target.name)
        targets.append(target)
    return targets


def _identity(target: Target) -> tuple[str, str, str]:
    return target.subscription_id.lower(), target.resource_group.lower(), target.account.lower()


def _target(account: Any, tags: dict[str, str], discovery: Discovery,
            settings: Settings) -> tuple[Target | None, str]:
    match = _RESOURCE_ID.match(str(getattr(account, "id", "")))
    name = str(getattr(account, "name", ""))
    if match is None:
        return None, f"{name}: its resource id does not name a Cosmos DB account"
    subscription, group, account_name = match.groups()
    vault = tags.get(TAG_VAULT) or discovery.key_vault_uri
    secret = tags.get(TAG_SECRET) or f"cosmos-{account_name}-connection-string"
    readonly = tags.get(TAG_READONLY_SECRET) or None
    strategy = (tags.get(TAG_STRATEGY) or settings.default_strategy).lower()
    live = tags.get(TAG_LIVE_KEY) or None
    workspace = tags.get(TAG_WORKSPACE) or None
    why = []
    if not vault or not vault.startswith("https://"):
        why.append(f"no vault: tag {TAG_VAULT} with an https:// vault URI, or set DISCOVERY_KEY_VAULT_URI")
    for label, value in ((TAG_SECRET, secret), (TAG_READONLY_SECRET, readonly)):
        if value is not None and not _SECRET.match(value):
            why.append(f"tag {label} is {value!r}, not a Key Vault secret name")
    if strategy not in STRATEGIES:
        why.append(f"tag {TAG_STRATEGY} is {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    if live is not None and live not in LIVE_KEY_KINDS:
        why.append(f"tag {TAG_LIVE_KEY} is {live!r}; expected {' or '.join(LIVE_KEY_KINDS)}")
    if workspace is not None and not _GUID.match(workspace):
        why.append(f"tag {TAG_WORKSPACE} is {workspace!r}; expected a Log Analytics workspace id (a GUID)")
    if why:
        return None, f"{account_name}: " + "; ".join(why)
    return Target(account_name, subscription, group, account_name, vault or "", secret, readonly, strategy, live,
                  key_usage_workspace_id=workspace, origin="discovered"), ""

