"""Assembles the product from its settings: one set of clients and one rotator per process.

The function app builds it on the first invocation (from the app settings) and keeps it for the
life of the worker; the CLI builds it from the environment or a local.settings.json file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from functools import cached_property

from .accounts import Accounts
from .clients import Clients
from .leases import Leases
from .names import QUEUE_NAME
from .records import Records
from .regeneration import Regenerator
from .rotation import RotationRequest, Rotator
from .rotation_queue import RotationQueue
from .settings import Settings, load_settings
from .vault import Vault
from .verification import Verifier

# How long the queue worker's first delivery waits for Azure in-process before handing the rest of a
# rotation to a continuation message: long enough for most regenerations, far from the function timeout.
WORKER_WAIT_SECONDS = 60.0


class Runtime:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clients = Clients(settings)
        self.accounts = Accounts(self.clients.cosmos_management)
        self.regenerator = Regenerator(self.accounts, self.clients.cosmos_management)
        self.worker_wait_seconds = WORKER_WAIT_SECONDS
        self.continuation_delay_scale = 1.0  # tests shorten the waits between continuation checks

    def vault(self, vault_uri: str) -> Vault:
        return Vault(self.clients.secrets(vault_uri))

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
            hand_over=self._continue_later if worker else None,
            wait_seconds=self.worker_wait_seconds,
            progress=progress,
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
