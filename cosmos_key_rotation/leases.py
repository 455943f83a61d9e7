"""One rotation per account at a time: a blob lease in the function app's storage account.

The function app and the CLI take the same lease, so a timer run, an HTTP request and an operator at a
terminal can overlap safely. A lease lasts 60 s and a background thread renews it while the rotation
runs, so a crashed holder frees the account within a minute.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .errors import LeaseBusy, from_sdk
from .names import LEASE_CONTAINER
from .settings import Target

LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 20


def lease_blob_name(target: Target) -> str:
    return f"{target.subscription_id}/{target.resource_group}/{target.account}".lower()


class Leases:
    def __init__(self, blob_service: Any) -> None:
        self._container = blob_service.get_container_client(LEASE_CONTAINER)
        self._container_ready = False

    def _blob(self, target: Target) -> Any:
        from azure.core.exceptions import ResourceExistsError

        if not self._container_ready:
            with suppress(ResourceExistsError):
                self._container.create_container()
            self._container_ready = True
        blob = self._container.get_blob_client(lease_blob_name(target))
        # It may exist already, and be leased: that is what acquire_lease will find out.
        with contextlib.suppress(ResourceExistsError):
            blob.upload_blob(b"", overwrite=False)
        return blob

    def is_held(self, target: Target) -> bool:
        """Whether some rotation of the target's account holds the lease right now."""
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._container.get_blob_client(lease_blob_name(target))
        try:
            return blob.get_blob_properties().lease.state == "leased"
        except ResourceNotFoundError:
            return False
        except Exception as exc:
            raise from_sdk(exc, "Storage", f"read the lease of {target.account}") from None

    @contextmanager
    def hold(self, target: Target, wait_seconds: float = 15.0, poll_seconds: float = 1.0) -> Iterator[None]:
        """Hold the account's lease for the block; wait up to `wait_seconds`, then raise LeaseBusy."""
        from azure.core.exceptions import HttpResponseError

        try:
            blob = self._blob(target)
        except Exception as exc:
            raise from_sdk(exc, "Storage", f"prepare the lease of {target.account}") from None
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                lease = blob.acquire_lease(lease_duration=LEASE_SECONDS)
                break
            except HttpResponseError as exc:
                if exc.status_code != 409:
                    raise from_sdk(exc, "Storage", f"take the lease of {target.account}") from None
            if time.monotonic() >= deadline:
                raise LeaseBusy(target.account)
            time.sleep(poll_seconds)
        stop = threading.Event()
        renewer = threading.Thread(target=_renew, args=(lease, stop), daemon=True, name=f"lease-{target.account}")
        renewer.start()
        try:
            yield
        finally:
            stop.set()
            renewer.join()
            with contextlib.suppress(Exception):  # if not released, it expires within LEASE_SECONDS
                lease.release()


def _renew(lease: Any, stop: threading.Event) -> None:
    while not stop.wait(RENEW_EVERY_SECONDS):
        try:
            lease.renew()
        except Exception:  # a failed renewal is retried at the next tick; the lease still has 40 s left
            continue
