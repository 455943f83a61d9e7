"""App settings (PRODUCT.md §4): read once, validated once, with errors that name the setting."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .budgets import DEFAULT_BUDGETS, Budget
from .clouds import CLOUDS, Cloud

STRATEGIES = ("alternate", "primary", "secondary")
LIVE_KEY_KINDS = ("primary", "secondary")
GUARD_MODES = ("enforce", "warn", "off")  # IN_USE_GUARD (in_use_guard.py)
HTTP_AUTH_MODES = ("function-key", "entra")  # HTTP_AUTH (caller.py)
DEFAULT_SCHEDULE = "0 0 3 1,15 * *"
DEFAULT_HEARTBEAT_SCHEDULE = "0 30 6 * * *"  # daily, 06:30 UTC (heartbeat.py)
DEFAULT_DISCOVERY_TAG = "cosmos-key-rotation=enabled"
# The host's own switch for one function (docs: "How to disable functions in Azure Functions"); Linux app
# settings may reach the worker with the dots as underscores.
TIMER_DISABLED_SETTINGS = ("AzureWebJobs.scheduled_rotation.Disabled", "AzureWebJobs__scheduled_rotation__Disabled",
                           "AzureWebJobs_scheduled_rotation_Disabled")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
_ACCOUNT = re.compile(r"^[a-z0-9][a-z0-9-]{1,42}[a-z0-9]$")
_RESOURCE_GROUP = re.compile(r"^[-\w._()]{1,90}$")
_SECRET = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_TARGET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
# NCRONTAB with seconds, as the Functions timer reads it: the range of each field, and the names it takes.
_CRON_RANGES = (("second", 0, 59), ("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12),
                ("day-of-week", 0, 6))
_CRON_NAMES = {
    "month": {m: i for i, m in enumerate(("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT",
                                          "NOV", "DEC"), start=1)},
    "day-of-week": {d: i for i, d in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"))},
}
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no")


class SettingsError(ValueError):
    """One or more settings are missing or wrong; the message names each one."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


@dataclass(frozen=True)
class Target:
    """One Cosmos DB account and the Key Vault secret(s) holding its connection string."""

    name: str
    subscription_id: str
    resource_group: str
    account: str
    key_vault_uri: str
    secret_name: str
    readonly_secret_name: str | None = None
    strategy: str = "alternate"
    # The key applications use today, declared by the operator: the first run publishes it as it is.
    live_key_kind: str | None = None
    # The Log Analytics workspace holding the account's data-plane logs (the in-use guard); None: the global one.
    key_usage_workspace_id: str | None = None
    origin: str = "configured"  # or "discovered" (discovery.py: an account found by its tag)

    @property
    def account_id(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.DocumentDB/databaseAccounts/{self.account}"
        )


@dataclass(frozen=True)
class StorageSettings:
    """The function app's storage account (AzureWebJobsStorage): a connection string or an identity."""

    connection_string: str | None = None
    account_name: str | None = None
    client_id: str | None = None
    service_uris: tuple[tuple[str, str], ...] = ()

    def service_uri(self, service: str, storage_suffix: str) -> str:
        """The endpoint of `blob`, `queue` or `table` for identity-based access, in the app's cloud."""
        explicit = dict(self.service_uris).get(service)
        return explicit or f"https://{self.account_name}.{service}.{storage_suffix}"


@dataclass(frozen=True)
class Discovery:
    """Find targets by tag: the Cosmos DB accounts of these subscriptions that carry `tag` = `value`."""

    subscriptions: tuple[str, ...]
    tag: str
    value: str
    key_vault_uri: str | None  # for accounts without the cosmos-key-rotation-vault tag


@dataclass(frozen=True)
class Settings:
    targets: tuple[Target, ...]
    schedule: str = DEFAULT_SCHEDULE
    heartbeat_schedule: str = DEFAULT_HEARTBEAT_SCHEDULE
    http_auth: str = "function-key"  # HTTP_AUTH: function-key | entra (caller.py)
    auth_enabled: bool = False  # WEBSITE_AUTH_ENABLED: the platform reports App Service authentication on
    cloud: Cloud = CLOUDS["AzureCloud"]
    arm_endpoint: str = CLOUDS["AzureCloud"].resource_manager
    client_id: str | None = None
    secret_validity_days: int = 60
    min_rotation_interval_minutes: int = 60
    max_key_age_days: int = 60
    verify_new_key: bool = True
    verify_timeout_seconds: int = 600
    regeneration_timeout_minutes: int = 360
    storage: StorageSettings | None = None
    paused_targets: frozenset[str] = frozenset()
    timer_disabled: bool = False
    budgets: tuple[tuple[str, Budget], ...] = tuple(DEFAULT_BUDGETS.items())
    discovery: Discovery | None = None
    default_strategy: str = "alternate"  # KEY_STRATEGY: for targets that name none
    logs_endpoint: str = CLOUDS["AzureCloud"].logs
    key_usage_workspace_id: str | None = None  # KEY_USAGE_WORKSPACE_ID: for targets that name none
    in_use_guard: str = "off"  # enforce | warn | off (in_use_guard.py)
    in_use_window_hours: float = 24.0
    incident_grace_seconds: int = 300  # an incident rotation's wait before it retires the keys that were live

    def workspace_for(self, target: Target) -> str | None:
        """Where the guard reads the target's key usage; None: the guard is off for it."""
        if self.in_use_guard == "off":
            return None
        return target.key_usage_workspace_id or self.key_usage_workspace_id

    @property
    def targets_by_name(self) -> dict[str, Target]:
        return {target.name: target for target in self.targets}

    def target(self, name: str) -> Target:
        """The target named `name`; KeyError if there is none."""
        return self.targets_by_name[name]

    def paused(self, name: str) -> bool:
        return name in self.paused_targets

    def require_storage(self) -> StorageSettings:
        if self.storage is None:
            raise SettingsError(
                ["AzureWebJobsStorage is not set: give a connection string, or "
                 "AzureWebJobsStorage__accountName for identity-based access"]
            )
        return self.storage


def load_settings(env: Mapping[str, str]) -> Settings:
    """Validate every setting at once, so one run reports every problem, not just the first."""
    problems: list[str] = []
    reader = _Reader(env, problems)
    cloud_name = reader.text("AZURE_CLOUD") or "AzureCloud"
    cloud = CLOUDS.get(cloud_name)
    if cloud is None:
        problems.append(f"AZURE_CLOUD is {cloud_name!r}; expected one of {', '.join(CLOUDS)}")
        cloud = CLOUDS["AzureCloud"]
    discovery = _discovery(reader, cloud)
    targets = _targets(reader, required=discovery is None)
    _check_vaults(targets, cloud, problems)
    settings = Settings(
        targets=targets,
        schedule=_schedule(reader),
        heartbeat_schedule=_schedule(reader, "HEARTBEAT_SCHEDULE", DEFAULT_HEARTBEAT_SCHEDULE),
        http_auth=_http_auth(reader),
        auth_enabled=(reader.text("WEBSITE_AUTH_ENABLED") or "").lower() == "true",
        cloud=cloud,
        arm_endpoint=reader.https_url("ARM_ENDPOINT") or cloud.resource_manager,
        client_id=reader.guid("AZURE_CLIENT_ID"),
        secret_validity_days=reader.integer("SECRET_VALIDITY_DAYS", 60, 1, 3650),
        min_rotation_interval_minutes=reader.integer("MIN_ROTATION_INTERVAL_MINUTES", 60, 0, 525600),
        max_key_age_days=reader.integer("MAX_KEY_AGE_DAYS", 60, 1, 3650),
        verify_new_key=reader.boolean("VERIFY_NEW_KEY", True),
        verify_timeout_seconds=reader.integer("VERIFY_TIMEOUT_SECONDS", 600, 0, 86400),
        regeneration_timeout_minutes=reader.integer("REGENERATION_TIMEOUT_MINUTES", 360, 1, 7 * 24 * 60),
        storage=_storage(env, problems),
        paused_targets=_paused(reader, targets, checked=discovery is None),
        timer_disabled=any(reader.text(name) and reader.text(name).lower() in _TRUE  # type: ignore[union-attr]
                           for name in TIMER_DISABLED_SETTINGS),
        budgets=tuple((name, reader.budget(name, default)) for name, default in DEFAULT_BUDGETS.items()),
        discovery=discovery,
        default_strategy=(reader.text("KEY_STRATEGY") or "alternate").lower(),
        logs_endpoint=reader.https_url("LOGS_ENDPOINT") or cloud.logs,
        key_usage_workspace_id=reader.guid("KEY_USAGE_WORKSPACE_ID"),
        in_use_guard=_in_use_guard(reader, targets),
        in_use_window_hours=reader.number("IN_USE_WINDOW_HOURS", 24.0, 1 / 3600, 24 * 90),
        incident_grace_seconds=reader.integer("INCIDENT_GRACE_SECONDS", 300, 0, 86400),
    )
    if problems:
        raise SettingsError(problems)
    return settings


def read_settings_file(path: str | Path) -> dict[str, str]:
    """The `Values` of a local.settings.json file, as the Functions host reads them."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError([f"settings file {path}: {exc.strerror}"]) from None
    except json.JSONDecodeError as exc:
        raise SettingsError([f"settings file {path} is not valid JSON: {exc.msg} at line {exc.lineno}"]) from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise SettingsError([f"settings file {path} has no \"Values\" object"])
    return {str(k): str(v) for k, v in values.items() if v is not None}


class _Reader:
    """Reads one setting at a time and records what is wrong with it instead of raising."""

    def __init__(self, env: Mapping[str, str], problems: list[str]) -> None:
        self.env = env
        self.problems = problems

    def text(self, name: str) -> str | None:
        value = self.env.get(name, "")
        return value.strip() or None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            self.problems.append(f"{name} is {raw!r}; expected a whole number from {low} to {high}")
            return default
        if not low <= value <= high:
            self.problems.append(f"{name} is {value}; expected a whole number from {low} to {high}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = self.text(name)
        if raw is None:
            return default
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        self.problems.append(f"{name} is {raw!r}; expected true or false")
        return default

    def budget(self, name: str, default: Budget) -> Budget:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            return Budget.parse(raw)
        except ValueError:
            self.problems.append(f"{name} is {raw!r}; expected `size,per_second` (a bucket of requests and its "
                                 f"refill rate), e.g. {default}")
            return default

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:  # NaN fails too
            self.problems.append(f"{name} is {raw!r}; expected a number from {low:g} to {high:g}")
            return default
        return value

    def guid(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None and not _GUID.match(raw):
            self.problems.append(f"{name} is {raw!r}; expected a GUID")
        return raw

    def https_url(self, name: str) -> str | None:
        raw = self.text(name)
        if raw is not None:
            self.problems.extend(_url_problems(name, raw))
        return raw


def _url_problems(name: str, url: str) -> list[str]:
    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        return [f"{name} is {url!r}; expected an https:// URL (Azure refuses tokens over plain HTTP)"]
    return []


def _schedule(reader: _Reader, setting: str = "ROTATION_SCHEDULE", default: str = DEFAULT_SCHEDULE) -> str:
    schedule = reader.text(setting) or default
    fields = schedule.split()
    if len(fields) != 6:
        reader.problems.append(
            f"{setting} is {schedule!r}; expected an NCRONTAB expression of 6 fields "
            f"(second minute hour day month day-of-week), e.g. '{default}'"
        )
        return schedule
    for field, (name, low, high) in zip(fields, _CRON_RANGES, strict=True):
        problem = _cron_field_problem(field, name, low, high)
        if problem:
            reader.problems.append(f"{setting} is {schedule!r}: its {name} field {field!r} {problem}")
    return schedule


def _cron_field_problem(field: str, name: str, low: int, high: int) -> str | None:
    """What is wrong with one NCRONTAB field (lists of *, n, n-m, each with an optional /step), or None."""
    names = _CRON_NAMES.get(name, {})

    def value(text: str) -> int | None:
        if text.upper() in names:
            return names[text.upper()]
        return int(text) if text.isdigit() else None

    for part in field.split(","):
        body, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"has a bad step {step!r}"
        if body == "*":
            continue
        start, _, end = body.partition("-")
        bounds = [value(start)] + ([value(end)] if end else [])
        if any(bound is None for bound in bounds):
            return f"is not a number{' or name' if names else ''} ({part!r})"
        if any(not low <= bound <= high for bound in bounds):  # type: ignore[operator]
            return f"is out of range: {name} runs from {low} to {high}"
        if len(bounds) == 2 and bounds[0] > bounds[1]:  # type: ignore[operator]
            return f"has a range that runs backwards ({part!r})"
    return None


def _check_vaults(targets: tuple[Target, ...], cloud: Cloud, problems: list[str]) -> None:
    """A vault of another cloud than AZURE_CLOUD cannot work: its token audience and authority differ."""
    for target in targets:
        host = (urlsplit(target.key_vault_uri).hostname or "").lower()
        if not host or _is_loopback(host) or host.endswith("." + cloud.key_vault_suffix):
            continue
        where = "KEY_VAULT_URI" if len(targets) == 1 else f"ROTATION_TARGETS ({target.name}).keyVaultUri"
        problems.append(f"{where} is {target.key_vault_uri!r}, which is not a Key Vault of AZURE_CLOUD={cloud.name} "
                        f"(its vaults end in .{cloud.key_vault_suffix}); set AZURE_CLOUD to the vault's cloud")


def _is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


def _paused(reader: _Reader, targets: tuple[Target, ...], checked: bool) -> frozenset[str]:
    """The paused target names; checked against the configured targets (a discovered one is known later)."""
    raw = reader.text("PAUSED_TARGETS")
    names = frozenset(name.strip() for name in (raw or "").split(",") if name.strip())
    unknown = sorted(names - {target.name for target in targets})
    if unknown and targets and checked:
        reader.problems.append(f"PAUSED_TARGETS names {', '.join(unknown)}, which no target is called; "
                               f"targets: {', '.join(target.name for target in targets)}")
    return names


def _discovery(reader: _Reader, cloud: Cloud) -> Discovery | None:
    raw = reader.text("DISCOVERY_SUBSCRIPTIONS")
    if raw is None:
        return None
    subscriptions = tuple(part.strip() for part in raw.split(",") if part.strip())
    bad = [part for part in subscriptions if not _GUID.match(part)]
    if bad or not subscriptions:
        reader.problems.append(f"DISCOVERY_SUBSCRIPTIONS is {raw!r}; expected comma-separated subscription GUIDs")
    tag = reader.text("DISCOVERY_TAG") or DEFAULT_DISCOVERY_TAG
    name, equals, value = tag.partition("=")
    if not equals or not name.strip() or not value.strip():
        reader.problems.append(f"DISCOVERY_TAG is {tag!r}; expected name=value, e.g. {DEFAULT_DISCOVERY_TAG}")
    vault = reader.https_url("DISCOVERY_KEY_VAULT_URI")
    if vault is not None:
        problems: list[str] = []
        _check_vaults((Target("discovered", "", "", "", vault, "s"),), cloud, problems)
        reader.problems.extend(problem.replace("KEY_VAULT_URI", "DISCOVERY_KEY_VAULT_URI") for problem in problems)
    return Discovery(subscriptions, name.strip(), value.strip(), vault)


def _http_auth(reader: _Reader) -> str:
    raw = (reader.text("HTTP_AUTH") or "function-key").lower()
    if raw not in HTTP_AUTH_MODES:
        reader.problems.append(f"HTTP_AUTH is {raw!r}; expected one of {', '.join(HTTP_AUTH_MODES)}")
        return "function-key"
    return raw


def _in_use_guard(reader: _Reader, targets: tuple[Target, ...]) -> str:
    """IN_USE_GUARD: `enforce` by default once a workspace is named (globally or for a target), else `off`."""
    named = reader.text("KEY_USAGE_WORKSPACE_ID") is not None or any(t.key_usage_workspace_id for t in targets)
    raw = (reader.text("IN_USE_GUARD") or ("enforce" if named else "off")).lower()
    if raw not in GUARD_MODES:
        reader.problems.append(f"IN_USE_GUARD is {raw!r}; expected one of {', '.join(GUARD_MODES)}")
        return "off"
    if raw != "off" and not named and reader.text("DISCOVERY_SUBSCRIPTIONS") is None:
        reader.problems.append(f"IN_USE_GUARD is {raw!r} but no workspace is named: set KEY_USAGE_WORKSPACE_ID "
                               "(the Log Analytics workspace id holding the accounts' data-plane logs)")
    return raw


def _targets(reader: _Reader, required: bool = True) -> tuple[Target, ...]:
    raw = reader.text("ROTATION_TARGETS")
    if raw is not None:
        if reader.text("COSMOS_ACCOUNT_NAME"):
            reader.problems.append("set either ROTATION_TARGETS or COSMOS_ACCOUNT_NAME, not both")
        return _targets_from_json(raw, reader)
    if not reader.text("COSMOS_ACCOUNT_NAME"):
        if required:
            reader.problems.append(
                "no rotation target: set COSMOS_SUBSCRIPTION_ID, COSMOS_RESOURCE_GROUP, COSMOS_ACCOUNT_NAME "
                "and KEY_VAULT_URI, ROTATION_TARGETS, or DISCOVERY_SUBSCRIPTIONS"
            )
        return ()
    entry = {
        "name": reader.text("COSMOS_ACCOUNT_NAME"),
        "subscriptionId": reader.text("COSMOS_SUBSCRIPTION_ID"),
        "resourceGroup": reader.text("COSMOS_RESOURCE_GROUP"),
        "account": reader.text("COSMOS_ACCOUNT_NAME"),
        "keyVaultUri": reader.text("KEY_VAULT_URI"),
        "secretName": reader.text("SECRET_NAME"),
        "readonlySecretName": reader.text("READONLY_SECRET_NAME"),
        "strategy": reader.text("KEY_STRATEGY"),
        "liveKeyKind": reader.text("LIVE_KEY_KIND"),
    }
    return (_target(entry, _SINGLE_TARGET_NAMES, reader.problems),)


# Where each target field comes from, so a message names what the operator actually set.
_SINGLE_TARGET_NAMES = {
    "name": "COSMOS_ACCOUNT_NAME",
    "subscriptionId": "COSMOS_SUBSCRIPTION_ID",
    "resourceGroup": "COSMOS_RESOURCE_GROUP",
    "account": "COSMOS_ACCOUNT_NAME",
    "keyVaultUri": "KEY_VAULT_URI",
    "secretName": "SECRET_NAME",
    "readonlySecretName": "READONLY_SECRET_NAME",
    "strategy": "KEY_STRATEGY",
    "liveKeyKind": "LIVE_KEY_KIND",
}
# keyUsageWorkspaceId exists per target in ROTATION_TARGETS only: a single target reads KEY_USAGE_WORKSPACE_ID.
_TARGET_FIELDS = (*_SINGLE_TARGET_NAMES, "keyUsageWorkspaceId")


def _targets_from_json(raw: str, reader: _Reader) -> tuple[Target, ...]:
    try:
        entries = json.loads(raw)
    except json.JSONDecodeError as exc:
        reader.problems.append(f"ROTATION_TARGETS is not valid JSON: {exc.msg} at column {exc.colno}")
        return ()
    if not isinstance(entries, list) or not entries:
        reader.problems.append("ROTATION_TARGETS must be a non-empty JSON array of target objects")
        return ()
    targets = []
    for index, entry in enumerate(entries):
        where = f"ROTATION_TARGETS[{index}]"
        if not isinstance(entry, dict):
            reader.problems.append(f"{where} must be an object")
            continue
        unknown = sorted(set(entry) - set(_TARGET_FIELDS))
        if unknown:
            reader.problems.append(f"{where} has unknown field(s) {', '.join(unknown)}")
        default_strategy = reader.text("KEY_STRATEGY")
        entry = {"strategy": default_strategy, **entry}
        names = {key: f"{where}.{key}" for key in _TARGET_FIELDS}
        targets.append(_target(entry, names, reader.problems))
    seen: set[str] = set()
    for target in targets:
        if target.name in seen:
            reader.problems.append(f"ROTATION_TARGETS names {target.name!r} twice; target names must be unique")
        seen.add(target.name)
    reader.problems.extend(_shared_accounts(targets))
    return tuple(targets)


def _shared_accounts(targets: list[Target]) -> list[str]:
    """Two targets on one account would rotate the same keys into two secrets, each alternating on its
    own: the second rotation would regenerate the key the first one just published."""
    first: dict[tuple[str, str, str], Target] = {}
    problems = []
    for target in targets:
        # Resource Manager names are case-insensitive.
        key = (target.subscription_id.lower(), target.resource_group.lower(), target.account.lower())
        if key in first:
            problems.append(
                f"ROTATION_TARGETS: targets {first[key].name!r} and {target.name!r} both name account "
                f"{target.account} (resource group {target.resource_group}, subscription {target.subscription_id}); "
                "keep one target per account"
            )
        else:
            first[key] = target
    return problems


def _target(entry: Mapping[str, object], names: Mapping[str, str], problems: list[str]) -> Target:
    def get(key: str) -> str | None:
        value = entry.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if not isinstance(value, str):
            problems.append(f"{names[key]} must be a string")
            return None
        return value.strip()

    def required(key: str, pattern: re.Pattern[str], expected: str) -> str:
        value = get(key)
        if value is None:
            problems.append(f"{names[key]} is not set")
            return ""
        if not pattern.match(value):
            problems.append(f"{names[key]} is {value!r}; expected {expected}")
        return value

    account = required("account", _ACCOUNT, "a Cosmos DB account name (3-44 lowercase letters, digits, hyphens)")
    name = get("name") or account
    if not _TARGET_NAME.match(name or "-"):
        problems.append(f"{names['name']} is {name!r}; expected letters, digits, '.', '_' or '-' (at most 63)")
    subscription = required("subscriptionId", _GUID, "a subscription GUID")
    group = required("resourceGroup", _RESOURCE_GROUP, "a resource group name")
    vault = get("keyVaultUri")
    if vault is None:
        problems.append(f"{names['keyVaultUri']} is not set")
    else:
        problems.extend(_url_problems(names["keyVaultUri"], vault))
    secret = get("secretName") or f"cosmos-{account}-connection-string"
    readonly = get("readonlySecretName")
    for key, value in (("secretName", secret), ("readonlySecretName", readonly)):
        if value is not None and not _SECRET.match(value):
            problems.append(f"{names[key]} is {value!r}; a Key Vault secret name has 1-127 letters, digits, hyphens")
    if readonly is not None and readonly == secret:
        problems.append(f"{names['readonlySecretName']} must differ from {names['secretName']}")
    strategy = (get("strategy") or "alternate").lower()
    if strategy not in STRATEGIES:
        problems.append(f"{names['strategy']} is {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    workspace = get("keyUsageWorkspaceId") if "keyUsageWorkspaceId" in names else None
    if workspace is not None and not _GUID.match(workspace):
        problems.append(f"{names['keyUsageWorkspaceId']} is {workspace!r}; expected a Log Analytics workspace id "
                        "(a GUID)")
    live_key_kind = get("liveKeyKind")
    if live_key_kind is not None and live_key_kind not in LIVE_KEY_KINDS:
        problems.append(f"{names['liveKeyKind']} is {live_key_kind!r}; expected the key applications use today: "
                        f"{' or '.join(LIVE_KEY_KINDS)}")
    return Target(
        name=name or "",
        subscription_id=subscription,
        resource_group=group,
        account=account,
        key_vault_uri=vault or "",
        secret_name=secret,
        readonly_secret_name=readonly,
        strategy=strategy,
        live_key_kind=live_key_kind,
        key_usage_workspace_id=workspace,
    )


def _storage(env: Mapping[str, str], problems: list[str]) -> StorageSettings | None:
    connection = env.get("AzureWebJobsStorage", "").strip()
    if connection:
        if "=" not in connection:
            problems.append("AzureWebJobsStorage is not a storage connection string (expected Key=Value;...)")
        return StorageSettings(connection_string=connection)
    prefix = "AzureWebJobsStorage__"
    account = env.get(prefix + "accountName", "").strip() or None
    uris = tuple((service, env[f"{prefix}{service}ServiceUri"].strip()) for service in ("blob", "queue", "table")
                 if env.get(f"{prefix}{service}ServiceUri", "").strip())
    for service, uri in uris:
        problems.extend(_url_problems(f"{prefix}{service}ServiceUri", uri))
    if account is None:
        if uris:
            problems.append(f"{prefix}accountName is not set (the service URIs alone do not name the account)")
        return None
    if not re.match(r"^[a-z0-9]{3,24}$", account):
        problems.append(
            f"{prefix}accountName is {account!r}; expected a storage account name (3-24 lowercase letters, digits)"
        )
    return StorageSettings(account_name=account, client_id=env.get(prefix + "clientId", "").strip() or None,
                           service_uris=uris)
