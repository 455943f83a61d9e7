"""Key Vault: read the live secret version and the earlier ones, publish a new one (steps 1 and 5)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from .error_table import from_sdk
from .errors import RotationError

CONTENT_TYPE = "application/x-cosmosdb-connection-string"


@dataclass(frozen=True)
class LiveSecret:
    """The latest version of a secret. `value` is the connection string: compare it, never log it."""

    name: str
    version: str
    created_on: datetime | None
    tags: dict[str, str]
    value: str = field(repr=False, default="")
    expires_on: datetime | None = None
    enabled: bool = True

    @property
    def key_kind(self) -> str | None:
        return self.tags.get("keyKind")

    @property
    def rotation_id(self) -> str | None:
        return self.tags.get("rotationId")

    @property
    def expired(self) -> bool:
        return self.expires_on is not None and self.expires_on <= datetime.now(timezone.utc)


def _secret(name: str, properties: Any, value: str = "") -> LiveSecret:
    return LiveSecret(name=name, version=properties.version or "", created_on=properties.created_on,
                      tags=dict(properties.tags or {}), value=value, expires_on=properties.expires_on,
                      enabled=properties.enabled is not False)


class Vault:
    def __init__(self, secret_client: Any) -> None:
        self._client = secret_client

    def live(self, name: str) -> LiveSecret | None:
        """The latest version, or None when the secret does not exist yet."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            secret = self._client.get_secret(name)
        except ResourceNotFoundError:
            self._refuse_if_deleted(name)
            return None
        except Exception as exc:
            error = from_sdk(exc, "vault", f"read secret {name}")
            if error.code == "SecretDisabled":
                raise RotationError(
                    "SecretDisabled",
                    f"the latest version of secret {name} is disabled, so applications cannot read it either: "
                    f"re-enable it (`az keyvault secret set-attributes --name {name} --vault-name <vault> "
                    "--enabled true`), or publish the account's current key with `adopt --force`") from None
            raise error from None
        return _secret(name, secret.properties, secret.value or "")

    def version(self, name: str, version: str) -> LiveSecret:
        """One version, with its value (a secret: compare it, never log it)."""
        try:
            secret = self._client.get_secret(name, version)
        except Exception as exc:
            raise from_sdk(exc, "vault", f"read version {version} of secret {name}") from None
        return _secret(name, secret.properties, secret.value or "")

    def versions(self, name: str) -> list[LiveSecret]:
        """Every version's properties (no values), oldest first."""
        try:
            found = [_secret(name, p) for p in self._client.list_properties_of_secret_versions(name)]
        except Exception as exc:
            raise from_sdk(exc, "vault", f"list the versions of secret {name}") from None
        oldest = datetime.min.replace(tzinfo=timezone.utc)
        return sorted(found, key=lambda secret: secret.created_on or oldest)

    def _refuse_if_deleted(self, name: str) -> None:
        """A soft-deleted secret answers 404 like a missing one (Key Vault REST, Get Secret), yet its name
        cannot be reused and applications may still hold its key: it is never treated as missing."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            deleted = self._client.get_deleted_secret(name)
        except ResourceNotFoundError:  # truly missing
            return
        except Exception as exc:
            raise from_sdk(exc, "vault", f"read deleted secret {name}") from None
        purge = deleted.scheduled_purge_date.date().isoformat() if deleted.scheduled_purge_date else "its purge date"
        raise RotationError(
            "SecretDeleted",
            f"secret {name} is deleted but recoverable in Key Vault (until {purge}): recover it "
            f"(`az keyvault secret recover --name {name} --vault-name <vault>`) to keep its versions, or purge it "
            "to start over; the rotation regenerates nothing until then")

    def disable(self, name: str, version: str) -> None:
        """Disable one version: reads of it are refused (403 SecretDisabled); its history stays."""
        try:
            self._client.update_secret_properties(name, version, enabled=False)
        except Exception as exc:
            raise from_sdk(exc, "vault", f"disable version {version} of secret {name}") from None

    def publish(self, name: str, value: str, tags: dict[str, str], validity_days: int) -> str:
        """Add a new version and return its id. Every call adds a version; the caller decides when."""
        expires_on = datetime.now(timezone.utc) + timedelta(days=validity_days)
        try:
            secret = self._client.set_secret(
                name, value, content_type=CONTENT_TYPE, tags=tags, expires_on=expires_on, enabled=True
            )
        except Exception as exc:
            raise from_sdk(exc, "vault", f"publish secret {name}") from None
        return secret.properties.version or ""
