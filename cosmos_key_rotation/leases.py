"""One rotation per account at a time: a blob lease in the function app's storage account.

The function app and the CLI take the same lease, so a timer run, an HTTP request and an operator at a
terminal can overlap safely. A lease lasts LEASE_SECONDS and a background thread renews it while the
rotation runs, so a crashed holder frees the account within a minute. A renewal can fail or hang, so the
lease is also a fence: before each step that changes Azure (regenerate, publish) the rotation confirms
that its last successful renewal is recent enough that nobody else can hold the account yet.

A rotation waiting for Azure between two queue messages (continuation.py) holds no lease: the lease blob's
metadata is then its marker (rotation id, key kind, since, until), written and cleared under the lease,
which keeps every other rotation of the account out until it ends or its timeout passes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from .error_table import from_sdk
from .errors import LeaseBusy, RotationError
from .names import LEASE_CONTAINER
from .settings import Target
from .times import parse_iso

log = logging.getLogger(__name__)

LEASE_SECONDS = 60
RENEW_EVERY_SECONDS = 15
# A lease confirmed with less than this left is treated as lost: the step that follows needs the time.
FENCE_MARGIN_SECONDS = 15
# Renewal and release must never hold a rotation: each call is bounded (azure-core's transport takes
# per-call connection_timeout/read_timeout) and sent once (Storage's retry policy reads retry_total per
# call: azure/storage/blob/_shared/policies.py, StorageRetryPolicy.configure_retries).
_BOUNDED_CALL = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 0}


def lease_blob_name(target: Target) -> str:
    return f"{target.subscription_id}/{target.resource_group}/{target.account}".lower()


@dataclass(frozen=True)
class Marker:
    """A rotation of the account that waits for Azure between two queue messages."""

    rotationid: str
    keykind: str
    since: str
    until: str

    def active(self) -> bool:
        until = parse_iso(self.until)
        return until is not None and until > datetime.now(timezone.utc)

    def describe(self) -> str:
        return (f"rotation {self.rotationid} of this account is waiting for Azure ({self.keykind} key, since "
                f"{self.since}, at most until {self.until})")

    @staticmethod
    def from_metadata(metadata: dict[str, str] | None) -> Marker | None:
        fields = {name: (metadata or {}).get(name) for name in Marker.__dataclass_fields__}
        return Marker(**fields) if all(fields.values()) else None  # type: ignore[arg-type]


class HeldLease:
    """A lease this process holds on one account, renewed in the background until `stop`."""

    def __init__(self, client: Any, account: str, acquired_at: float, lease_seconds: float = LEASE_SECONDS,
                 renew_every: float = RENEW_EVERY_SECONDS, clock: Callable[[], float] = time.monotonic,
                 blob: Any = None) -> None:
        self._client = client
        self._blob = blob
        self.account = account
        self.lease_seconds = lease_seconds
        self._renew_every = renew_every
        self._clock = clock
        self._renewed_at = acquired_at  # when the last successful acquire/renew was *sent*: the lease runs from there
        self._taken_over = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def confirm(self) -> None:
        """Raise LeaseLost (transient) unless the lease is surely still ours for FENCE_MARGIN_SECONDS more."""
        age = self._clock() - self._renewed_at
        if self._taken_over or age >= self.lease_seconds - FENCE_MARGIN_SECONDS:
            why = "another holder took it" if self._taken_over else f"its last renewal was {age:.0f} s ago"
            raise RotationError("LeaseLost", f"the lease on account {self.account} may no longer be ours ({why}; "
                                f"it lasts {self.lease_seconds:g} s): stopped before changing anything else")

    def marker(self) -> Marker | None:
        """The marker of a rotation waiting for Azure, active or not."""
        try:
            return Marker.from_metadata(self._blob.get_blob_properties().metadata)
        except Exception as exc:
            raise from_sdk(exc, "storage", f"read the marker of {self.account}") from None

    def mark(self, marker: Marker | None) -> None:
        """Write (or with None, clear) the marker; only the lease holder can."""
        try:
            self._blob.set_blob_metadata(asdict(marker) if marker else {}, lease=self._client)
        except Exception as exc:
            raise from_sdk(exc, "storage", f"write the marker of {self.account}") from None

    def renew_once(self) -> None:
        sent = self._clock()
        try:
            self._client.renew(**_BOUNDED_CALL)
        except Exception as exc:
            # 409 is LeaseIdMismatchWithLeaseOperation or LeaseNotPresent: the lease expired and is gone.
            self._taken_over = self._taken_over or getattr(exc, "status_code", None) == 409
            error = from_sdk(exc, "storage", f"renew the lease of {self.account}")
            log.warning("renewing the lease of %s failed: %s: %s", self.account, error.code, error.message)
            return
        self._renewed_at = sent

    def start(self) -> None:
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name=f"lease-{self.account}")
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self._renew_every):
            self.renew_once()

    def stop(self) -> None:
        """Stop renewing and release; never waits for a renewal or release that hangs (each is bounded, and
        an unreleased lease expires by itself)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        with suppress(Exception):
            self._client.release(**_BOUNDED_CALL)


class NoLease:
    """For rotations that run without storage (a dry run, unit tests): nothing to confirm or mark."""

    def confirm(self) -> None:
        return None

    def marker(self) -> Marker | None:
        return None

    def mark(self, marker: Marker | None) -> None:
        return None


class Leases:
    def __init__(self, blob_service: Any, lease_seconds: float = LEASE_SECONDS,
                 renew_every: float = RENEW_EVERY_SECONDS) -> None:
        self._container = blob_service.get_container_client(LEASE_CONTAINER)
        self.lease_seconds = lease_seconds
        self.renew_every = renew_every

    def is_held(self, target: Target) -> bool:
        """Whether some rotation of the target's account holds the lease right now."""
        return self.in_progress(target) == "running"

    def in_progress(self, target: Target) -> str | None:
        """Why another rotation of the account cannot start now: "running" while one holds the lease, or
        a waiting rotation's marker; None when nothing is in progress."""
        from azure.core.exceptions import ResourceNotFoundError

        blob = self._container.get_blob_client(lease_blob_name(target))
        try:
            properties = blob.get_blob_properties()
        except ResourceNotFoundError:
            return None
        except Exception as exc:
            raise from_sdk(exc, "storage", f"read the lease of {target.account}") from None
        if properties.lease.state == "leased":
            return "running"
        marker = Marker.from_metadata(properties.metadata)
        return marker.describe() if marker is not None and marker.active() else None

    @contextmanager
    def hold(self, target: Target, wait_seconds: float = 15.0, poll_seconds: float = 1.0) -> Iterator[HeldLease]:
        """Hold the account's lease for the block; wait up to `wait_seconds`, then raise LeaseBusy."""
        blob = self._container.get_blob_client(lease_blob_name(target))
        deadline = time.monotonic() + wait_seconds
        while True:
            sent = time.monotonic()
            client = self._acquire(blob, target)
            if client is not None:
                break
            if time.monotonic() >= deadline:
                raise LeaseBusy(target.account)
            time.sleep(poll_seconds)
        held = HeldLease(client, target.account, sent, self.lease_seconds, self.renew_every, blob=blob)
        held.start()
        try:
            yield held
        finally:
            held.stop()

    def _acquire(self, blob: Any, target: Target) -> Any | None:
        """The lease client, or None when another holder has the lease. The blob (and its container) are
        created on first use only: a Put Blob on a leased blob without the lease id is refused by Blob
        Storage with 412 LeaseIdMissing (Put Blob, REST reference; Azure/Azurite issue 2637), so it is never
        sent while someone may hold the lease."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        action = f"take the lease of {target.account}"
        for _ in range(2):
            try:
                return blob.acquire_lease(lease_duration=int(self.lease_seconds))
            except ResourceNotFoundError as exc:  # BlobNotFound or ContainerNotFound: the first rotation
                self._create(blob, getattr(exc, "error_code", None), action)
            except HttpResponseError as exc:
                if exc.status_code == 409:  # LeaseAlreadyPresent
                    return None
                raise from_sdk(exc, "storage", action) from None
            except Exception as exc:
                raise from_sdk(exc, "storage", action) from None
        raise RotationError("UnexpectedServiceAnswer", f"Storage: the lease blob of {target.account} vanished "
                            "while it was being taken")

    def _create(self, blob: Any, error_code: str | None, action: str) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        try:
            if error_code == "ContainerNotFound":
                with suppress(ResourceExistsError):
                    self._container.create_container()
            blob.upload_blob(b"", overwrite=False)
        except ResourceExistsError:
            pass  # 409 BlobAlreadyExists: another process created it first
        except HttpResponseError as exc:
            if exc.status_code != 412:  # 412 LeaseIdMissing: it exists, and someone already holds it
                raise from_sdk(exc, "storage", action) from None
        except Exception as exc:
            raise from_sdk(exc, "storage", action) from None
