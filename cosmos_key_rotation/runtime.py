"""Assembles the product from its settings: one set of clients and one rotator per process.

The function app builds it on the first invocation (from the app settings) and keeps it for the
life of the worker; the CLI builds it from the environment or a local.settings.json file.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from functools import cached_property

from .accounts import Accounts
from .budgets import Budgets
from .clients import Clients
from .discovery import Found, discover, merged
from .key_usage import KeyUsageReader
from .leases import Leases
from .names import QUEUE_NAME
from .records import Records
from .regeneration import Regenerator
from .rotation import RotationRequest, Rotator
from .rotation_queue import RotationQueue
from .settings import Settings, Target, load_settings
from .vault import Vault
from .verification import Verifier

# How long the queue worker's first delivery waits for Azure in-process before handing the rest of a
# rotation to a continuation message: long enough for most regenerations, far from the function timeout.
WORKER_WAIT_SECONDS = 60.0
# Discovered targets are listed again by every timer run, and otherwise at most this often.
DISCOVERY_MAX_AGE_SECONDS = 300.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.budgets = Budgets(dict(settings.budgets))
        self.clients = Clients(settings, self.budgets)
        self.accounts = Accounts(self.clients.cosmos_management)
        self.regenerator = Regenerator(self.accounts, self.clients.cosmos_management)
        self.worker_wait_seconds = WORKER_WAIT_SECONDS
        self.continuation_delay_scale = 1.0  # tests shorten the waits between continuation checks
        self._discovery_lock = threading.Lock()
        self._found: Found | None = None
        self._found_at = 0.0

    # -- the targets: configured, and discovered by tag ------------------------------------------------

    def targets(self, refresh: bool = False) -> list[Target]:
        """Every target: the configured ones, then the accounts discovery finds (listed again when `refresh`
        or older than DISCOVERY_MAX_AGE_SECONDS)."""
        return merged(self.settings.targets, self.discovered(refresh).targets)

    def discovered(self, refresh: bool = False) -> Found:
        if self.settings.discovery is None:
            return Found()
        with self._discovery_lock:
            stale = time.monotonic() - self._found_at > DISCOVERY_MAX_AGE_SECONDS
            if self._found is None or refresh or stale:
                self._found, self._found_at = discover(self.settings, self.accounts.list), time.monotonic()
            return self._found

    def target(self, name: str) -> Target:
        """The target named `name`, configured or discovered; KeyError if there is none."""
        for target in self.settings.targets:
            if target.name == name:
                return target
        for target in self.targets():
            if target.name == name:
                return target
        raise KeyError(name)

    def vault(self, vault_uri: str) -> Vault:
        return Vault(self.clients.secrets(vault_uri))

    @cached_property
    def key_usage(self) -> KeyUsageReader:
        return KeyUsageReader(self.clients.logs, self.settings.in_use_window_hours)

    @cached_property
    def leases(self) -> Leases:
        return Leases(self.clients.blob_service())

    @cached_property
    def records(self) -> Records:
        return Records(self.clients.table_service())

    @cached_property
    def queue(self) -> RotationQueue:
        return RotationQueue(self.clients.queue(QUEUE_NAME))

    def rotator(self, dry_run: bool = False, lease_wait_seconds: float = 15.0, worker: bool = False,
                progress: Callable[[str], None] | None = None) -> Rotator:
        """A dry run only reads, so it needs neither the lease nor the records (nor the storage). The queue
        worker hands long waits to continuation messages; anyone else waits in-process."""
        return Rotator(
            self.settings,
            self.accounts,
            self.vault,
            Verifier(timeout_seconds=self.settings.verify_timeout_seconds),
            leases=None if dry_run else self.leases,
            records=None if dry_run else self.records,
            lease_wait_seconds=lease_wait_seconds,
            regenerator=self.regenerator,
            find_target=self.target,
            hand_over=self._continue_later if worker else None,
            wait_seconds=self.worker_wait_seconds,
            progress=progress,
            key_usage=self.key_usage,
        )


    def _continue_later(self, request: RotationRequest, delay_seconds: int) -> None:
        self.queue.send(request, max(1, round(delay_seconds * self.continuation_delay_scale)))


_lock = threading.Lock()
_runtime: Runtime | None = None


def get_runtime(env: Mapping[str, str] | None = None) -> Runtime:
    """The process's runtime, built from the app settings on first use (SettingsError if they are bad)."""
    global _runtime
    with _lock:
        if _runtime is None:
            _runtime = Runtime(load_settings(os.environ if env is None else env))
        return _runtime


def reset_runtime() -> None:
    """Forget the runtime so the next call reads the settings again (tests change them)."""
    global _runtime
    with _lock:
        _runtime = None
